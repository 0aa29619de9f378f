"""Pooling piece vectors into word vectors: first, last and mean, checked by hand."""

from __future__ import annotations

import pytest
import torch

from elmo.modules.pooling import pool_pieces


def test_first_last_and_mean_of_each_word():
    layers = torch.randn(3, 6, 4)  # (L, P, 2D): words of 1, 3 and 2 pieces
    counts = [1, 3, 2]
    first = pool_pieces(layers, counts, "first")
    last = pool_pieces(layers, counts, "last")
    mean = pool_pieces(layers, counts, "mean")
    assert first.shape == last.shape == mean.shape == (3, 3, 4)
    assert torch.equal(first, layers[:, [0, 1, 4]])
    assert torch.equal(last, layers[:, [0, 3, 5]])
    expected = torch.stack(
        [layers[:, 0], layers[:, 1:4].mean(dim=1), layers[:, 4:6].mean(dim=1)], dim=1
    )
    torch.testing.assert_close(mean, expected)


def test_one_piece_per_word_is_the_identity():
    layers = torch.randn(2, 5, 3)
    for pooling in ("first", "last", "mean"):
        torch.testing.assert_close(pool_pieces(layers, [1] * 5, pooling), layers)


def test_an_empty_sentence_has_no_words():
    assert pool_pieces(torch.zeros(2, 0, 3), [], "mean").shape == (2, 0, 3)


def test_bad_counts_and_pooling_are_errors():
    layers = torch.zeros(1, 3, 2)
    with pytest.raises(ValueError, match="at least one piece"):
        pool_pieces(layers, [3, 0], "mean")
    with pytest.raises(ValueError, match="2 pieces in all"):
        pool_pieces(layers, [1, 1], "first")
    with pytest.raises(ValueError, match="pooling"):
        pool_pieces(layers, [3], "max")
