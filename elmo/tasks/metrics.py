"""Scores: accuracy, binary F1, chunk span F1 (conlleval), and Spearman's rho with tie-aware
(average) ranks.

Written here rather than imported from scipy / scikit-learn to keep the dependencies to the ones
the README lists; each is a few lines and is checked against hand-computed values in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from elmo.tasks.datasets.conll2000 import is_chunk_tag

Span = tuple[str, int, int]  # a chunk: (type, first token, last token), both ends inclusive


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


def token_accuracy(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> float:
    """The fraction of tokens whose predicted tag equals the gold tag, over all sentences."""
    _check_sentences(predicted, gold)
    return accuracy(
        [tag for tags in predicted for tag in tags], [tag for tags in gold for tag in tags]
    )


def chunk_spans(tags: Sequence[str]) -> list[Span]:
    """The chunks of one sentence's IOB tags (``B-NP I-NP O B-VP``), read as conlleval reads them.

    A chunk of type X starts at ``B-X``, and also at an ``I-X`` that cannot continue a chunk: at
    the sentence start, after ``O``, or after a tag of another type (conlleval's startOfChunk;
    so ``O I-NP`` is an NP chunk, and ``B-NP I-VP`` two chunks). A chunk ends before ``O``, a
    ``B-``, a tag of another type, or the end of the sentence.
    """
    spans: list[Span] = []
    start, kind = None, ""
    for position, tag in enumerate([*tags, "O"]):  # the sentence boundary reads as O
        if not is_chunk_tag(tag):
            raise ValueError(f"a chunk tag must be O, B-TYPE or I-TYPE, got {tag!r}")
        prefix, _, tag_kind = tag.partition("-")
        continues = prefix == "I" and start is not None and tag_kind == kind
        if start is not None and not continues:
            spans.append((kind, start, position - 1))
            start = None
        if tag != "O" and not continues:
            start, kind = position, tag_kind
    return spans


class SpanScores(NamedTuple):
    """Chunk precision, recall and F1 over a whole data set (micro-averaged, as conlleval)."""

    precision: float
    recall: float
    f1: float


def span_scores(
    predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]
) -> SpanScores:
    """conlleval's chunk scores: a predicted chunk is correct only if a gold chunk has its type
    and both its boundaries (``chunk_spans``). Each score is 0 where it is undefined."""
    _check_sentences(predicted, gold)
    correct = found_predicted = found_gold = 0
    for predicted_tags, gold_tags in zip(predicted, gold):
        predicted_spans, gold_spans = set(chunk_spans(predicted_tags)), set(chunk_spans(gold_tags))
        correct += len(predicted_spans & gold_spans)
        found_predicted += len(predicted_spans)
        found_gold += len(gold_spans)
    precision = correct / found_predicted if found_predicted else 0.0
    recall = correct / found_gold if found_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return SpanScores(precision, recall, f1)


def span_f1(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> float:
    """conlleval's chunk F1 (``span_scores``)."""
    return span_scores(predicted, gold).f1


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


def _check_sentences(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> None:
    """Raise ValueError unless both hold the same number of sentences of the same lengths."""
    if len(predicted) != len(gold) or any(len(p) != len(g) for p, g in zip(predicted, gold)):
        raise ValueError(
            f"predicted and gold tags must match sentence for sentence, got lengths "
            f"{[len(p) for p in predicted][:5]}... and {[len(g) for g in gold][:5]}..."
        )


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
