"""Tests for elmo.kernels.scripted: the exact kernel's TorchScript loop keeps every bit."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from lstm_cases import LENGTHS, chaotic_layer, make_layer, padded_inputs, random_state

from elmo.config import LSTMConfig
from elmo.kernels import exact, fused, scripted
from elmo.kernels.cpu import HOIST_MIN_ROWS, one_thread_per_stack, thread_count
from elmo.kernels.exact import ExactKernel, runs_scripted
from elmo.modules.lstm import LstmLayer

EXACT = ExactKernel()


@pytest.fixture
def calls(monkeypatch):
    """Counts the exact kernel's calls of the compiled loop."""
    seen = []
    loop = scripted.scripted_loop()
    assert isinstance(loop, torch.jit.ScriptFunction)

    def counting(*args):
        seen.append(len(args[1]))  # the positions run
        return loop(*args)

    for kernel in (exact, fused):  # the fused kernel runs few rows by the same loop
        monkeypatch.setattr(kernel, "scripted_loop", lambda: counting)
    return seen


def assert_same(actual, expected):
    assert torch.equal(actual[0], expected[0])
    assert all(torch.equal(a, b) for a, b in zip(actual[1], expected[1]))


@pytest.mark.parametrize(
    "lengths",
    [[41], [1], [37, 20, 9, 9, 3], [12] * 3, [30, 29, 7, 7, 7, 6, 5, 4, 4, 3, 2, 2, 1, 1, 1]],
    ids=["batch_1", "one_token", "batch_5", "equal_lengths", "batch_15"],
)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("beside", [False, True], ids=["alone", "beside_another_stack"])
def test_the_scripted_loop_keeps_every_bit_of_the_reference_loop(lengths, reverse, beside, calls):
    layer = chaotic_layer()
    inputs = padded_inputs(lengths, dim=48)
    state = (torch.randn(len(lengths), 48), torch.randn(len(lengths), 128))  # a carried state
    with thread_count(2), torch.no_grad():
        expected = layer(inputs, lengths, state, reverse)  # the reference loop, from Python
        if beside:  # steps move to one thread where their bits allow: runs of positions
            with one_thread_per_stack():
                actual = EXACT.run_layer(layer, inputs, lengths, state, reverse)
        else:
            actual = EXACT.run_layer(layer, inputs, lengths, state, reverse)
        assert torch.get_num_threads() == 2
    assert sum(calls) == lengths[0]  # every position, by the compiled loop
    assert_same(actual, expected)


@pytest.mark.parametrize("clips", [(None, None), (3.0, None), (None, 2)], ids=["none", "cell", "int_projection"])
def test_the_scripted_loop_applies_the_clips_as_the_layer_does(clips, calls):
    layer = chaotic_layer(*clips)
    inputs = padded_inputs(LENGTHS, dim=48)
    state = (torch.randn(len(LENGTHS), 48), torch.randn(len(LENGTHS), 128))
    with torch.no_grad():
        expected = layer(inputs, LENGTHS, state, False)
        actual = EXACT.run_layer(layer, inputs, LENGTHS, state, False)
    assert calls
    assert_same(actual, expected)


def test_the_scripted_loop_runs_float64(calls):
    layer = make_layer().double()
    inputs = padded_inputs(LENGTHS).double()
    state = tuple(part.double() for part in random_state(len(LENGTHS)))
    with torch.no_grad():
        assert_same(EXACT.run_layer(layer, inputs, LENGTHS, state, True), layer(inputs, LENGTHS, state, True))
    assert calls


def test_only_few_rows_without_a_gradient_and_the_layers_own_cell_run_scripted(monkeypatch):
    layer = make_layer()
    few, many = [3, 2], [2] * HOIST_MIN_ROWS
    state = random_state(2)
    with torch.no_grad():
        assert runs_scripted(layer, padded_inputs(few), few, state)
        assert not runs_scripted(layer, padded_inputs(many), many, random_state(len(many)))
    assert not runs_scripted(layer, padded_inputs(few), few, state)  # grad mode, weights need one

    class OwnCell(LstmLayer):
        def cell(self, gates, memory, project):
            return super().cell(gates, memory, project)

    subclassed = OwnCell(layer.input_weight.shape[1], make_layer_config())
    cell = layer.cell
    monkeypatch.setattr(layer, "cell", lambda *args, **options: cell(*args, **options))  # the loop would skip it
    with torch.no_grad():
        assert not runs_scripted(subclassed, padded_inputs(few), few, state)
        assert not runs_scripted(layer, padded_inputs(few), few, state)


def make_layer_config() -> LSTMConfig:
    return LSTMConfig(num_layers=1, cell_size=6, projection_dim=4, cell_clip=3.0, projection_clip=3.0)


def test_without_torchscript_the_loop_runs_from_python_with_a_warning(monkeypatch):
    def unavailable(function):
        raise RuntimeError("no TorchScript here")

    scripted._script.cache_clear()
    monkeypatch.setattr(torch.jit, "script", unavailable)
    try:
        with pytest.warns(RuntimeWarning, match="no TorchScript here.*same bits"):
            assert scripted.scripted_loop() is None
        layer = chaotic_layer()
        inputs = padded_inputs([9, 4], dim=48)
        state = (torch.zeros(2, 48), torch.zeros(2, 128))
        with torch.no_grad():
            assert_same(EXACT.run_layer(layer, inputs, [9, 4], state, False), layer(inputs, [9, 4], state, False))
    finally:
        scripted._script.cache_clear()


def test_the_fused_kernel_runs_few_rows_without_a_gradient_by_the_exact_kernels_loop(calls, monkeypatch):
    # There the fused step from Python was slower than this loop (docs/benchmarks.md).
    layer = chaotic_layer()
    lengths = [9, 4, 4]
    inputs = padded_inputs(lengths, dim=48)
    state = (torch.zeros(3, 48), torch.zeros(3, 128))
    with torch.no_grad():
        expected = EXACT.run_layer(layer, inputs, lengths, state, True)
        assert_same(fused.FusedKernel().run_layer(layer, inputs, lengths, state, True), expected)
    assert sum(calls) == 2 * lengths[0]
    steps = []
    fused_step = fused.fused_step
    monkeypatch.setattr(fused, "fused_step", lambda *args: steps.append(args) or fused_step(*args))
    outputs, _ = fused.FusedKernel().run_layer(layer, inputs, lengths, state, True)  # a gradient
    assert outputs.requires_grad and len(steps) == 1
    with torch.no_grad():
        many = [2] * HOIST_MIN_ROWS
        fused.FusedKernel().run_layer(layer, padded_inputs(many, dim=48), many,
                                      (torch.zeros(16, 48), torch.zeros(16, 128)), False)  # fmt: skip
    assert len(steps) == 2


def test_two_stacks_reaching_their_first_layer_at_once_compile_the_loop_once(monkeypatch):
    compile_loop, compiles = torch.jit.script, []

    def slow_compile(function):
        compiles.append(function)
        time.sleep(0.2)  # the other thread arrives meanwhile
        return compile_loop(function)

    scripted._script.cache_clear()
    monkeypatch.setattr(torch.jit, "script", slow_compile)
    try:
        loops = []
        threads = [threading.Thread(target=lambda: loops.append(scripted.scripted_loop())) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(compiles) == 1 and loops[0] is loops[1] is not None
    finally:
        scripted._script.cache_clear()
