"""Scores: accuracy, binary F1, and Spearman's rho with tie-aware (average) ranks.

Written here rather than imported from scipy / scikit-learn to keep the dependencies to the ones
the README lists; each is a few lines and is checked against hand-computed values in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """The fraction of predictions equal to their label."""
    predictions, labels = _pair(predictions, labels)
    return float((predictions == labels).mean())


def binary_f1(predictions: Sequence[int], labels: Sequence[int], positive: int = 1) -> float:
    """F1 of the ``positive`` class: 2 TP / (2 TP + FP + FN); 0 when there is no positive at all."""
    predictions, labels = _pair(predictions, labels)
    predicted, actual = predictions == positive, labels == positive
    true_positives = float(np.sum(predicted & actual))
    denominator = (
        2 * true_positives + float(np.sum(predicted & ~actual)) + float(np.sum(~predicted & actual))
    )
    return 2 * true_positives / denominator if denominator else 0.0


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks; ties share the mean of the ranks they span (``[5, 7, 7]`` -> 1, 2.5, 2.5)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    start = 0
    while start < len(values):
        end = start + 1
        while end < len(values) and sorted_values[end] == sorted_values[start]:
            end += 1
        ranks[order[start:end]] = (start + 1 + end) / 2.0  # mean of ranks start+1 .. end
        start = end
    return ranks


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's correlation; NaN when either side is constant (the correlation is undefined)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(
            f"pearson needs two 1-d sequences of equal length >= 2, got {x.shape} and {y.shape}"
        )
    dx, dy = x - x.mean(), y - y.mean()
    denominator = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    return float((dx * dy).sum() / denominator) if denominator > 0 else float("nan")


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson's correlation of the average ranks (correct with ties)."""
    return pearson(average_ranks(x), average_ranks(y))


def _pair(predictions: Sequence[int], labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape or predictions.ndim != 1:
        raise ValueError(
            f"predictions and labels must be 1-d of one length, got {predictions.shape} "
            f"and {labels.shape}"
        )
    if len(labels) == 0:
        raise ValueError("no examples to score")
    return predictions, labels
