"""Tests for elmo.modules.max_pool: max_over_time has amax's values and gradient, bit for bit."""

from __future__ import annotations

import torch

from elmo.modules.max_pool import max_over_time


def values_with_ties() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(40, 24, 11, generator=generator)  # (N, F, L)
    values[:, :, 6:] = 0.75  # windows wholly in padding tie, as a short token's do
    values[:5, :3] = -0.25  # every position ties
    return values.requires_grad_()


def test_values_and_gradient_are_amaxs_bit_for_bit():
    values = values_with_ties()
    grad = torch.randn(40, 24, generator=torch.Generator().manual_seed(1))
    assert torch.equal(max_over_time(values), values.amax(dim=-1))
    (expected,) = torch.autograd.grad(values.amax(dim=-1), values, grad)
    (actual,) = torch.autograd.grad(max_over_time(values), values, grad)
    assert torch.equal(actual, expected)
    assert torch.equal(actual[0, 0], grad[0, 0].expand(11) / 11)  # a tie shares the gradient


def test_without_a_gradient_it_is_plain_amax():
    values = values_with_ties()
    with torch.no_grad():
        assert max_over_time(values).grad_fn is None
        assert torch.equal(max_over_time(values), values.amax(dim=-1))
