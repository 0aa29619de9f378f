"""Tests for the exact and fused kernels: exact keeps every bit of the reference loop (chaotic
weights, batch 64, with and without grad, 1 and 2 threads); fused equals it up to rounding."""

from __future__ import annotations

import pytest
import torch
from lstm_cases import D_IN, mask_of, padded_inputs

from elmo.config import LSTMConfig
from elmo.kernels import get_kernel
from elmo.modules.lstm import LstmLayer, LstmStack

D = 8  # these stacks' projection size


def batch_of_64(dim: int) -> tuple[torch.Tensor, list[int]]:
    # 64 rows of varied lengths: positions with 64, 16-63 and fewer than 16 real rows.
    drawn = torch.randint(1, 40, (64,), generator=torch.Generator().manual_seed(3))
    lengths = sorted((int(n) for n in drawn), reverse=True)
    return padded_inputs(lengths, dim=dim), lengths


def chaotic_stack(cell: int = 96, dim: int = 40) -> LstmStack:
    config = LSTMConfig(num_layers=2, cell_size=cell, projection_dim=dim, cell_clip=3.0, projection_clip=3.0)
    stack = LstmStack(config, input_dim=dim)
    with torch.no_grad():
        for parameter in stack.parameters():
            parameter.mul_(8.0)  # as the elmo-random-mid fixture: any 1e-7 would grow to 1e-2
    return stack


def run(stack: LstmStack, kernel, *args, **kwargs):
    stack.kernel = None if kernel is None else get_kernel(kernel)
    return stack(*args, **kwargs)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "backward"])
def test_the_exact_kernel_keeps_every_bit_of_the_reference_loop_at_batch_64(reverse, grad, threads):
    # Prepacked weights, hoisted input projections: the bits of the per-step reference loop.
    stack = chaotic_stack()
    inputs, lengths = batch_of_64(40)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.set_grad_enabled(grad):
            exact = run(stack, "exact", inputs, mask_of(lengths), reverse=reverse)
            reference = run(stack, None, inputs, mask_of(lengths), reverse=reverse)
    finally:
        torch.set_num_threads(previous)
    assert len(exact.layers) == 2
    for actual, expected in zip(exact.layers + [*exact.state], reference.layers + [*reference.state]):
        assert torch.equal(actual, expected)


def test_without_independent_rows_each_step_has_its_own_gemm(monkeypatch):
    # Where a BLAS rounds a row by the row count (GPU libraries may), nothing is hoisted.
    calls = []
    monkeypatch.setattr("elmo.kernels.exact.rows_are_independent", lambda weight: False)
    monkeypatch.setattr("elmo.kernels.exact.hoisted_inputs", lambda *args: calls.append(args))
    stack = chaotic_stack()
    inputs, lengths = batch_of_64(40)
    exact = run(stack, "exact", inputs, mask_of(lengths))
    reference = run(stack, None, inputs, mask_of(lengths))
    assert calls == []
    assert all(torch.equal(a, b) for a, b in zip(exact.layers, reference.layers))


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_the_fused_kernel_equals_the_exact_one_up_to_rounding(reverse):
    # Non-chaotic weights (the default init): float32 rounding stays at rounding level.
    stack = LstmStack(
        LSTMConfig(num_layers=2, cell_size=32, projection_dim=8, cell_clip=3.0, projection_clip=3.0),
        input_dim=D_IN,
    )
    lengths = [9, 7, 7, 2]
    inputs = padded_inputs(lengths)
    state = stack.initial_state(len(lengths), inputs)
    state = type(state)(torch.randn_like(state.hidden), torch.randn_like(state.memory))
    exact = run(stack, "exact", inputs, mask_of(lengths), state, reverse=reverse)
    fused = run(stack, "fused", inputs, mask_of(lengths), state, reverse=reverse)
    for actual, expected in zip(fused.layers, exact.layers):
        assert torch.allclose(actual, expected, rtol=0, atol=1e-6)
        assert (actual[3, 2:] == 0).all()
    assert torch.allclose(fused.state.hidden, exact.state.hidden, rtol=0, atol=1e-6)
    assert torch.allclose(fused.state.memory, exact.state.memory, rtol=0, atol=1e-6)


def test_the_fused_kernel_draws_the_same_dropout_in_training():
    stack = LstmStack(LSTMConfig(num_layers=2, cell_size=16, projection_dim=D), D_IN, dropout=0.5)
    stack.train()
    inputs = padded_inputs([4, 3])
    torch.manual_seed(1)
    exact = run(stack, "exact", inputs, mask_of([4, 3]))
    torch.manual_seed(1)
    fused = run(stack, "fused", inputs, mask_of([4, 3]))  # same dropout masks: same random draws
    for actual, expected in zip(fused.layers, exact.layers):
        assert torch.allclose(actual, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kernel", ["exact", "fused"])
def test_prepacked_weights_without_grad_give_the_same_bits(kernel, threads):
    # Without gradients the per-step GEMMs use MKL-prepacked weights (step_linear): each kernel
    # must give the bits it gives with gradients (plain linear), or the chaotic fixture drifts.
    config = LSTMConfig(num_layers=1, cell_size=64, projection_dim=32, cell_clip=3.0, projection_clip=3.0)
    layer = LstmLayer(48, config)
    lengths = [9, 7, 7, 2, 1]
    if kernel == "fused":  # with fewer than 16 rows it runs the exact kernel's loop without grad
        lengths = sorted(lengths * 4, reverse=True)
    inputs = padded_inputs(lengths, dim=48)
    state = (torch.randn(len(lengths), 32) * 0.3, torch.randn(len(lengths), 64) * 0.3)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        plain_outputs, plain_state = get_kernel(kernel).run_layer(layer, inputs, lengths, state, False)
        with torch.no_grad():
            outputs, final_state = get_kernel(kernel).run_layer(layer, inputs, lengths, state, False)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(outputs, plain_outputs.detach())
    for actual, expected in zip(final_state, plain_state):
        assert torch.equal(actual, expected.detach())
