"""Tests for elmo.modules.lstm: the projected, clipped LSTM against a float64 numpy step loop.

Every maths test runs the layer through each registered recurrence kernel as well as through
its own reference loop (``KERNEL_NAMES``): a kernel must compute the same maths.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lstm_cases import (
    CELL_CLIP,
    D_IN,
    LENGTHS,
    PROJECTION_CLIP,
    D,
    H,
    make_layer,
    mask_of,
    padded_inputs,
    random_state,
)

from elmo.config import LSTMConfig
from elmo.kernels import get_kernel, kernel_names
from elmo.modules.lstm import LstmLayer, LstmStack, active_rows
from elmo.modules.sequence import reverse_padded


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def reference_lstm(layer: LstmLayer, inputs, lengths, hidden, memory, reverse, forget_bias=1.0):
    """Step through each row's real tokens (last to first when ``reverse``), in float64.

    Returns outputs (B, T, D), zero at padding, and the final (hidden (B, D), memory (B, H)).
    """
    w_in, w_rec, bias, w_proj = (
        p.detach().double().numpy()
        for p in (layer.input_weight, layer.recurrent_weight, layer.bias, layer.projection_weight)
    )
    inputs = inputs.double().numpy()
    hidden, memory = hidden.double().numpy().copy(), memory.double().numpy().copy()
    outputs = np.zeros(inputs.shape[:2] + (w_proj.shape[0],))
    for row, n in enumerate(lengths):
        h, c = hidden[row], memory[row]
        for t in reversed(range(n)) if reverse else range(n):
            gates = w_in @ inputs[row, t] + w_rec @ h + bias
            i, f, g, o = np.split(gates, 4)
            c = sigmoid(i) * np.tanh(g) + sigmoid(f + forget_bias) * c
            if layer.cell_clip is not None:
                c = np.clip(c, -layer.cell_clip, layer.cell_clip)
            h = w_proj @ (sigmoid(o) * np.tanh(c))
            if layer.projection_clip is not None:
                h = np.clip(h, -layer.projection_clip, layer.projection_clip)
            outputs[row, t] = h
        hidden[row], memory[row] = h, c
    return outputs, (hidden, memory)


# None: the layer's own reference loop. bf16 rounds its products to 8 bits of mantissa and is
# tested against the exact kernel in tests/kernels/test_bf16.py.
KERNEL_NAMES = [None, *(name for name in kernel_names() if name != "bf16")]


def run(kernel, layer: LstmLayer, inputs, lengths, state, reverse=False):
    """``layer(...)`` through the named kernel (None: the reference loop)."""
    if kernel is None:
        return layer(inputs, lengths, state, reverse)
    return get_kernel(kernel).run_layer(layer, inputs, lengths, state, reverse)


class _Runner(torch.nn.Module):
    """A layer run through a kernel, as a module (for ``functional_call``)."""

    def __init__(self, layer: LstmLayer, kernel) -> None:
        super().__init__()
        self.layer, self.kernel = layer, kernel

    def forward(self, inputs, lengths, state):
        return run(self.kernel, self.layer, inputs, lengths, state)


def test_active_rows():
    assert [active_rows(LENGTHS, t) for t in range(6)] == [4, 3, 3, 1, 1, 0]


@pytest.mark.parametrize("kernel", KERNEL_NAMES, ids=str)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_layer_matches_numpy_step_loop(reverse, kernel):
    layer = make_layer().double()
    inputs = padded_inputs(LENGTHS).double()
    hidden, memory = (s.double() for s in random_state(len(LENGTHS)))
    expected, (expected_hidden, expected_memory) = reference_lstm(
        layer, inputs, LENGTHS, hidden, memory, reverse
    )
    # the test means something only if both clips were hit
    assert np.isclose(np.abs(expected).max(), PROJECTION_CLIP)
    processed = np.array(LENGTHS) > 0  # the empty row keeps its initial memory
    assert np.isclose(np.abs(expected_memory[processed]).max(), CELL_CLIP)

    outputs, (final_hidden, final_memory) = run(kernel, layer, inputs, LENGTHS, (hidden, memory), reverse)
    assert outputs.shape == (len(LENGTHS), max(LENGTHS), D)
    np.testing.assert_allclose(outputs.detach().numpy(), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(final_hidden.detach().numpy(), expected_hidden, rtol=0, atol=1e-12)
    np.testing.assert_allclose(final_memory.detach().numpy(), expected_memory, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kernel", KERNEL_NAMES, ids=str)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_padding_outputs_are_zero_and_final_state_is_after_the_last_real_token(reverse, kernel):
    layer = make_layer()
    inputs = padded_inputs(LENGTHS)
    state = random_state(len(LENGTHS))
    outputs, (final_hidden, final_memory) = run(kernel, layer, inputs, LENGTHS, state, reverse)
    for row, n in enumerate(LENGTHS):
        assert (outputs[row, n:] == 0).all()
        if n == 0:  # nothing processed: the state passes through
            assert torch.equal(final_hidden[row], state[0][row])
            assert torch.equal(final_memory[row], state[1][row])
        else:  # the hidden state is the output at the last processed position
            last = 0 if reverse else n - 1
            assert torch.equal(final_hidden[row], outputs[row, last])
    # float32 stays within rounding of the float64 reference
    expected, _ = reference_lstm(layer, inputs, LENGTHS, *state, reverse)
    np.testing.assert_allclose(outputs.detach().numpy(), expected, rtol=0, atol=1e-5)


def test_reverse_is_the_forward_layer_on_reversed_sequences():
    layer = make_layer()
    lengths = [4, 2, 1]
    inputs = padded_inputs(lengths)
    state = random_state(len(lengths))
    backward, backward_state = layer(inputs, lengths, state, reverse=True)
    flipped = reverse_padded(inputs, torch.tensor(lengths))
    forward, forward_state = layer(flipped, lengths, state)
    # Same arithmetic per row, but batched differently per step: equal up to float32 rounding.
    assert torch.allclose(backward, reverse_padded(forward, torch.tensor(lengths)), atol=1e-6)
    for actual, expected in zip(backward_state, forward_state):
        assert torch.allclose(actual, expected, atol=1e-6)


@pytest.mark.parametrize("kernel", KERNEL_NAMES, ids=str)
def test_gradient_matches_finite_differences_in_float64(kernel):
    # A very small layer keeps the number of finite differences (one pair per input) low.
    config = LSTMConfig(
        num_layers=1, cell_size=3, projection_dim=2, cell_clip=None, projection_clip=None
    )
    layer = LstmLayer(2, config).double()
    lengths = [3, 2]
    names = ["input_weight", "recurrent_weight", "bias", "projection_weight"]
    runner = _Runner(layer, kernel)

    def step(inputs, hidden, memory, *params):
        outputs, (final_hidden, final_memory) = torch.func.functional_call(
            runner, {f"layer.{n}": p for n, p in zip(names, params)}, (inputs, lengths, (hidden, memory))
        )
        return outputs, final_hidden, final_memory

    args = [torch.randn(2, 3, 2), torch.randn(2, 2), torch.randn(2, 3)]  # inputs, hidden, memory
    args += [
        getattr(layer, name).detach() + 0.5 * torch.randn(getattr(layer, name).shape)
        for name in names
    ]
    args = [a.double().requires_grad_() for a in args]
    assert torch.autograd.gradcheck(step, args, eps=1e-6, atol=1e-6)


def stack_with(use_skip_connections: bool, num_layers: int = 3) -> LstmStack:
    config = LSTMConfig(
        num_layers=num_layers,
        cell_size=H,
        projection_dim=D,
        use_skip_connections=use_skip_connections,
    )
    return LstmStack(config, input_dim=D_IN)


def test_stack_adds_residuals_from_the_second_layer_on():
    with_skip = stack_with(True)
    without_skip = stack_with(False)
    without_skip.load_state_dict(with_skip.state_dict())
    lengths = [4, 3, 1]
    inputs = padded_inputs(lengths)
    state = with_skip.initial_state(len(lengths), inputs)

    # Compose the same layers by hand.
    def layer_state(index):
        return state.hidden[index], state.memory[index]

    layers = with_skip.layers
    out0, _ = layers[0](inputs, lengths, layer_state(0))
    out1 = layers[1](out0, lengths, layer_state(1))[0] + out0
    out2 = layers[2](out1, lengths, layer_state(2))[0] + out1
    result = with_skip(inputs, mask_of(lengths), state)
    for actual, expected in zip(result.layers, [out0, out1, out2]):
        assert torch.equal(actual, expected)

    plain1 = layers[1](out0, lengths, layer_state(1))[0]
    plain2 = layers[2](plain1, lengths, layer_state(2))[0]
    result = without_skip(inputs, mask_of(lengths), state)
    for actual, expected in zip(result.layers, [out0, plain1, plain2]):
        assert torch.equal(actual, expected)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_stack_state_is_each_layers_state(reverse):
    stack = stack_with(True, num_layers=2)
    lengths = [3, 2]
    inputs = padded_inputs(lengths)
    initial = stack.initial_state(2, inputs)
    initial = type(initial)(torch.randn_like(initial.hidden), torch.randn_like(initial.memory))
    result = stack(inputs, mask_of(lengths), initial, reverse=reverse)
    assert result.state.hidden.shape == (2, 2, D) and result.state.memory.shape == (2, 2, H)
    layer_input = inputs
    for index, layer in enumerate(stack.layers):
        output, (hidden, memory) = layer(
            layer_input, lengths, (initial.hidden[index], initial.memory[index]), reverse
        )
        assert torch.equal(result.state.hidden[index], hidden)
        assert torch.equal(result.state.memory[index], memory)
        layer_input = output + (layer_input if index > 0 else 0)


def test_initial_state_is_zeros_of_the_right_shape():
    stack = stack_with(True)
    state = stack.initial_state(5, torch.zeros(1, dtype=torch.float64))
    assert state.hidden.shape == (3, 5, D) and state.memory.shape == (3, 5, H)
    assert state.hidden.dtype == torch.float64
    assert not state.hidden.any() and not state.memory.any()
