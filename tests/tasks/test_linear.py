"""Layer choice and scalar mix against numpy, pair features, and a probe that learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from elmo.tasks.config import ProbeTrainingConfig
from elmo.tasks.linear import (
    LayerChoice,
    PairProbe,
    TokenProbe,
    feature_scale,
    pair_features,
    predict,
    train_probe,
)


def test_feature_scale_is_the_mean_and_std_over_rows():
    features = torch.randn(50, 3, 4) * 2 + 5
    scale = feature_scale(features)
    np.testing.assert_allclose(scale.mean, features.numpy().mean(0), rtol=1e-5)
    np.testing.assert_allclose(scale.std, features.numpy().std(0, ddof=1), rtol=1e-5)


def test_layer_choice_standardises_then_selects_or_mixes():
    features = torch.randn(6, 3, 4) * 3 + 1  # (N, L, 2D)
    scale = feature_scale(features)
    standard = ((features - scale.mean) / scale.std).numpy()
    torch.testing.assert_close(LayerChoice(3, 1, scale)(features), torch.from_numpy(standard[:, 1]))
    mix = LayerChoice(3, None, scale)
    with torch.no_grad():
        mix.mix.scalar_parameters.copy_(torch.tensor([0.5, -1.0, 2.0]))
        mix.mix.gamma.fill_(1.5)
    weights = np.exp([0.5, -1.0, 2.0]) / np.exp([0.5, -1.0, 2.0]).sum()
    expected = 1.5 * np.einsum("l,nld->nd", weights, standard)
    np.testing.assert_allclose(mix(features).detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(LayerChoice(3, 2)(features), features[:, 2])  # no scale: as is


def test_pair_features_by_hand():
    u, v = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, -1.0]])
    cosine = float((3 - 2) / (np.sqrt(5) * np.sqrt(10)))
    torch.testing.assert_close(pair_features(u, v), torch.tensor([[3.0, -2.0, 2.0, 3.0, cosine]]))
    assert PairProbe(3, 2, None)(torch.randn(5, 3, 2), torch.randn(5, 3, 2)).shape == (5, 2)


def test_a_probe_learns_a_linearly_separable_labelling():
    features = torch.randn(60, 2, 5)  # (N, L, 2D); the label is a linear function of layer 1
    labels = (features[:, 1, 0] + features[:, 1, 3] > 0).long()
    probe = TokenProbe(2, 5, 2, layer=1, scale=feature_scale(features))
    config = ProbeTrainingConfig(epochs=40, batch_size=20, lr=0.1)
    train_probe(probe, [features], labels, config)
    assert (predict(probe, [features]) == labels).float().mean() >= 0.95
    with pytest.raises(ValueError, match="inputs of lengths"):
        train_probe(probe, [features[:5]], labels, config)
