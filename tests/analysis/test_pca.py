"""PCA by SVD, against the eigenvectors of the covariance matrix."""

from __future__ import annotations

import numpy as np
import pytest

from elmo.analysis.pca import pca


def test_matches_the_covariance_eigendecomposition():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(50, 6)) @ rng.normal(size=(6, 6)) + 3.0
    result = pca(points, num_components=2)
    centred = points - points.mean(0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(centred.T))  # ascending
    for c in range(2):
        axis = eigenvectors[:, -1 - c]
        assert abs(result.components[c] @ axis) == pytest.approx(1.0, abs=1e-8)
        np.testing.assert_allclose(np.abs(result.coords[:, c]), np.abs(centred @ axis), atol=1e-8)
    np.testing.assert_allclose(
        result.explained_variance_ratio, eigenvalues[::-1][:2] / eigenvalues.sum()
    )
    # deterministic signs: the largest-magnitude coordinate of each axis is positive
    assert all(result.coords[np.abs(result.coords[:, c]).argmax(), c] > 0 for c in range(2))


def test_degenerate_inputs():
    single = pca(np.ones((1, 4)))
    assert single.coords.shape == (1, 2) and np.all(single.coords == 0)
    same = pca(np.ones((5, 3)))  # no variance at all
    assert same.coords.shape == (5, 2) and np.all(same.explained_variance_ratio == 0)
    line = pca(np.array([[0.0], [1.0], [3.0]]))  # d = 1: the second axis is missing
    assert line.coords.shape == (3, 2) and np.all(line.coords[:, 1] == 0)
    with pytest.raises(ValueError, match="non-empty"):
        pca(np.zeros((0, 3)))
