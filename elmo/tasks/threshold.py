"""A one-feature classifier: predict 1 when a score (e.g. a cosine) reaches a threshold.

The threshold is the one with the best accuracy on the training scores. Only midpoints between
consecutive distinct scores (and the two extremes) can change the predictions, so trying those
finds the exact optimum in O(N log N).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class Threshold(NamedTuple):
    value: float  # predict 1 when score >= value
    train_accuracy: float  # accuracy of that rule on the scores it was tuned on


def tune_threshold(scores: Sequence[float], labels: Sequence[int]) -> Threshold:
    """The threshold that classifies ``scores`` (label 1 = high score) most accurately.

    Ties between equally good thresholds go to the lowest one.
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    if scores.shape != labels.shape or scores.ndim != 1 or len(scores) == 0:
        raise ValueError(
            f"need 1-d scores and labels of one length, got {scores.shape} and {labels.shape}"
        )
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    distinct = np.unique(scores)  # sorted
    candidates = np.concatenate(
        [[distinct[0]], (distinct[:-1] + distinct[1:]) / 2.0, [np.inf]]
    )  # everything positive, each midpoint, everything negative
    sorted_scores = np.sort(scores)
    positives_sorted = labels[np.argsort(scores, kind="stable")]
    positives_below = np.concatenate([[0], np.cumsum(positives_sorted)])  # (N+1,)
    below = np.searchsorted(sorted_scores, candidates, side="left")  # examples predicted 0
    true_negatives = below - positives_below[below]
    true_positives = labels.sum() - positives_below[below]
    correct = true_negatives + true_positives
    best = int(np.argmax(correct))
    return Threshold(float(candidates[best]), float(correct[best] / len(scores)))


def apply_threshold(scores: Sequence[float], threshold: float) -> np.ndarray:
    """0/1 predictions: 1 where ``score >= threshold``."""
    return (np.asarray(scores, dtype=np.float64) >= threshold).astype(np.int64)
