"""Accuracy, F1 and Spearman against values worked out by hand (ties included)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from elmo.tasks.metrics import accuracy, average_ranks, binary_f1, pearson, spearman


def test_accuracy_on_known_predictions():
    assert accuracy([1, 0, 2, 2], [1, 1, 2, 0]) == 0.5
    with pytest.raises(ValueError, match="1-d of one length"):
        accuracy([1, 0], [1])
    with pytest.raises(ValueError, match="no examples"):
        accuracy([], [])


def test_binary_f1_by_hand():
    # TP = 2 (rows 0, 3), FP = 1 (row 1), FN = 1 (row 2): F1 = 4 / (4 + 1 + 1)
    assert binary_f1([1, 1, 0, 1, 0], [1, 0, 1, 1, 0]) == pytest.approx(4 / 6)
    assert binary_f1([0, 1], [1, 0], positive=0) == 0.0
    assert binary_f1([0, 0], [0, 0]) == 0.0  # no positive predicted or present


def test_average_ranks_share_tied_positions():
    np.testing.assert_array_equal(average_ranks([5, 7, 7, 1]), [2, 3.5, 3.5, 1])
    np.testing.assert_array_equal(average_ranks([2, 2, 2]), [2, 2, 2])


def test_spearman_with_ties_by_hand():
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 3, 2, 4]; centred: [-1.5, 0, 0, 1.5], [-1.5, .5, -.5, 1.5]
    # rho = 4.5 / sqrt(4.5 * 5) = 3 / sqrt(10)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(3 / math.sqrt(10))
    # the example of scipy.stats.spearmanr's documentation
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(0.8207826816681233)


def test_spearman_without_ties_matches_the_textbook_formula():
    x, y = [3, 1, 4, 15, 9, 2], [2, 7, 1, 8, 28, 18]
    d = average_ranks(x) - average_ranks(y)
    n = len(x)
    assert spearman(x, y) == pytest.approx(1 - 6 * (d**2).sum() / (n * (n * n - 1)))
    assert spearman(x, [-v for v in x]) == pytest.approx(-1.0)


def test_correlation_of_a_constant_is_nan():
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="equal length"):
        pearson([1, 2], [1, 2, 3])
