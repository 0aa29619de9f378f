"""Tests for elmo.data.stream: bilm-tf style windows, padding, resuming, rank splits, laziness."""

from __future__ import annotations

import functools
import io
import itertools
import operator

import pytest
import torch

from elmo.data.characters import token_to_char_ids
from elmo.data.stream import (
    LMBatcher,
    iter_lines,
    sentence_stream,
    shuffle_blocks,
    target_log_probs,
)
from elmo.data.vocab import Vocabulary
from elmo.files import InputFileError
from tests.shared_data import shared_path

W = 8
CORPUS = ["a b c", "", "d e", " = H = ", "f"]  # a blank line and a WikiText-style heading


def window_tokens(batch: torch.Tensor, mask: torch.Tensor, vocab: Vocabulary) -> list[list[str]]:
    """(B, T) ids -> token strings, '_' where the mask is False."""
    return [
        [vocab.id_to_token(i) if m else "_" for i, m in zip(row.tolist(), row_mask.tolist())]
        for row, row_mask in zip(batch, mask)
    ]


def run(batcher: LMBatcher, vocab: Vocabulary) -> list[tuple[list[list[str]], list[list[str]]]]:
    return [
        (window_tokens(b.token_ids, b.mask, vocab), window_tokens(b.next_token_ids, b.mask, vocab))
        for b in batcher
    ]


def test_forward_windows_match_hand_computed_ones():
    vocab = Vocabulary.build(CORPUS)
    batches = run(LMBatcher(CORPUS, vocab, batch_size=2, unroll_steps=3, max_chars=W), vocab)
    # Rows take sentences in turn; a sentence's last input is its last word (target </S>), and the
    # next window continues where the row stopped.
    assert batches == [
        ([["<S>", "a", "b"], ["<S>", "d", "e"]], [["a", "b", "c"], ["d", "e", "</S>"]]),
        ([["c", "<S>", "="], ["<S>", "f", "_"]], [["</S>", "=", "H"], ["f", "</S>", "_"]]),
        ([["H", "=", "_"], ["_", "_", "_"]], [["=", "</S>", "_"], ["_", "_", "_"]]),
    ]


def test_backward_windows_read_reversed_sentences():
    vocab = Vocabulary.build(CORPUS)
    batcher = LMBatcher(CORPUS, vocab, batch_size=2, unroll_steps=3, max_chars=W, reverse=True)
    assert run(batcher, vocab) == [
        ([["</S>", "c", "b"], ["</S>", "e", "d"]], [["c", "b", "a"], ["e", "d", "<S>"]]),
        ([["a", "</S>", "="], ["</S>", "f", "_"]], [["<S>", "=", "H"], ["f", "<S>", "_"]]),
        ([["H", "=", "_"], ["_", "_", "_"]], [["=", "<S>", "_"], ["_", "_", "_"]]),
    ]


def test_batch_tensors_shapes_dtypes_and_char_ids():
    vocab = Vocabulary.build(CORPUS)
    batches = list(LMBatcher(CORPUS, vocab, batch_size=2, unroll_steps=3, max_chars=W))
    batch = batches[1]
    assert batch.token_ids.shape == batch.next_token_ids.shape == batch.mask.shape == (2, 3)
    assert batch.char_ids.shape == (2, 3, W)
    assert batch.token_ids.dtype == batch.char_ids.dtype == torch.long
    assert batch.mask.dtype == torch.bool
    assert batch.char_ids[0, 1].tolist() == token_to_char_ids("<S>", W)
    assert batch.char_ids[0, 2].tolist() == token_to_char_ids("=", W)
    padding = ~batches[2].mask
    assert (batches[2].char_ids[padding] == 0).all() and (batches[2].token_ids[padding] == 0).all()


def test_targets_continue_across_windows_on_wikitext():
    path = shared_path("data", "wikitext-2", "wiki.valid.tokens")
    lines = lambda: itertools.islice(iter_lines(path), 60)
    vocab = Vocabulary.build(lines(), max_size=300)
    batches = list(LMBatcher(lines, vocab, batch_size=4, unroll_steps=7, max_chars=W))
    ids = torch.cat([b.token_ids for b in batches], dim=1)  # (B, total T): each row's stream
    targets = torch.cat([b.next_token_ids for b in batches], dim=1)
    mask = torch.cat([b.mask for b in batches], dim=1)
    follows = mask[:, :-1] & mask[:, 1:]
    new_sentence = ids[:, 1:] == vocab.bos_id
    # The target is the next input, except where the next input starts a new sentence.
    assert (targets[:, :-1] == ids[:, 1:])[follows & ~new_sentence].all()
    assert (targets[:, :-1] == vocab.eos_id)[follows & new_sentence].all()
    num_sentences = sum(1 for _ in sentence_stream(lines()))
    starts = (ids == vocab.bos_id) & mask  # (padding is id 0 = <S> too, hence the mask)
    assert int(starts.sum()) == num_sentences
    assert int(mask.sum()) == sum(len(s) + 1 for s in sentence_stream(lines()))


