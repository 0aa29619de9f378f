"""Tests for elmo.kernels.bptt: the exact kernel's LSTM layer with its backward by hand.

Its forward is the reference loop's bit for bit (also checked with gradients on, on chaotic
weights, in test_kernels.py); its gradients are autograd's through the reference loop up to
float rounding, with both clips active, rows of every length (an empty one included), a
non-zero initial state, and either direction; a float64 gradcheck checks the maths with clips.
"""

from __future__ import annotations

import pytest
import torch
from lstm_cases import LENGTHS, make_layer, padded_inputs, random_state

from elmo.config import LSTMConfig
from elmo.kernels import get_kernel
from elmo.kernels.bptt import run_with_bptt
from elmo.kernels.exact import exact_products
from elmo.modules.lstm import LstmLayer


def by_hand(layer, inputs, lengths, state, reverse):
    """run_with_bptt with the exact kernel's products, as ``ExactKernel.run_layer`` calls it."""
    with torch.no_grad():
        products = exact_products(layer, inputs, lengths)
    return run_with_bptt(layer, inputs, lengths, state, reverse, products)


def gradients(layer, inputs, state, outputs, final):
    """d(a fixed random function of the outputs and final state) / d(inputs, state, weights)."""
    generator = torch.Generator().manual_seed(7)
    weights = [torch.randn(t.shape, generator=generator, dtype=t.dtype) for t in (outputs, *final)]
    loss = sum((w * t).sum() for w, t in zip(weights, (outputs, *final)))
    return torch.autograd.grad(loss, [inputs, *state, *layer.parameters()])


def both_ways(layer, inputs, lengths, state, reverse):
    inputs, state = inputs.requires_grad_(), [s.requires_grad_() for s in state]
    reference = layer(inputs, lengths, tuple(state), reverse)  # autograd through the loop
    return reference, by_hand(layer, inputs, lengths, tuple(state), reverse), inputs, state


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_outputs_and_gradients_match_autograd_through_the_reference_loop(reverse):
    layer = make_layer()  # both clips reached (tests/modules/test_lstm.py checks it)
    reference, by_hand, inputs, state = both_ways(
        layer, padded_inputs(LENGTHS), LENGTHS, random_state(len(LENGTHS)), reverse
    )
    assert torch.equal(by_hand[0], reference[0])  # the same forward bits
    assert all(torch.equal(a, b) for a, b in zip(by_hand[1], reference[1]))
    expected = gradients(layer, inputs, state, reference[0], reference[1])
    actual = gradients(layer, inputs, state, by_hand[0], by_hand[1])
    for name, a, e in zip(
        ["inputs", "hidden", "memory", "W_x", "W_h", "bias", "W_p"], actual, expected
    ):
        assert a.shape == e.shape, name
        assert torch.allclose(a, e, rtol=1e-5, atol=1e-6), (name, (a - e).abs().max())
    assert (actual[0][3, 1:] == 0).all() and (actual[0][4] == 0).all()  # nothing flows to padding


def test_a_wide_batch_matches_autograd_up_to_rounding():
    # 64 rows of varied lengths: hoisted and per-step products, rows leaving as sentences end.
    config = LSTMConfig(
        num_layers=1, cell_size=96, projection_dim=40, cell_clip=3.0, projection_clip=3.0
    )
    layer = LstmLayer(40, config)
    drawn = torch.randint(1, 30, (64,), generator=torch.Generator().manual_seed(3))
    lengths = sorted((int(n) for n in drawn), reverse=True)
    inputs = padded_inputs(lengths, dim=40)
    state = [torch.zeros(64, 40), torch.zeros(64, 96)]
    reference, by_hand, inputs, state = both_ways(layer, inputs, lengths, state, False)
    assert torch.equal(by_hand[0], reference[0])
    expected = gradients(layer, inputs, state, *reference)
    actual = gradients(layer, inputs, state, *by_hand)
    for a, e in zip(actual, expected):
        assert torch.allclose(a, e, rtol=1e-4, atol=1e-5), (a - e).abs().max()


def test_gradient_with_clips_matches_finite_differences_in_float64():
    config = LSTMConfig(
        num_layers=1, cell_size=3, projection_dim=2, cell_clip=0.6, projection_clip=0.5
    )
    layer = LstmLayer(2, config).double()
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.copy_(
                torch.randn(parameter.shape, generator=torch.Generator().manual_seed(5)) * 1.5
            )
    lengths = [3, 2, 0]
    generator = torch.Generator().manual_seed(11)
    args = [torch.randn(3, 3, 2, generator=generator), torch.randn(3, 2, generator=generator) * 0.3,
            torch.randn(3, 3, generator=generator) * 0.3]  # fmt: skip
    args = [a.double().requires_grad_() for a in args]

    def run(inputs, hidden, memory):
        outputs, (final_hidden, final_memory) = by_hand(
            layer, inputs, lengths, (hidden, memory), False
        )
        return outputs, final_hidden, final_memory

    outputs, _, final_memory = run(*args)
    clipped = (outputs.abs() == 0.5).sum() + (final_memory.abs() == 0.6).sum()
    assert clipped > 0  # the clips are active at these values (and no value sits near a bound)
    assert torch.autograd.gradcheck(run, args, eps=1e-6, atol=1e-6)


def test_the_exact_kernel_takes_it_only_where_a_gradient_is_needed(monkeypatch):
    calls = []
    monkeypatch.setattr("elmo.kernels.exact.run_with_bptt", lambda *args: calls.append(args))
    layer, kernel = make_layer(), get_kernel("exact")
    inputs, state = padded_inputs(LENGTHS), random_state(len(LENGTHS))
    with torch.no_grad():
        kernel.run_layer(layer, inputs, LENGTHS, state, False)
    layer.requires_grad_(False)
    kernel.run_layer(layer, inputs, LENGTHS, state, False)  # nothing needs a gradient
    assert calls == []
    kernel.run_layer(layer, inputs.requires_grad_(), LENGTHS, state, False)
    assert len(calls) == 1
