"""Tests for elmo.modules.lstm: the projected, clipped LSTM against a float64 numpy step loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from elmo.config import LSTMConfig
from elmo.modules.lstm import (
    HOIST_MIN_ROWS,
    LstmLayer,
    LstmStack,
    active_rows,
    hoisted_inputs,
    one_thread_per_stack,
    rows_are_independent,
    same_bits_on_one_thread,
    step_linear,
)
from elmo.modules.sequence import reverse_padded

D_IN, D, H = 5, 4, 6
LENGTHS = [5, 3, 3, 1, 0]  # sorted by decreasing length, as the layer requires; one empty row
CELL_CLIP, PROJECTION_CLIP = 0.5, 0.4


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


def make_layer(cell_clip=CELL_CLIP, projection_clip=PROJECTION_CLIP, input_dim=D_IN) -> LstmLayer:
    config = LSTMConfig(
        num_layers=1,
        cell_size=H,
        projection_dim=D,
        cell_clip=cell_clip,
        projection_clip=projection_clip,
    )
    layer = LstmLayer(input_dim, config)
    with torch.no_grad():  # large weights and a random bias, so that both clips are reached
        for weight in (layer.input_weight, layer.recurrent_weight, layer.projection_weight):
            weight.mul_(4.0)
        layer.bias.normal_()
    return layer


def padded_inputs(lengths: list[int], dim: int = D_IN) -> torch.Tensor:
    # Padding positions hold junk: the layer must never read them.
    return torch.randn(len(lengths), max(lengths), dim) * 2.0  # (B, T, D_in)


def random_state(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(batch, D) * 0.3, torch.randn(batch, H) * 0.3


def test_active_rows():
    assert [active_rows(LENGTHS, t) for t in range(6)] == [4, 3, 3, 1, 1, 0]


@pytest.mark.parametrize("fast", [False, True], ids=["exact", "fast"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_layer_matches_numpy_step_loop(reverse, fast):
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

    outputs, (final_hidden, final_memory) = layer(
        inputs, LENGTHS, (hidden, memory), reverse=reverse, fast=fast
    )
    assert outputs.shape == (len(LENGTHS), max(LENGTHS), D)
    np.testing.assert_allclose(outputs.detach().numpy(), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(final_hidden.detach().numpy(), expected_hidden, rtol=0, atol=1e-12)
    np.testing.assert_allclose(final_memory.detach().numpy(), expected_memory, rtol=0, atol=1e-12)


@pytest.mark.parametrize("fast", [False, True], ids=["exact", "fast"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_padding_outputs_are_zero_and_final_state_is_after_the_last_real_token(reverse, fast):
    layer = make_layer()
    inputs = padded_inputs(LENGTHS)
    state = random_state(len(LENGTHS))
    outputs, (final_hidden, final_memory) = layer(inputs, LENGTHS, state, reverse=reverse, fast=fast)
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


@pytest.mark.parametrize("fast", [False, True], ids=["exact", "fast"])
def test_gradient_matches_finite_differences_in_float64(fast):
    # A very small layer keeps the number of finite differences (one pair per input) low.
    config = LSTMConfig(
        num_layers=1, cell_size=3, projection_dim=2, cell_clip=None, projection_clip=None
    )
    layer = LstmLayer(2, config).double()
    lengths = [3, 2]
    names = ["input_weight", "recurrent_weight", "bias", "projection_weight"]

    def run(inputs, hidden, memory, *params):
        outputs, (final_hidden, final_memory) = torch.func.functional_call(
            layer, dict(zip(names, params)), (inputs, lengths, (hidden, memory)), {"fast": fast}
        )
        return outputs, final_hidden, final_memory

    args = [torch.randn(2, 3, 2), torch.randn(2, 2), torch.randn(2, 3)]  # inputs, hidden, memory
    args += [
        getattr(layer, name).detach() + 0.5 * torch.randn(getattr(layer, name).shape)
        for name in names
    ]
    args = [a.double().requires_grad_() for a in args]
    assert torch.autograd.gradcheck(run, args, eps=1e-6, atol=1e-6)


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
    result = with_skip(inputs, lengths)
    for actual, expected in zip(result.layers, [out0, out1, out2]):
        assert torch.equal(actual, expected)

    plain1 = layers[1](out0, lengths, layer_state(1))[0]
    plain2 = layers[2](plain1, lengths, layer_state(2))[0]
    result = without_skip(inputs, lengths)
    for actual, expected in zip(result.layers, [out0, plain1, plain2]):
        assert torch.equal(actual, expected)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_stack_state_is_each_layers_state(reverse):
    stack = stack_with(True, num_layers=2)
    lengths = [3, 2]
    inputs = padded_inputs(lengths)
    initial = stack.initial_state(2, inputs)
    initial = type(initial)(torch.randn_like(initial.hidden), torch.randn_like(initial.memory))
    result = stack(inputs, lengths, initial, reverse=reverse)
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


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_fast_stack_equals_the_exact_one_up_to_rounding(reverse):
    # Non-chaotic weights (the default init): float32 rounding stays at rounding level.
    stack = LstmStack(
        LSTMConfig(num_layers=2, cell_size=32, projection_dim=8, cell_clip=3.0, projection_clip=3.0),
        input_dim=D_IN,
    )
    lengths = [9, 7, 7, 2]
    inputs = padded_inputs(lengths)
    state = stack.initial_state(len(lengths), inputs)
    state = type(state)(torch.randn_like(state.hidden), torch.randn_like(state.memory))
    exact = stack(inputs, lengths, state, reverse=reverse)
    fast = stack(inputs, lengths, state, reverse=reverse, fast=True)
    for actual, expected in zip(fast.layers, exact.layers):
        assert torch.allclose(actual, expected, rtol=0, atol=1e-6)
        assert (actual[3, 2:] == 0).all()
    assert torch.allclose(fast.state.hidden, exact.state.hidden, rtol=0, atol=1e-6)
    assert torch.allclose(fast.state.memory, exact.state.memory, rtol=0, atol=1e-6)


def test_fast_stack_dropout_is_the_same_in_training():
    stack = LstmStack(LSTMConfig(num_layers=2, cell_size=16, projection_dim=D), D_IN, dropout=0.5)
    stack.train()
    inputs = padded_inputs([4, 3])
    torch.manual_seed(1)
    exact = stack(inputs, [4, 3])
    torch.manual_seed(1)
    fast = stack(inputs, [4, 3], fast=True)  # same dropout masks: same random draws
    for actual, expected in zip(fast.layers, exact.layers):
        assert torch.allclose(actual, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("fast", [False, True], ids=["exact", "fast"])
def test_prepacked_weights_without_grad_give_the_same_bits(fast, threads):
    # Without gradients the per-step GEMMs use MKL-prepacked weights (step_linear): the exact
    # path must keep every bit, or the chaotic fixture would drift.
    config = LSTMConfig(num_layers=1, cell_size=64, projection_dim=32, cell_clip=3.0, projection_clip=3.0)
    layer = LstmLayer(48, config)
    lengths = [9, 7, 7, 2, 1]
    inputs = padded_inputs(lengths, dim=48)
    state = (torch.randn(5, 32) * 0.3, torch.randn(5, 64) * 0.3)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        plain_outputs, plain_state = layer(inputs, lengths, state, fast=fast)  # grad: linear
        with torch.no_grad():
            outputs, final_state = layer(inputs, lengths, state, fast=fast)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(outputs, plain_outputs.detach())
    for actual, expected in zip(final_state, plain_state):
        assert torch.equal(actual, expected.detach())


@pytest.mark.parametrize("shape", [(12, 5), (256, 48), (4096, 128), (128, 1024)])
def test_step_linear_is_linear_bit_for_bit(shape):
    weight, bias = torch.randn(*shape), torch.randn(shape[0])
    with torch.no_grad():
        for rows in (1, 2, 3, 5, 17, 64, 100):
            x = torch.randn(rows, shape[1])
            assert torch.equal(step_linear(weight)(x), torch.nn.functional.linear(x, weight))
            assert torch.equal(step_linear(weight)(x, bias), torch.nn.functional.linear(x, weight, bias))
    assert step_linear(weight.requires_grad_())(x).grad_fn is not None  # grad mode: plain linear


def _batch_of_64(dim: int) -> tuple[torch.Tensor, list[int]]:
    # 64 rows of varied lengths: positions with 64, 16-63 and fewer than 16 real rows.
    drawn = torch.randint(1, 40, (64,), generator=torch.Generator().manual_seed(3))
    lengths = sorted((int(n) for n in drawn), reverse=True)
    return padded_inputs(lengths, dim=dim), lengths


def test_hoisted_inputs_are_each_positions_own_projection():
    weight = torch.randn(32, 24)
    inputs, lengths = _batch_of_64(24)
    projected, offsets = hoisted_inputs(inputs, lengths, weight)
    assert len(offsets) == lengths[HOIST_MIN_ROWS - 1] + 1  # positions with >= 16 real rows
    assert projected.shape == (offsets[-1], 32)
    for index in range(len(offsets) - 1):
        rows = active_rows(lengths, index)
        assert offsets[index + 1] - offsets[index] == rows >= HOIST_MIN_ROWS
        block = projected[offsets[index] : offsets[index + 1]]
        assert torch.equal(block, torch.nn.functional.linear(inputs[:rows, index], weight))


def test_hoisted_inputs_with_fewer_than_16_rows_hoist_nothing():
    projected, offsets = hoisted_inputs(torch.randn(15, 6, 4), [6] * 15, torch.randn(8, 4))
    assert projected.shape == (0, 8) and offsets == [0]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "backward"])
def test_hoisted_input_projections_keep_every_bit_at_batch_64(reverse, grad, threads, monkeypatch):
    # The exact recurrence reads the input projections of positions with >= 16 real rows from
    # one GEMM; it must give the bits of the reference's per-step loop (hoist_inputs=False).
    # Chaotic weights (as the elmo-random-mid fixture's) would turn any 1e-7 into 1e-2.
    config = LSTMConfig(
        num_layers=2, cell_size=96, projection_dim=40, cell_clip=3.0, projection_clip=3.0
    )
    stack = LstmStack(config, input_dim=40)
    with torch.no_grad():
        for parameter in stack.parameters():
            parameter.mul_(8.0)
    inputs, lengths = _batch_of_64(40)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.set_grad_enabled(grad):
            assert rows_are_independent(stack.layers[0].input_weight)
            hoisted = stack(inputs, lengths, reverse=reverse)
            monkeypatch.setattr(LstmLayer, "hoist_inputs", False)
            per_step = stack(inputs, lengths, reverse=reverse)
    finally:
        torch.set_num_threads(previous)
    assert len(hoisted.layers) == 2
    expected = per_step.layers + [*per_step.state]
    for actual, reference in zip(hoisted.layers + [*hoisted.state], expected):
        assert torch.equal(actual, reference)


def test_without_independent_rows_each_step_has_its_own_gemm(monkeypatch):
    # Where a BLAS rounds a row by the row count (GPU libraries may), nothing is hoisted.
    calls = []
    monkeypatch.setattr("elmo.modules.lstm.rows_are_independent", lambda weight: False)
    monkeypatch.setattr("elmo.modules.lstm.hoisted_inputs", lambda *args: calls.append(args))
    layer = make_layer(input_dim=D_IN)
    inputs, lengths = _batch_of_64(D_IN)
    state = (torch.zeros(64, D), torch.zeros(64, H))
    outputs, _ = layer(inputs, lengths, state)
    assert calls == [] and outputs.shape == (64, max(lengths), D)


def _threads_by_rows(layer: LstmLayer, monkeypatch) -> list[tuple[int, int]]:
    seen = []
    cell = layer._cell

    def recording(gates, memory, project):
        seen.append((gates.shape[0], torch.get_num_threads()))
        return cell(gates, memory, project)

    monkeypatch.setattr(layer, "_cell", recording)
    return seen


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "backward"])
def test_one_thread_per_stack_keeps_every_bit_and_the_callers_thread_count(reverse, monkeypatch):
    # Beside another stack, the recurrence runs on one thread from 16 rows up, and on the
    # caller's count below (where some products of 5-11 rows round by thread count).
    config = LSTMConfig(
        num_layers=1, cell_size=128, projection_dim=48, cell_clip=3.0, projection_clip=3.0
    )
    layer = LstmLayer(48, config)
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.mul_(8.0)  # chaotic: any 1e-7 would show
    inputs, lengths = _batch_of_64(48)
    state = (torch.zeros(64, 48), torch.zeros(64, 128))
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.no_grad():
            expected = layer(inputs, lengths, state, reverse=reverse)
            seen = _threads_by_rows(layer, monkeypatch)
            with one_thread_per_stack():
                actual = layer(inputs, lengths, state, reverse=reverse)
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    assert all(threads == (1 if rows >= HOIST_MIN_ROWS else 2) for rows, threads in seen)
    assert {threads for _, threads in seen} == {1, 2}
    assert torch.equal(actual[0], expected[0])
    assert all(torch.equal(a, b) for a, b in zip(actual[1], expected[1]))


def test_one_thread_per_stack_leaves_cells_not_a_multiple_of_64_alone(monkeypatch):
    # The gate arithmetic's split between threads keeps its bits only for such cell sizes.
    layer = make_layer()  # H = 6
    seen = _threads_by_rows(layer, monkeypatch)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.no_grad(), one_thread_per_stack():
            layer(padded_inputs(LENGTHS), LENGTHS, random_state(len(LENGTHS)))
    finally:
        torch.set_num_threads(previous)
    assert seen and all(threads == 2 for _, threads in seen)


@pytest.mark.parametrize("shape", [(16384, 512), (512, 4096), (4096, 128), (128, 1024)])
def test_the_published_shapes_products_have_the_same_bits_on_one_thread(shape):
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert same_bits_on_one_thread(torch.empty(*shape))
    finally:
        torch.set_num_threads(previous)