def test_wikitext_headings_are_sentences_and_blank_lines_are_skipped():
    lines = list(
        itertools.islice(iter_lines(shared_path("data", "wikitext-2", "wiki.valid.tokens")), 4)
    )
    assert lines[0] == " " and lines[1] == " = Homarus gammarus = "
    assert next(iter(sentence_stream(lines))) == ["=", "Homarus", "gammarus", "="]


def synthetic_corpus(num_lines: int) -> list[str]:
    return [
        " ".join(f"w{i}_{j}" for j in range(1 + i % 5)) if i % 4 else "" for i in range(num_lines)
    ]


@pytest.mark.parametrize("shuffle_buffer", [0, 5])
def test_resume_from_state_dict_yields_the_same_batches(shuffle_buffer):
    corpus = synthetic_corpus(40)
    vocab = Vocabulary.build(corpus)
    make = lambda: LMBatcher(
        corpus,
        vocab,
        batch_size=3,
        unroll_steps=4,
        max_chars=W,
        shuffle_buffer=shuffle_buffer,
        seed=3,
    )
    reference = make()
    expected = [list(reference), list(reference)]  # two epochs
    assert reference.epoch == 2
    if shuffle_buffer:  # each epoch is shuffled differently
        assert not torch.equal(expected[0][0].token_ids, expected[1][0].token_ids)
    for epoch, stop in [(0, 0), (0, 2), (0, len(expected[0]) - 1), (1, 3)]:
        interrupted = make()
        for _ in range(epoch):
            list(interrupted)
        taken = list(itertools.islice(iter(interrupted), stop))
        buffer = io.BytesIO()
        torch.save(interrupted.state_dict(), buffer)
        buffer.seek(0)
        resumed = make()
        resumed.load_state_dict(torch.load(buffer, weights_only=True))
        rest = list(resumed)
        assert resumed.epoch == epoch + 1
        for got, want in zip(taken + rest, expected[epoch], strict=True):
            for g, w in zip(got, want):
                assert torch.equal(g, w)


def test_state_from_other_settings_is_rejected():
    vocab = Vocabulary.build(CORPUS)
    state = LMBatcher(CORPUS, vocab, batch_size=2, unroll_steps=3, reverse=True).state_dict()
    with pytest.raises(ValueError, match="reverse=True"):
        LMBatcher(CORPUS, vocab, batch_size=2, unroll_steps=3).load_state_dict(state)


def sentences_seen(batcher: LMBatcher, vocab: Vocabulary) -> list[str]:
    """Rebuild the sentences a forward batcher handed out from its rows' input streams."""
    batches = list(batcher)
    ids = torch.cat([b.token_ids for b in batches], dim=1)
    mask = torch.cat([b.mask for b in batches], dim=1)
    sentences = []
    for row, row_mask in zip(ids, mask):
        stream = " ".join(vocab.decode(row[row_mask].tolist()))
        sentences += [s.strip() for s in stream.split("<S>") if s.strip()]
    return sentences


def test_rank_split_is_disjoint_and_covering():
    corpus = synthetic_corpus(50)
    vocab = Vocabulary.build(corpus)
    seen = [
        sentences_seen(LMBatcher(corpus, vocab, 2, 5, W, rank=r, world_size=3), vocab)
        for r in range(3)
    ]
    expected = [line for line in corpus if line]
    assert sorted(functools.reduce(operator.iadd, seen, [])) == sorted(
        expected
    )  # covering, and disjoint (no repeats)
    assert seen[1] and set(seen[1]) == set(expected[1::3])
    with pytest.raises(ValueError, match="rank"):
        LMBatcher(corpus, vocab, 2, 5, rank=3, world_size=3)


