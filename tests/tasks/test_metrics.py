"""Accuracy, F1, chunk span F1 and Spearman against values worked out by hand (ties included)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from elmo.tasks.metrics import (
    accuracy,
    average_ranks,
    binary_f1,
    chunk_spans,
    pearson,
    span_f1,
    span_scores,
    spearman,
    token_accuracy,
)


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


@pytest.mark.parametrize(
    "tags, spans",
    [
        ("B-NP I-NP O B-VP", [("NP", 0, 1), ("VP", 3, 3)]),
        ("B-NP B-NP I-NP", [("NP", 0, 0), ("NP", 1, 2)]),  # B- ends the chunk before it
        # conlleval's startOfChunk: an I- tag that cannot continue a chunk starts one
        ("I-NP I-NP O", [("NP", 0, 1)]),  # at the sentence start
        ("O I-VP", [("VP", 1, 1)]),  # after O
        ("B-NP I-VP I-VP", [("NP", 0, 0), ("VP", 1, 2)]),  # after another type
        ("B-PP B-NP I-NP", [("PP", 0, 0), ("NP", 1, 2)]),
        ("O O", []),
        ("", []),
    ],
)
def test_chunk_spans_read_iob_tags_as_conlleval(tags, spans):
    assert chunk_spans(tags.split()) == spans


def test_chunk_spans_refuse_a_tag_outside_iob2():
    for bad in ("X-NP", "B-", "NP", "E-NP"):
        with pytest.raises(ValueError, match=f"got '{bad}'"):
            chunk_spans(["O", bad])


def test_span_f1_by_hand():
    gold = [["B-NP", "I-NP", "B-VP", "O"], ["B-NP", "B-PP", "B-NP", "I-NP"]]
    predicted = [
        ["B-NP", "I-NP", "B-NP", "O"],  # NP right; VP typed wrong (an NP at 2-2)
        ["B-NP", "B-PP", "B-NP", "B-NP"],  # NP, PP right; NP 2-3 split in two: neither right
    ]
    # gold chunks 2 + 3 = 5; predicted 2 + 4 = 6; correct 1 + 2 = 3
    scores = span_scores(predicted, gold)
    assert scores.precision == pytest.approx(3 / 6) and scores.recall == pytest.approx(3 / 5)
    assert scores.f1 == pytest.approx(2 * 0.5 * 0.6 / 1.1)
    assert span_f1(predicted, gold) == scores.f1
    assert token_accuracy(predicted, gold) == pytest.approx(6 / 8)


def test_span_f1_counts_an_i_start_chunk_and_never_crosses_sentences():
    # conlleval reads "O I-NP I-NP" as the chunk NP 1-2, so this prediction is right
    assert span_f1([["O", "I-NP", "I-NP"]], [["O", "B-NP", "I-NP"]]) == 1.0
    # I-NP at a sentence start begins a new chunk; it does not continue the last sentence's
    gold = [["B-NP"], ["B-NP", "I-NP"]]
    assert span_f1([["B-NP"], ["I-NP", "I-NP"]], gold) == 1.0
    # the boundary of the chunk matters: one token too few is wrong
    assert span_f1([["B-NP"], ["B-NP", "O"]], gold) == pytest.approx(2 * 0.5 * 0.5 / 1.0)


def test_span_f1_is_zero_without_chunks_and_checks_lengths():
    assert span_scores([["O"]], [["O"]]) == (0.0, 0.0, 0.0)
    assert span_f1([["O", "O"]], [["B-NP", "O"]]) == 0.0
    with pytest.raises(ValueError, match="sentence for sentence"):
        span_f1([["O"]], [["O", "O"]])
    with pytest.raises(ValueError, match="sentence for sentence"):
        token_accuracy([["O"]], [["O"], ["O"]])


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
