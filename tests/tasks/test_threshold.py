"""The cosine-threshold classifier on hand-made scores."""

from __future__ import annotations

import numpy as np
import pytest

from elmo.tasks.threshold import apply_threshold, tune_threshold


def test_separable_scores_get_the_midpoint_and_full_accuracy():
    threshold = tune_threshold([0.9, 0.95, 0.2, 0.3], [1, 1, 0, 0])
    assert threshold.value == pytest.approx(0.6) and threshold.train_accuracy == 1.0
    np.testing.assert_array_equal(apply_threshold([0.1, 0.6, 0.7], threshold.value), [0, 1, 1])


def test_best_of_overlapping_scores_by_hand():
    # sorted: 0.1 (F), 0.35 (T), 0.4 (F), 0.8 (T). Thresholds 0.225 and 0.6 both get 3 of 4
    # right; the lower one wins the tie.
    threshold = tune_threshold([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    assert threshold.value == pytest.approx(0.225) and threshold.train_accuracy == 0.75


def test_all_positive_or_all_negative_rules_are_candidates():
    assert tune_threshold([0.5, 0.7], [1, 1]) == (0.5, 1.0)
    assert tune_threshold([0.5, 0.7], [0, 0]).value == np.inf


def test_bad_inputs():
    with pytest.raises(ValueError, match="0 or 1"):
        tune_threshold([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="one length"):
        tune_threshold([0.1, 0.2], [0])
