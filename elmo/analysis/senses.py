"""Word senses at a glance: every occurrence of a word, embedded in context, clustered and drawn.

The vectors of all occurrences of, say, ``bank`` in a corpus are scaled to unit length (so that
Euclidean distance ranks like cosine), clustered with k-means (k given, or the k in 2..6 with the
best silhouette), and projected to 2-D by PCA for the picture. With a contextual layer the
clusters tend to follow senses and uses; with layer 0 (characters only) every occurrence gets
the same vector.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from elmo.analysis.corpus import (
    Corpus,
    check_layer,
    context_window,
    contextual_vectors,
    read_corpus,
)
from elmo.analysis.kmeans import choose_k, kmeans
from elmo.analysis.pca import pca
from elmo.analysis.query import mark
from elmo.embedder import ElmoEmbedder
from elmo.layer_choice import LayerChoice, choice_name
from elmo.model import BiLM

K_CANDIDATES = range(2, 7)  # the k tried when none is given


class Occurrence(NamedTuple):
    tokens: list[str]  # the sentence
    position: int  # index of the word in ``tokens``
    line: int  # 1-based line number in the corpus file


class Senses(NamedTuple):
    word: str
    corpus: Path
    layer: LayerChoice
    occurrences: list[Occurrence]  # the n occurrences clustered, in corpus order
    total_occurrences: int  # how many the corpus holds (more than n when capped)
    coords: np.ndarray  # (n, 2) PCA coordinates
    labels: np.ndarray  # (n,) cluster of each occurrence, 0 = the largest cluster
    explained_variance_ratio: np.ndarray  # (2,) variance share of each PCA axis
    silhouettes: dict[int, float]  # silhouette of each k tried (empty when k was given)
    representatives: list[int]  # per cluster: the occurrence nearest its centroid

    @property
    def k(self) -> int:
        return len(self.representatives)


def find_occurrences(corpus: Corpus, word: str) -> list[Occurrence]:
    """Every occurrence of the token ``word`` (exact, case-sensitive match), in corpus order."""
    return [
        Occurrence(tokens, position, line)
        for tokens, line in zip(corpus.sentences, corpus.line_numbers)
        for position, token in enumerate(tokens)
        if token == word
    ]


def find_senses(
    bilm: BiLM,
    corpus: str | os.PathLike | Corpus,
    word: str,
    layer: LayerChoice = "top",
    k: int | None = None,
    max_occurrences: int | None = 1000,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
) -> Senses:
    """Embed, cluster and project every occurrence of ``word`` in ``corpus``.

    Args:
        corpus: a text file, one sentence per line, or a ``Corpus``.
        word: the token to look at (exact match).
        layer: which vectors (see ``elmo.analysis.corpus``); the top layer separates senses best.
        k: the number of clusters; None picks the k in 2..6 with the best silhouette.
        max_occurrences: cluster at most the first this many occurrences (None: all).
        seed: seed of k-means.

    Raises:
        ValueError: the word does not occur, or a bad k.
    """
    if not isinstance(corpus, Corpus):
        corpus = read_corpus(corpus)
    layer = check_layer(layer, bilm.num_layers)
    found = find_occurrences(corpus, word)
    if not found:
        raise ValueError(f"the word {word!r} does not occur in the corpus {corpus.path}")
    occurrences = found[:max_occurrences] if max_occurrences is not None else found
    if k is not None and not 1 <= k <= len(occurrences):
        raise ValueError(
            f"k must be in [1, {len(occurrences)}] (the occurrences of {word!r}), got {k}"
        )
    points = _occurrence_vectors(
        ElmoEmbedder(bilm, batch_size=batch_size), occurrences, layer, progress
    )
    silhouettes: dict[int, float] = {}
    if k is None:
        k, silhouettes = choose_k(points, K_CANDIDATES, seed=seed)
    clusters = kmeans(points, k, seed=seed)
    projection = pca(points, num_components=2)
    return Senses(
        word,
        corpus.path,
        layer,
        occurrences,
        len(found),
        projection.coords,
        clusters.labels,
        projection.explained_variance_ratio,
        silhouettes,
        _most_central(points, clusters.labels, clusters.centroids),
    )


def _most_central(points: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> list[int]:
    """For each non-empty cluster, the index of its point nearest the centroid."""
    central = []
    for cluster, centroid in enumerate(centroids):
        members = np.flatnonzero(labels == cluster)
        if len(members):  # repeated points can leave a cluster empty (always the last ones)
            central.append(int(members[((points[members] - centroid) ** 2).sum(1).argmin()]))
    return central


def _occurrence_vectors(
    embedder: ElmoEmbedder, occurrences: list[Occurrence], layer: LayerChoice, progress: bool
) -> np.ndarray:
    """(n, 2D) unit-length vectors of the occurrences; each sentence is embedded once."""
    sentences = {occurrence.line: occurrence.tokens for occurrence in occurrences}
    lines = list(sentences)
    vectors = contextual_vectors(embedder, [sentences[line] for line in lines], layer, progress)
    by_line = dict(zip(lines, vectors))
    points = np.stack([by_line[o.line][o.position] for o in occurrences]).astype(np.float64)
    return points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)


def write_senses_csv(senses: Senses, path: str | os.PathLike) -> Path:
    """Write one CSV row per occurrence: sentence (with ``[word]`` marked), cluster, x, y, line,
    position."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "cluster", "x", "y", "line", "position"])
        for occurrence, label, (x, y) in zip(senses.occurrences, senses.labels, senses.coords):
            writer.writerow(
                [
                    mark(occurrence.tokens, occurrence.position),
                    int(label),
                    f"{x:.6f}",
                    f"{y:.6f}",
                    occurrence.line,
                    occurrence.position,
                ]
            )
    return path


def plot_senses(senses: Senses, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Draw the occurrences as a PNG scatter plot, one colour per cluster, with a legend.

    Each legend entry gives the cluster's size and the context of its most central occurrence,
    which is also drawn as a star. Needs matplotlib (``pip install 'elmo[plot]'``).
    """
    try:  # the object API with the Agg canvas: no pyplot, so no global backend is changed
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'elmo[plot]'") from None
    figure = Figure(figsize=(8, 6.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    colours = [f"C{i % 10}" for i in range(senses.k)]
    for cluster, (centre, colour) in enumerate(zip(senses.representatives, colours)):
        members = senses.labels == cluster
        example = senses.occurrences[centre]
        context = context_window(example.tokens, example.position, 4)
        label = f"{cluster}: n={members.sum()}, e.g. {context}"
        axes.scatter(
            *senses.coords[members].T, s=14, alpha=0.6, color=colour, label=_shorten(label)
        )
        axes.scatter(*senses.coords[centre], s=160, marker="*", color=colour, edgecolor="black")
    shown = len(senses.occurrences)
    capped = (
        ""
        if shown == senses.total_occurrences
        else f" (first {shown} of {senses.total_occurrences})"
    )
    axes.set_title(
        f"'{senses.word}' in {senses.corpus.name}: {shown} occurrences{capped}, "
        f"layer {choice_name(senses.layer)}, k={senses.k}",
        fontsize=10,
    )
    ratio = senses.explained_variance_ratio
    axes.set_xlabel(f"PC1 ({100 * ratio[0]:.0f}% of the variance)")
    axes.set_ylabel(f"PC2 ({100 * ratio[1]:.0f}% of the variance)")
    axes.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12),
        fontsize=8,
        frameon=False,
        title="cluster: size, most central occurrence (star)",
        title_fontsize=8,
    )
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    return Path(path)


def _shorten(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
