"""k-means, the silhouette (against a direct loop), and the choice of k."""

from __future__ import annotations

import numpy as np
import pytest

from elmo.analysis.kmeans import choose_k, kmeans, silhouette_score


def _blobs(sizes=(20, 15, 10), seed=0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0]])
    points = np.concatenate(
        [c + rng.normal(scale=0.5, size=(n, 3)) for c, n in zip(centres, sizes)]
    )
    return points, np.repeat(np.arange(len(sizes)), sizes)


def test_recovers_separated_clusters_with_labels_by_size():
    points, truth = _blobs()
    result = kmeans(points, 3, seed=1)
    np.testing.assert_array_equal(result.labels, truth)  # largest cluster is 0, and so on
    np.testing.assert_allclose(result.centroids, [points[truth == c].mean(0) for c in range(3)])
    assert result.inertia == pytest.approx(
        sum(((points[truth == c] - points[truth == c].mean(0)) ** 2).sum() for c in range(3))
    )
    again = kmeans(points, 3, seed=1)
    np.testing.assert_array_equal(again.labels, result.labels)


def test_silhouette_matches_a_direct_loop():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(25, 4))
    labels = rng.integers(0, 3, size=25)
    labels[0] = 3  # a singleton cluster scores 0
    expected = []
    for i in range(len(points)):
        distance = np.linalg.norm(points - points[i], axis=1)
        own = labels == labels[i]
        if own.sum() == 1:
            expected.append(0.0)
            continue
        a = distance[own].sum() / (own.sum() - 1)
        b = min(distance[labels == c].mean() for c in set(labels.tolist()) - {labels[i]})
        expected.append((b - a) / max(a, b))
    assert silhouette_score(points, labels) == pytest.approx(np.mean(expected), abs=1e-10)
    with pytest.raises(ValueError, match="2 to n - 1 clusters"):
        silhouette_score(points, np.zeros(25, dtype=int))


def test_choose_k_finds_the_number_of_blobs():
    points, _ = _blobs()
    k, scores = choose_k(points, range(2, 7))
    assert k == 3 and set(scores) == {2, 3, 4, 5, 6}
    assert scores[3] == max(scores.values())


def test_identical_points_and_bad_k():
    points = np.ones((6, 2))
    result = kmeans(points, 3)
    assert result.inertia == 0.0 and set(result.labels.tolist()) <= {0, 1, 2}
    assert choose_k(points) == (1, {})  # nothing to separate
    assert choose_k(np.ones((2, 2))) == (1, {})
    with pytest.raises(ValueError, match="k must be in"):
        kmeans(points, 7)
