"""Tests for elmo.modules.char_cnn against a float64 numpy character CNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from elmo.config import CharCNNConfig
from elmo.modules.char_cnn import CharCNN

D = 8
W = 7  # a short token width keeps the reference loop small; 3 filter widths up to 3


def small_config(activation: str) -> CharCNNConfig:
    return CharCNNConfig(
        char_embedding_dim=4,
        filters=[[1, 4], [2, 6], [3, 5]],
        num_highway_layers=1,
        activation=activation,
        max_characters_per_token=W,
    )


def reference_char_cnn(ids: np.ndarray, cnn: CharCNN, activation: str) -> np.ndarray:
    """(B, T, W) ids -> (B, T, D): embed, valid conv per width, max over positions, activation,
    highway (g * x + (1 - g) * relu(.)), projection; all in float64."""
    params = {k: v.detach().double().numpy() for k, v in cnn.state_dict().items()}
    embedded = params["char_embedding.weight"][ids]  # (B, T, W, E)
    pooled = []
    for i, (width, count) in enumerate(cnn.config.filters):
        kernel = params[f"convolutions.{i}.weight"]  # (count, E, width)
        positions = ids.shape[-1] - width + 1
        conv = (
            np.stack(
                [
                    np.einsum("btke,cek->btc", embedded[:, :, p : p + width], kernel)
                    for p in range(positions)
                ],
                axis=-1,
            )
            + params[f"convolutions.{i}.bias"][:, None]
        )  # (B, T, count, positions)
        pooled.append(conv.max(axis=-1))
    features = np.concatenate(pooled, axis=-1)  # (B, T, F)
    features = np.maximum(features, 0.0) if activation == "relu" else np.tanh(features)
    F = features.shape[-1]
    for k in range(cnn.config.num_highway_layers):
        weight, bias = params[f"highway.layers.{k}.weight"], params[f"highway.layers.{k}.bias"]
        transform = features @ weight[:F].T + bias[:F]
        gate = 1.0 / (1.0 + np.exp(-(features @ weight[F:].T + bias[F:])))
        features = gate * features + (1.0 - gate) * np.maximum(transform, 0.0)
    return features @ params["projection.weight"].T + params["projection.bias"]


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_matches_numpy_float64(activation):
    cnn = CharCNN(small_config(activation), output_dim=D).double()
    ids = torch.randint(0, 262, (2, 3, W))
    ids[1, 2] = 0  # a padding token still gets a vector
    expected = reference_char_cnn(ids.numpy(), cnn, activation)
    actual = cnn(ids)
    assert actual.shape == (2, 3, D)
    np.testing.assert_allclose(actual.detach().numpy(), expected, rtol=0, atol=1e-12)


def test_float32_is_close_to_the_float64_reference():
    cnn = CharCNN(small_config("relu"), output_dim=D)
    ids = torch.randint(1, 262, (4, 2, W))
    expected = reference_char_cnn(ids.numpy(), cnn, "relu")
    np.testing.assert_allclose(cnn(ids).detach().numpy(), expected, rtol=0, atol=1e-5)


def test_padding_row_of_the_char_table_is_zero_and_stays_zero():
    cnn = CharCNN(small_config("relu"), output_dim=D)
    table = cnn.char_embedding.weight
    assert table.shape == (262, 4)
    assert (table[0] == 0).all() and (table[1:] != 0).any()
    cnn(torch.randint(0, 262, (2, 3, W))).sum().backward()
    assert (table.grad[0] == 0).all()  # no gradient, so training keeps it zero


def test_output_dim():
    assert CharCNN(small_config("relu"), output_dim=D).output_dim == D
