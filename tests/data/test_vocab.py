"""Tests for elmo.data.vocab: ordering, specials, counts, the file format and its errors."""

from __future__ import annotations

import math

import pytest

from elmo.data.vocab import SPECIAL_TOKENS, UNK_TOKEN, Vocabulary
from elmo.files import ModelFileError


def test_build_sorts_by_frequency_then_alphabetically_after_the_specials():
    lines = iter(["b a b", "", "  c a b ", "z y"])  # a one-shot stream is enough
    vocab = Vocabulary.build(lines)
    assert vocab.tokens == ["<S>", "</S>", "<UNK>", "b", "a", "c", "y", "z"]
    assert (vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2)
    # <S> and </S> once per non-empty line, nothing unknown
    assert vocab.counts == [3, 3, 0, 3, 2, 1, 1, 1]


def test_min_count_and_max_size_send_the_rest_to_unk():
    lines = ["a a a b b c d", "<S> e"]
    vocab = Vocabulary.build(lines, min_count=2)
    assert vocab.tokens == [*SPECIAL_TOKENS, "a", "b"]
    assert vocab.counts[2] == 3  # c, d, e; the literal <S> is not counted as a word
    vocab = Vocabulary.build(lines, max_size=4)
    assert vocab.tokens == [*SPECIAL_TOKENS, "a"]
    assert vocab.counts[2] == 5
    with pytest.raises(ValueError, match="max_size"):
        Vocabulary.build(lines, max_size=2)


def test_lookups_and_encode():
    vocab = Vocabulary.build(["x y y"])
    assert vocab.token_to_id("y") == 3 and vocab.token_to_id("nope") == vocab.unk_id
    assert vocab.id_to_token(4) == "x"
    assert vocab.encode(["<S>", "x", "q", "</S>"]) == [0, 4, 2, 1]
    assert vocab.decode([0, 4, 2]) == ["<S>", "x", UNK_TOKEN]
    assert len(vocab) == 5 and "x" in vocab and "q" not in vocab
    with pytest.raises(IndexError, match="5"):
        vocab.id_to_token(5)


def test_build_progress_bar_counts_the_same():
    assert Vocabulary.build(["a b a"], progress=True).tokens == Vocabulary.build(["a b a"]).tokens


@pytest.mark.parametrize("with_counts", [True, False])
def test_save_load_roundtrip(tmp_path, with_counts):
    vocab = Vocabulary.build(["é b b", "c"])
    if not with_counts:
        vocab = Vocabulary(vocab.tokens)
    path = tmp_path / "vocab.txt"
    vocab.save(path)
    first_lines = path.read_text(encoding="utf-8").splitlines()[:3]
    assert [line.split("\t")[0] for line in first_lines] == ["<S>", "</S>", "<UNK>"]
    loaded = Vocabulary.load(path)
    assert loaded.tokens == vocab.tokens and loaded.counts == vocab.counts


def test_load_keeps_file_order_of_published_vocabularies(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("</S>\n<S>\n<UNK>\nthe\n,\n", encoding="utf-8")
    vocab = Vocabulary.load(path)
    assert (vocab.bos_id, vocab.eos_id, vocab.unk_id) == (1, 0, 2)
    assert vocab.token_to_id(",") == 4 and vocab.counts is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("<S>\n</S>\n<UNK>\na\n\nb\n", r"vocab.txt:5: empty token"),
        (
            "<S>\n</S>\n<UNK>\na\nb\na\n",
            r"vocab.txt:6: duplicate token 'a' \(first at .*vocab.txt:4\)",
        ),
        ("<S>\n</S>\na\n", r"vocab.txt: .*lacks the special tokens \['<UNK>'\]"),
        ("<S>\t1\n</S>\t1\n<UNK>\n", r"vocab.txt:3: some lines have a count"),
        ("<S>\t1\n</S>\tx\n<UNK>\t0\n", r"vocab.txt:2: count must be a non-negative integer"),
        # "²" is a digit to str.isdigit but not to int() (a case of tests/faults/test_fuzz_readers)
        ("<S>\t1\n</S>\t²\n<UNK>\t0\n", r"vocab.txt:2: count must be a non-negative integer"),
        ("<S>\t1\t2\n", r"vocab.txt:1: expected 'token' or 'token<TAB>count'"),
    ],
)
def test_malformed_files_name_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "vocab.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ModelFileError, match=message):
        Vocabulary.load(path)


def test_constructor_validates():
    with pytest.raises(ValueError, match="duplicate token 'a'"):
        Vocabulary([*SPECIAL_TOKENS, "a", "a"])
    with pytest.raises(ValueError, match="3 counts for 4 tokens"):
        Vocabulary([*SPECIAL_TOKENS, "a"], [1, 2, 3])


def test_unigram_log_probs():
    vocab = Vocabulary.build(["a a b"])  # counts <S> 1, </S> 1, <UNK> 0, a 2, b 1
    log_probs = vocab.unigram_log_probs()
    assert log_probs[3].item() == pytest.approx(math.log(2 / 5))
    assert log_probs[2].item() == -math.inf
    assert log_probs.exp().sum().item() == pytest.approx(1.0)
    smoothed = vocab.unigram_log_probs(smoothing=1.0)
    assert smoothed[2].item() == pytest.approx(math.log(1 / 10))
    with pytest.raises(ValueError, match="no counts"):
        Vocabulary(vocab.tokens).unigram_log_probs()


def test_an_inventory_vocabulary_holds_every_piece_in_frequency_order():
    inventory = ["▁a", "b", "▁c", "<S>"]  # a piece spelled like a special is the special
    lines = ["▁a b b", "b ▁a", "zz"]
    vocab = Vocabulary.from_inventory(inventory, lines, str.split)
    assert vocab.tokens == ["<S>", "</S>", "<UNK>", "b", "▁a", "▁c"]
    assert vocab.counts == [3, 3, 1, 3, 2, 0]  # "zz" is outside the inventory: one <UNK>
    assert vocab.encode(["▁c", "zz"]) == [5, vocab.unk_id]


def test_invalid_utf8_in_a_vocabulary_names_the_file_and_line(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"<S>\n</S>\n<UNK>\nba\xffnk\n")
    with pytest.raises(ModelFileError, match=r"vocab\.txt:4: invalid UTF-8 \(byte 0xff at column 3\)"):
        Vocabulary.load(path)
