"""Tokenizers: words as they are, sentencepiece pieces that round-trip and align with words."""

from __future__ import annotations

import pytest
from sentencepiece_text import corpus_lines, small_tokenizer
from shared_data import shared_path

from elmo.config import TokenizerConfig
from elmo.data.stream import iter_lines
from elmo.data.tokenizer import (
    WORD_MARK,
    PieceTokenizer,
    Tokenizer,
    train_sentencepiece,
    word_tokenizer,
)


def test_words_are_the_whitespace_tokens():
    tokenizer = word_tokenizer()
    assert tokenizer.units("  The bank ,  of\tit ") == ["The", "bank", ",", "of", "it"]
    assert tokenizer.word_units(["a", "b"]) == [["a"], ["b"]]
    assert tokenizer.inventory is None
    with pytest.raises(ValueError, match="sentencepiece"):
        Tokenizer(TokenizerConfig(kind="sentencepiece"))


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_pieces_round_trip_the_training_text_exactly(model_type):
    tokenizer = small_tokenizer(model_type)
    for line in corpus_lines():
        assert tokenizer.decode(tokenizer.units(line)) == line


def test_a_wikitext_slice_round_trips_exactly():
    path = shared_path("data", "wikitext-2", "wiki.valid.tokens")
    lines = [line.strip() for line, _ in zip(iter_lines(path), range(400)) if line.strip()]
    config = TokenizerConfig(kind="sentencepiece", vocab_size=600, character_coverage=1.0)
    tokenizer = train_sentencepiece(lines, config)
    # WikiText's text is already NFKC-normal, with single spaces: it comes back as it was.
    for line in lines:
        assert tokenizer.decode(tokenizer.units(line)) == line


def test_normalisation_changes_only_text_that_is_not_normal():
    tokenizer = small_tokenizer()
    assert tokenizer.decode(tokenizer.units("ｃａｔ  ﬁ ½")) == "cat fi 1⁄2"  # NFKC, one space


def test_word_units_align_with_the_words_of_a_line():
    tokenizer = small_tokenizer()
    line = "The neighbour painted Привет 我们今天去公园散步。 naïve"
    words = tokenizer.words(line)
    pieces = tokenizer.word_units(words)
    assert len(pieces) == len(words) == 6
    assert all(word_pieces and word_pieces[0].startswith(WORD_MARK) for word_pieces in pieces)
    assert [p for word_pieces in pieces for p in word_pieces] == tokenizer.units(line)
    assert max(len(word_pieces) for word_pieces in pieces) > 1  # some words are split
    assert [tokenizer.decode(word_pieces) for word_pieces in pieces] == words


def test_a_word_that_normalises_to_nothing_still_has_one_unit():
    tokenizer = small_tokenizer()
    assert tokenizer.word_units(["\u200b", "cat"])[0] == [WORD_MARK]


def test_uncovered_characters_fall_back_to_bytes_of_the_inventory():
    tokenizer = small_tokenizer()
    inventory = set(tokenizer.inventory)
    units = tokenizer.units("ξ ☃ ok")  # Greek and a snowman are not in the corpus
    assert all(unit in inventory for unit in units)
    assert "<unk>" not in inventory and "<0xE2>" in inventory


def test_save_and_load_give_the_same_pieces(tmp_path):
    tokenizer = small_tokenizer()
    tokenizer.save(tmp_path / "sp.model")
    loaded = PieceTokenizer.load(tokenizer.config, tmp_path / "sp.model")
    line = corpus_lines()[-1]
    assert loaded.units(line) == tokenizer.units(line)
    assert loaded.inventory == tokenizer.inventory


def test_a_vocabulary_size_the_text_cannot_fill_is_a_clear_error():
    config = TokenizerConfig(kind="sentencepiece", vocab_size=5000)
    with pytest.raises(ValueError, match="Vocabulary size too high"):
        train_sentencepiece(corpus_lines(), config)


def test_config_values_are_checked():
    with pytest.raises(ValueError, match="tokenizer.kind"):
        TokenizerConfig(kind="bytes").validate()
    with pytest.raises(ValueError, match="tokenizer.pooling"):
        TokenizerConfig(pooling="max").validate()
    with pytest.raises(ValueError, match="tokenizer.model_type"):
        TokenizerConfig(model_type="char").validate()


def test_user_defined_symbols_stay_whole():
    lines = [line.replace("river", "<unk>") for line in corpus_lines()]
    config = TokenizerConfig(
        kind="sentencepiece", vocab_size=360, character_coverage=1.0, user_defined_symbols=["<unk>"]
    )
    tokenizer = train_sentencepiece(lines, config)
    whole, inside = tokenizer.word_units(["<unk>", "a<unk>"])
    assert whole == [WORD_MARK, "<unk>"] and inside[-1] == "<unk>"
