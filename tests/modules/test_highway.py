"""Tests for elmo.modules.highway against a float64 numpy reference."""

from __future__ import annotations

import numpy as np
import torch

from elmo.modules.highway import Highway

F = 6


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def reference_highway(x: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """y = g * x + (1 - g) * relu(W_h x + b_h), g = sigmoid(W_g x + b_g), for each layer.

    ``layers`` holds (weight (2F, F), bias (2F,)): rows [0, F) transform, rows [F, 2F) gate.
    """
    for weight, bias in layers:
        transform = x @ weight[:F].T + bias[:F]
        gate = sigmoid(x @ weight[F:].T + bias[F:])
        x = gate * x + (1.0 - gate) * np.maximum(transform, 0.0)
    return x


def test_two_layers_match_numpy_float64():
    highway = Highway(F, num_layers=2).double()
    with torch.no_grad():
        for layer in highway.layers:  # random biases too, so the gate is not the initial +1
            layer.bias.normal_()
    x = torch.randn(3, 4, F, dtype=torch.float64)  # (..., F) with two leading dims
    expected = reference_highway(
        x.numpy(),
        [(layer.weight.detach().numpy(), layer.bias.detach().numpy()) for layer in highway.layers],
    )
    actual = highway(x)
    assert actual.shape == (3, 4, F)
    np.testing.assert_allclose(actual.detach().numpy(), expected, rtol=0, atol=1e-12)


def test_float32_is_close_to_the_float64_reference():
    highway = Highway(F, num_layers=2)
    x = torch.randn(5, F)
    expected = reference_highway(
        x.double().numpy(),
        [
            (layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy())
            for layer in highway.layers
        ],
    )
    np.testing.assert_allclose(highway(x).detach().numpy(), expected, rtol=0, atol=1e-6)


def test_gate_bias_starts_at_one_so_layers_start_by_carrying_the_input():
    highway = Highway(F, num_layers=2)
    for layer in highway.layers:
        assert torch.equal(layer.bias[F:], torch.ones(F))
        assert layer.weight.shape == (2 * F, F)


def test_zero_layers_is_identity():
    x = torch.randn(2, F)
    assert torch.equal(Highway(F, num_layers=0)(x), x)
