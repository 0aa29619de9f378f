"""Tests for elmo.modules.sequence: lengths, sentence boundaries and in-length reversal."""

from __future__ import annotations

import torch

from elmo.modules.sequence import (
    add_sentence_boundaries,
    lengths_from_mask,
    remove_sentence_boundaries,
    reverse_padded,
)

LENGTHS = [3, 1, 0, 4, 2]  # ragged, unsorted, with an empty row
W = 5


def mask_of(lengths: list[int], steps: int) -> torch.Tensor:
    return torch.arange(steps).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)  # (B, T)


def test_lengths_from_mask():
    assert lengths_from_mask(mask_of(LENGTHS, 4)).tolist() == LENGTHS


def test_add_sentence_boundaries_frames_each_sentence_at_its_own_length():
    steps = max(LENGTHS)
    mask = mask_of(LENGTHS, steps)
    char_ids = torch.randint(
        1, 262, (len(LENGTHS), steps, W)
    )  # padding holds junk: must be dropped
    bos, eos = torch.full((W,), 7), torch.full((W,), 9)
    framed, framed_mask = add_sentence_boundaries(char_ids, mask, bos, eos)
    assert framed.shape == (len(LENGTHS), steps + 2, W)
    assert framed_mask.tolist() == mask_of([n + 2 for n in LENGTHS], steps + 2).tolist()
    for row, n in enumerate(LENGTHS):
        assert torch.equal(framed[row, 0], bos)
        assert torch.equal(framed[row, 1 : n + 1], char_ids[row, :n])
        assert torch.equal(framed[row, n + 1], eos)
        assert (framed[row, n + 2 :] == 0).all()


def test_remove_undoes_add_with_ragged_lengths():
    steps = max(LENGTHS)
    mask = mask_of(LENGTHS, steps)
    char_ids = torch.randint(1, 262, (len(LENGTHS), steps, W)) * mask.unsqueeze(-1)
    bos, eos = torch.full((W,), 7), torch.full((W,), 9)
    framed, framed_mask = add_sentence_boundaries(char_ids, mask, bos, eos)
    inner, inner_mask = remove_sentence_boundaries(framed, framed_mask)
    assert torch.equal(inner, char_ids)
    assert torch.equal(inner_mask, mask)


def test_remove_sentence_boundaries_on_vectors_zeroes_padding():
    lengths = [2, 0, 3]
    values = torch.randn(3, 5, 4)  # (B, T+2, D), junk everywhere
    inner, inner_mask = remove_sentence_boundaries(values, mask_of([n + 2 for n in lengths], 5))
    assert inner.shape == (3, 3, 4)
    assert inner_mask.tolist() == mask_of(lengths, 3).tolist()
    for row, n in enumerate(lengths):
        assert torch.equal(inner[row, :n], values[row, 1 : n + 1])
        assert (inner[row, n:] == 0).all()


def test_reverse_padded_reverses_only_within_each_length():
    steps = max(LENGTHS)
    values = torch.randn(len(LENGTHS), steps, 3)  # (B, T, D)
    reversed_values = reverse_padded(values, torch.tensor(LENGTHS))
    for row, n in enumerate(LENGTHS):
        assert torch.equal(reversed_values[row, :n], values[row, :n].flip(0))
        assert torch.equal(reversed_values[row, n:], values[row, n:])  # padding stays in place


def test_reverse_padded_twice_is_identity():
    lengths = torch.tensor(LENGTHS)
    for shape in [(len(LENGTHS), 4), (len(LENGTHS), 4, 3), (len(LENGTHS), 4, 2, 3)]:
        values = torch.randn(shape)
        assert torch.equal(reverse_padded(reverse_padded(values, lengths), lengths), values)


def test_reverse_padded_on_ids():
    ids = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    assert reverse_padded(ids, torch.tensor([3, 2])).tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]
