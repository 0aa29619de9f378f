"""Principal component analysis by singular value decomposition (numpy only)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class PCAResult(NamedTuple):
    coords: np.ndarray  # (n, c) the points in the principal axes
    components: np.ndarray  # (c, d) unit principal axes, by decreasing variance
    explained_variance_ratio: np.ndarray  # (c,) share of the total variance along each axis


def pca(points: np.ndarray, num_components: int = 2) -> PCAResult:
    """Project ``points`` (n, d) onto their first ``num_components`` principal axes.

    The points are centred; the axes are the right singular vectors of the centred matrix
    ``X = U S V^T``, and the coordinates are ``X V = U S``. Each axis's sign is fixed so that its
    largest-magnitude coordinate is positive, which makes the result deterministic. When fewer
    axes exist than asked for (n or d small), the missing ones are zero.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or len(points) == 0:
        raise ValueError(f"pca needs a non-empty (n, d) array, got shape {points.shape}")
    if num_components < 1:
        raise ValueError(f"num_components must be >= 1, got {num_components}")
    centred = points - points.mean(axis=0)  # (n, d)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)  # (r,), (r, d), r = min(n, d)
    coords = centred @ vt[:num_components].T  # (n, c')
    signs = np.sign(coords[np.abs(coords).argmax(axis=0), np.arange(coords.shape[1])])
    signs[signs == 0] = 1.0
    coords, components = coords * signs, vt[:num_components] * signs[:, None]
    variance = singular**2
    total = variance.sum()
    ratio = variance[:num_components] / total if total > 0 else np.zeros(len(coords[0]))
    missing = num_components - coords.shape[1]
    if missing > 0:
        coords = np.pad(coords, ((0, 0), (0, missing)))
        components = np.pad(components, ((0, missing), (0, 0)))
        ratio = np.pad(ratio, (0, missing))
    return PCAResult(coords, components, ratio)
