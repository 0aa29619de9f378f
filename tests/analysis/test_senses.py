"""Sense clusters: every occurrence embedded, clustered, projected, drawn and written as CSV."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from elmo.analysis.corpus import read_corpus
from elmo.analysis.senses import find_occurrences, find_senses, plot_senses, write_senses_csv

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_every_occurrence_is_clustered_and_projected(lm_bilm, corpus_file):
    senses = find_senses(lm_bilm, corpus_file, "bank")
    assert len(senses.occurrences) == senses.total_occurrences == 8
    assert [o.line for o in senses.occurrences] == [1, 2, 4, 5, 6, 7, 8, 9]
    assert all(o.tokens[o.position] == "bank" for o in senses.occurrences)
    assert senses.coords.shape == (8, 2) and senses.labels.shape == (8,)
    assert 2 <= senses.k <= 6 and set(senses.silhouettes) == set(range(2, 7))
    assert senses.k == max(senses.silhouettes, key=senses.silhouettes.get)
    assert set(senses.labels.tolist()) == set(range(senses.k))
    assert [senses.labels[r] for r in senses.representatives] == list(range(senses.k))
    assert np.all(senses.explained_variance_ratio > 0)


def test_k_and_the_occurrence_cap(lm_bilm, corpus_file):
    senses = find_senses(lm_bilm, corpus_file, "bank", k=2, max_occurrences=5)
    assert senses.k == 2 and senses.silhouettes == {}
    assert len(senses.occurrences) == 5 and senses.total_occurrences == 8
    assert find_senses(lm_bilm, corpus_file, "the", k=3, max_occurrences=None).k == 3


def test_writes_a_png_and_a_csv_with_one_row_per_occurrence(lm_bilm, corpus_file, tmp_path):
    matplotlib_image = pytest.importorskip("matplotlib.image")
    senses = find_senses(lm_bilm, corpus_file, "bank", k=3)
    png = plot_senses(senses, tmp_path / "bank.png")
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib_image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    with open(write_senses_csv(senses, tmp_path / "bank.csv"), encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8
    assert list(rows[0]) == ["sentence", "cluster", "x", "y", "line", "position"]
    assert rows[1]["sentence"] == "We sat on the [bank] of the river ."
    for row, label, (x, y) in zip(rows, senses.labels, senses.coords):
        assert int(row["cluster"]) == label
        assert float(row["x"]) == pytest.approx(x, abs=1e-6) and float(row["y"]) == pytest.approx(
            y, abs=1e-6
        )


def test_find_occurrences_is_exact_and_case_sensitive(corpus_file):
    corpus = read_corpus(corpus_file)
    assert [o.line for o in find_occurrences(corpus, "The")] == [4, 7]
    assert len(find_occurrences(corpus, "the")) == 9


def test_errors(lm_bilm, corpus_file, tmp_path):
    with pytest.raises(ValueError, match="'levee' does not occur in the corpus"):
        find_senses(lm_bilm, corpus_file, "levee")
    with pytest.raises(ValueError, match=r"k must be in \[1, 8\]"):
        find_senses(lm_bilm, corpus_file, "bank", k=9)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        find_senses(lm_bilm, empty, "bank")
    with pytest.raises(FileNotFoundError, match="no such file"):
        find_senses(lm_bilm, tmp_path / "missing.txt", "bank")
    invalid = tmp_path / "latin1.txt"
    invalid.write_bytes(b"the bank\ncaf\xe9 bank\n")
    with pytest.raises(ValueError, match=r"latin1.txt:2: invalid UTF-8"):
        find_senses(lm_bilm, invalid, "bank")
