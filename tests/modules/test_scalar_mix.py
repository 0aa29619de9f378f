"""Tests for elmo.modules.scalar_mix against numpy, with and without layer norm."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from elmo.modules.scalar_mix import ScalarMix

L, B, T, D = 3, 2, 4, 5
LENGTHS = [4, 2]
SCALARS = [0.1, -0.5, 0.3]
GAMMA = 1.7


def reference_mix(layers: np.ndarray, mask: np.ndarray, do_layer_norm: bool) -> np.ndarray:
    """gamma * sum_k softmax(s)_k * h_k in float64; layer norm (AllenNLP style) uses the mean and
    variance of the mask-selected values of the whole batch, eps 1e-12."""
    weights = np.exp(SCALARS) / np.exp(SCALARS).sum()
    mixed = np.zeros(layers.shape[1:])
    for weight, layer in zip(weights, layers):
        if do_layer_norm:
            real = layer[mask]  # (number of real tokens, D)
            layer = (layer - real.mean()) / np.sqrt(real.var() + 1e-12)
        mixed += weight * layer
    return GAMMA * mixed


def make_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    layers = torch.randn(L, B, T, D) * 3.0 + 1.0  # padding positions hold junk too
    mask = torch.arange(T).unsqueeze(0) < torch.tensor(LENGTHS).unsqueeze(1)  # (B, T)
    return layers, mask


def make_mix(do_layer_norm: bool) -> ScalarMix:
    mix = ScalarMix(L, do_layer_norm=do_layer_norm, initial_scalar_parameters=SCALARS)
    with torch.no_grad():
        mix.gamma.fill_(GAMMA)
    return mix


@pytest.mark.parametrize("do_layer_norm", [False, True], ids=["plain", "layer_norm"])
def test_matches_numpy(do_layer_norm):
    layers, mask = make_inputs()
    expected = reference_mix(layers.double().numpy(), mask.numpy(), do_layer_norm)
    actual = make_mix(do_layer_norm)(list(layers), mask)
    assert actual.shape == (B, T, D)
    # padding positions of a layer-normalised mix are unspecified: compare the real tokens
    real = mask.numpy()
    np.testing.assert_allclose(actual.detach().numpy()[real], expected[real], rtol=0, atol=1e-5)


def test_accepts_one_stacked_tensor():
    layers, mask = make_inputs()
    mix = make_mix(True)
    assert torch.equal(mix(layers, mask), mix(list(layers), mask))


def test_default_is_a_plain_average():
    layers, _ = make_inputs()
    assert torch.allclose(ScalarMix(L)(layers), layers.mean(dim=0), atol=1e-6)


def test_wrong_number_of_layers_is_a_value_error():
    layers, mask = make_inputs()
    with pytest.raises(ValueError, match="expected 3 layers"):
        ScalarMix(L)(list(layers[:2]), mask)
    with pytest.raises(ValueError, match="expected 3"):
        ScalarMix(L, initial_scalar_parameters=[0.0, 1.0])


def test_layer_norm_needs_the_mask():
    layers, _ = make_inputs()
    with pytest.raises(ValueError, match="mask"):
        ScalarMix(L, do_layer_norm=True)(layers)


@pytest.mark.parametrize("do_layer_norm", [False, True], ids=["plain", "layer_norm"])
def test_gradients_reach_the_scalars_and_gamma(do_layer_norm):
    layers, mask = make_inputs()
    mix = make_mix(do_layer_norm)
    mix(layers, mask).mul(torch.randn(B, T, D)).sum().backward()
    assert mix.scalar_parameters.grad is not None and mix.scalar_parameters.grad.abs().min() > 0
    assert mix.gamma.grad is not None and mix.gamma.grad.abs() > 0


def test_not_trainable_freezes_the_parameters():
    mix = ScalarMix(L, trainable=False)
    assert not mix.scalar_parameters.requires_grad and not mix.gamma.requires_grad