def test_batcher_reads_lazily_from_an_infinite_generator():
    lines_read = 0

    def forever():
        nonlocal lines_read
        for i in itertools.count():
            lines_read += 1
            yield f"x{i % 7} y z"

    vocab = Vocabulary.build(["x0 y z"])
    batcher = LMBatcher(forever(), vocab, batch_size=4, unroll_steps=5, max_chars=W)
    batches = list(itertools.islice(iter(batcher), 3))
    assert len(batches) == 3 and all(b.mask.all() for b in batches)
    assert lines_read <= 4 * 3 * 5  # at most one sentence per position taken
    with pytest.raises(ValueError, match="one-shot"):
        batcher.load_state_dict(batcher.state_dict())
        next(iter(batcher))


def test_iter_lines_reads_a_sorted_glob_and_names_missing_patterns(tmp_path):
    (tmp_path / "shard_2.txt").write_text("c\n", encoding="utf-8")
    (tmp_path / "shard_1.txt").write_text("a\n\nb\n", encoding="utf-8")
    assert list(iter_lines(str(tmp_path / "shard_*.txt"))) == ["a", "", "b", "c"]
    vocab = Vocabulary.build(["a b c"])
    batcher = LMBatcher(tmp_path / "shard_*.txt", vocab, batch_size=1, unroll_steps=9, max_chars=W)
    assert window_tokens(
        next(iter(batcher)).token_ids, torch.ones(1, 9, dtype=torch.bool), vocab
    ) == [
        ["<S>", "a", "<S>", "b", "<S>", "c", "<S>", "<S>", "<S>"]  # padding id 0 is <S>
    ]
    with pytest.raises(FileNotFoundError, match="nothing_here_\\*"):
        iter_lines(str(tmp_path / "nothing_here_*"))


def test_shuffle_blocks_is_a_seeded_permutation_within_blocks():
    items = list(range(10))
    shuffled = list(shuffle_blocks(items, 4, seed=1))
    assert shuffled == list(shuffle_blocks(items, 4, seed=1))
    assert [sorted(shuffled[i : i + 4]) for i in (0, 4, 8)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert shuffled != list(shuffle_blocks(items, 4, seed=1, epoch=1))


@pytest.mark.parametrize("token_cache_size", [2, 6])  # 2: sentences bypass it; 6: it restarts
def test_small_token_cache_gives_the_same_batches(token_cache_size):
    vocab = Vocabulary.build(CORPUS)
    make = lambda size: LMBatcher(CORPUS, vocab, 2, 3, W, token_cache_size=size)
    for got, want in zip(make(token_cache_size), make(1000), strict=True):
        assert all(torch.equal(g, w) for g, w in zip(got, want))


def test_invalid_utf8_names_the_file_and_line(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(b"the bank\n" * 3000 + b"a river \xff bank\nmoney\n")  # past the first chunk
    with pytest.raises(InputFileError, match=r"train\.txt:3001: invalid UTF-8 \(byte 0xff at column 9\)"):
        list(iter_lines(path))


def test_a_directory_is_reported_as_a_directory(tmp_path):
    with pytest.raises(InputFileError, match="is a directory, not a text file"):
        iter_lines(tmp_path)


@pytest.mark.parametrize("text", ["", "\n  \n\t\n"])
def test_a_text_without_sentences_is_a_clear_error_not_stop_iteration(tmp_path, text):
    path = tmp_path / "train.txt"
    path.write_text(text)
    vocab = Vocabulary.build([])
    batcher = LMBatcher(str(path), vocab, batch_size=2, unroll_steps=3, max_chars=W)
    with pytest.raises(InputFileError, match=r"train\.txt: no sentences to train on"):
        next(iter(batcher))


def test_target_log_probs_are_the_pooled_frequencies_of_both_streams_targets():
    corpus = [*CORPUS, "a a b", "a x y"]
    vocab = Vocabulary.build(corpus, max_size=6)  # x, y and more are <UNK>
    counts = torch.zeros(len(vocab), dtype=torch.float64)
    for reverse in (False, True):
        for batch in LMBatcher(corpus, vocab, batch_size=2, unroll_steps=3, max_chars=W,
                               reverse=reverse):  # fmt: skip
            counts += torch.bincount(batch.next_token_ids[batch.mask], minlength=len(vocab))
    assert counts[vocab.bos_id] == counts[vocab.eos_id] == 6 and counts[vocab.unk_id] > 0
    expected = (counts / counts.sum()).log().float()
    assert torch.allclose(target_log_probs(vocab, smoothing=0.0), expected, atol=1e-6)
    # add-one smoothing (the default): a token never seen is not -inf
    smoothed = target_log_probs(Vocabulary(vocab.tokens, [0, *vocab.counts[1:]]))
    assert torch.isfinite(smoothed).all() and smoothed.exp().sum().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="has no counts"):
        target_log_probs(Vocabulary(vocab.tokens))
