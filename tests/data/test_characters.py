"""Tests for elmo.data.characters: the exact character ids the published models were trained on.

Expected ids are written out by hand (raw value + 1): begin-of-word 258 -> 259, end-of-word
259 -> 260, in-token padding 260 -> 261, <S> 256 -> 257, </S> 257 -> 258, byte b -> b + 1.
"""

from __future__ import annotations

import pytest
import torch

from elmo.data.characters import batch_to_ids, boundary_char_ids, token_to_char_ids

W = 50
BOW, EOW, PAD = 259, 260, 261


def framed(*byte_ids: int) -> list[int]:
    """The W shifted ids of a token whose (already shifted) character ids are ``byte_ids``."""
    return [BOW, *byte_ids, EOW] + [PAD] * (W - 2 - len(byte_ids))


def shifted(text: str) -> list[int]:
    return [b + 1 for b in text.encode("utf-8")]


def test_ascii_word():
    # 'c' = 99, 'a' = 97, 't' = 116
    assert token_to_char_ids("cat") == framed(100, 98, 117)


@pytest.mark.parametrize(
    "token, utf8_bytes",
    [
        ("naïve", [0x6E, 0x61, 0xC3, 0xAF, 0x76, 0x65]),  # ï is two bytes
        ("東京", [0xE6, 0x9D, 0xB1, 0xE4, 0xBA, 0xAC]),  # three bytes per character
    ],
)
def test_multi_byte_word_is_its_utf8_bytes(token, utf8_bytes):
    assert token_to_char_ids(token) == framed(*[b + 1 for b in utf8_bytes])


def test_long_token_keeps_its_first_48_bytes_and_ends_with_eow_in_slot_49():
    ids = token_to_char_ids("x" * 60)
    assert len(ids) == W
    assert ids == [BOW] + [ord("x") + 1] * 48 + [EOW]
    # The cut counts bytes, not characters: it may split a multi-byte character.
    token = "a" + "é" * 30  # 61 bytes
    assert token_to_char_ids(token) == [BOW, *shifted(token)[:48], EOW]


def test_token_of_exactly_48_bytes_fits_without_padding():
    assert token_to_char_ids("y" * 48) == [BOW] + [ord("y") + 1] * 48 + [EOW]


def test_sentence_boundaries_use_the_special_characters():
    assert token_to_char_ids("<S>") == framed(257)
    assert token_to_char_ids("</S>") == framed(258)
    bos, eos = boundary_char_ids()
    assert bos.tolist() == framed(257) and eos.tolist() == framed(258)


def test_ids_are_shifted_by_one_so_that_zero_never_occurs_in_a_token():
    assert token_to_char_ids("\x00") == framed(1)  # byte 0 -> id 1
    for token in ["a", "<S>", "</S>", "東京", "z" * 70]:
        assert min(token_to_char_ids(token)) >= 1


def test_max_chars_sets_the_width():
    assert token_to_char_ids("abc", max_chars=5) == [BOW, 98, 99, 100, EOW]
    assert token_to_char_ids("abcdef", max_chars=5) == [BOW, 98, 99, 100, EOW]
    assert batch_to_ids([["ab"]], max_chars=6).tolist() == [[[BOW, 98, 99, EOW, PAD, PAD]]]


def test_batch_to_ids_pads_with_all_zero_tokens():
    ids = batch_to_ids([["a", "bc", "<S>"], ["東京"]])
    assert ids.shape == (2, 3, W) and ids.dtype == torch.long
    assert ids[0, 0].tolist() == framed(98)
    assert ids[0, 1].tolist() == framed(99, 100)
    assert ids[0, 2].tolist() == framed(257)
    assert ids[1, 0].tolist() == token_to_char_ids("東京")
    assert (ids[1, 1:] == 0).all()


def test_empty_sentences_in_a_batch():
    ids = batch_to_ids([["a"], []])
    assert ids.shape == (2, 1, W)
    assert ids[0, 0].tolist() == framed(98)
    assert (ids[1] == 0).all()
    assert batch_to_ids([[], []]).shape == (2, 0, W)
    assert batch_to_ids([]).shape == (0, 0, W)


@pytest.mark.parametrize("bad", ["Hello world", ["Hello", "world"]])
def test_plain_strings_are_a_type_error(bad):
    with pytest.raises(TypeError, match="list of token lists"):
        batch_to_ids(bad)


def test_non_string_token_is_a_type_error():
    with pytest.raises(TypeError, match="int"):
        token_to_char_ids(5)
