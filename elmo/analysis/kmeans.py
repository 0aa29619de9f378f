"""k-means clustering (k-means++ seeding, Lloyd iterations) and the silhouette score, in numpy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class KMeansResult(NamedTuple):
    labels: np.ndarray  # (n,) int: cluster of each point, 0 = the largest cluster
    centroids: np.ndarray  # (k, d)
    inertia: float  # sum of squared distances of the points to their centroid


def kmeans(
    points: np.ndarray, k: int, seed: int = 0, num_init: int = 10, max_iter: int = 100
) -> KMeansResult:
    """Cluster ``points`` (n, d) into ``k`` groups; the best of ``num_init`` seeded runs.

    Each run seeds with k-means++ (Arthur and Vassilvitskii, 2007) and alternates assignment and
    centroid updates until the assignment no longer changes. Labels are renumbered by decreasing
    cluster size (ties: by first point), so equal inputs give equal labels.
    """
    points = np.asarray(points, dtype=np.float64)
    if not 1 <= k <= len(points):
        raise ValueError(f"k must be in [1, {len(points)}] (the number of points), got {k}")
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(num_init):
        labels, centroids = _lloyd(points, _kmeans_plus_plus(points, k, rng), max_iter)
        inertia = float(((points - centroids[labels]) ** 2).sum())
        if best is None or inertia < best.inertia - 1e-12:
            best = KMeansResult(labels, centroids, inertia)
    return _renumber(best)


def _kmeans_plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k initial centroids: each next one drawn with probability proportional to D(x)^2."""
    centroids = [points[rng.integers(len(points))]]
    nearest = ((points - centroids[0]) ** 2).sum(
        axis=1
    )  # (n,) squared distance to nearest centroid
    for _ in range(1, k):
        total = nearest.sum()
        # All points already coincide with a centroid: any choice is as good as another.
        probs = nearest / total if total > 0 else np.full(len(points), 1.0 / len(points))
        centroids.append(points[rng.choice(len(points), p=probs)])
        nearest = np.minimum(nearest, ((points - centroids[-1]) ** 2).sum(axis=1))
    return np.stack(centroids)  # (k, d)


def _lloyd(points: np.ndarray, centroids: np.ndarray, max_iter: int):
    labels = None
    for _ in range(max_iter):
        new_labels = squared_distances(points, centroids).argmin(axis=1)  # (n,)
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for c in range(len(centroids)):
            members = points[labels == c]
            if len(members):  # an emptied cluster keeps its old centroid
                centroids[c] = members.mean(axis=0)
    return labels, centroids


def _renumber(result: KMeansResult) -> KMeansResult:
    k = len(result.centroids)
    sizes = np.bincount(result.labels, minlength=k)
    first = np.array(
        [
            np.flatnonzero(result.labels == c)[0] if sizes[c] else len(result.labels)
            for c in range(k)
        ]
    )
    order = np.lexsort((first, -sizes))  # old labels, largest cluster first
    new_label = np.empty(k, dtype=np.int64)
    new_label[order] = np.arange(k)
    return KMeansResult(new_label[result.labels], result.centroids[order], result.inertia)


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, d) and (m, d) -> (n, m) squared Euclidean distances (clipped at 0 against rounding)."""
    squared = (a**2).sum(1)[:, None] - 2 * a @ b.T + (b**2).sum(1)[None, :]  # (n, m)
    return np.maximum(squared, 0.0)


def silhouette_score(points: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette (Rousseeuw, 1987) with Euclidean distances; in [-1, 1], higher is better.

    For each point, a = mean distance to the rest of its cluster, b = the smallest mean distance
    to another cluster, s = (b - a) / max(a, b); s = 0 for a point alone in its cluster.
    """
    points = np.asarray(points, dtype=np.float64)
    labels = np.asarray(labels)
    clusters = np.unique(labels)
    if not 2 <= len(clusters) <= len(points) - 1:
        raise ValueError(
            f"the silhouette needs 2 to n - 1 clusters, got {len(clusters)} "
            f"for {len(points)} points"
        )
    distances = np.sqrt(squared_distances(points, points))  # (n, n)
    np.fill_diagonal(distances, 0.0)  # exactly: sqrt turns a 1e-16 rounding residue into 1e-8
    sizes = np.array([(labels == c).sum() for c in clusters])  # (C,)
    sums = np.stack([distances[:, labels == c].sum(axis=1) for c in clusters], axis=1)  # (n, C)
    own = np.searchsorted(clusters, labels)  # (n,) column of each point's own cluster
    rows = np.arange(len(points))
    own_size = sizes[own]
    a = sums[rows, own] / np.maximum(own_size - 1, 1)
    means = sums / sizes  # (n, C)
    means[rows, own] = np.inf
    b = means.min(axis=1)
    denominator = np.maximum(a, b)
    s = np.where(
        (own_size > 1) & (denominator > 0), (b - a) / np.where(denominator > 0, denominator, 1), 0.0
    )
    return float(s.mean())


def choose_k(
    points: np.ndarray, candidates: Sequence[int] = range(2, 7), seed: int = 0
) -> tuple[int, dict[int, float]]:
    """The k of ``candidates`` whose k-means clustering has the highest silhouette.

    Candidates outside [2, n - 1] are skipped; with none left, k = 1.

    Returns:
        The chosen k and the silhouette of every candidate tried.
    """
    scores = {}
    for k in candidates:
        if not 2 <= k <= len(points) - 1:
            continue
        labels = kmeans(points, k, seed=seed).labels
        if 2 <= len(np.unique(labels)) <= len(points) - 1:  # repeated points can empty clusters
            scores[k] = silhouette_score(points, labels)
    if not scores:
        return 1, scores
    return max(scores, key=lambda k: (scores[k], -k)), scores
