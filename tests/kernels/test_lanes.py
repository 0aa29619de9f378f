"""Tests for elmo.kernels.lanes: inside ``rows_alone()`` the exact kernel computes each row of a
batch with the bits it has alone (as lanes where they keep them, else one row at a time)."""

from __future__ import annotations

import pytest
import torch
from lstm_cases import chaotic_layer

from elmo.kernels import lanes, scripted
from elmo.kernels.cpu import on_side_thread, one_thread_per_stack, thread_count
from elmo.kernels.exact import ExactKernel

EXACT = ExactKernel()


@pytest.fixture
def lane_runs(monkeypatch):
    """Counts the layers run as lanes."""
    seen = []
    run = lanes.lanes_layer

    def counting(layer, inputs, *args):
        seen.append(inputs.shape[0])
        return run(layer, inputs, *args)

    monkeypatch.setattr(lanes, "lanes_layer", counting)
    return seen


def batch(lengths: list[int], random_state: bool, dim: int = 48, hidden: int = 48, cell: int = 128):
    generator = torch.Generator().manual_seed(len(lengths))
    inputs = torch.randn(len(lengths), max(lengths), dim, generator=generator)  # junk at padding
    if random_state:
        state = (
            torch.randn(len(lengths), hidden, generator=generator),
            torch.randn(len(lengths), cell, generator=generator),
        )
    else:
        state = (torch.zeros(len(lengths), hidden), torch.zeros(len(lengths), cell))
    return inputs, state


def each_alone(layer, inputs, lengths, state, reverse):
    """Each row run by the exact kernel on its own (batch 1): the bits lanes must give."""
    outputs, hiddens, memories = [], [], []
    for row, length in enumerate(lengths):
        output, (hidden, memory) = EXACT.run_layer(
            layer,
            inputs[row : row + 1, :length],
            [length],
            (state[0][row : row + 1], state[1][row : row + 1]),
            reverse,
        )
        outputs.append(torch.nn.functional.pad(output, (0, 0, 0, inputs.shape[1] - length)))
        hiddens.append(hidden)
        memories.append(memory)
    return torch.cat(outputs), (torch.cat(hiddens), torch.cat(memories))


def assert_same(actual, expected):
    assert torch.equal(actual[0], expected[0])
    assert all(torch.equal(a, b) for a, b in zip(actual[1], expected[1]))


LENGTHS = {
    "falling": [41, 30, 9, 9, 3, 1],
    "equal": [12] * 4,
    "many_rows": [33, *range(24, 0, -1)],  # 25 rows: a batch this size would hoist its inputs
    "two_one_token": [1, 1],
}


def falling_case(seed: int, random_state: bool, cell_size: int = 128):
    """A chaotic layer (seeded) and a batch of the "falling" lengths: (layer, lengths, inputs,
    state)."""
    torch.manual_seed(seed)
    layer = chaotic_layer(cell_size=cell_size)
    lengths = LENGTHS["falling"]
    return (layer, lengths, *batch(lengths, random_state, cell=cell_size))


@pytest.mark.parametrize("lengths", list(LENGTHS.values()), ids=list(LENGTHS))
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("random_state", [False, True], ids=["zero_state", "carried_state"])
def test_lanes_give_every_row_the_bits_it_has_alone(lengths, reverse, random_state, lane_runs):
    torch.manual_seed(0)
    layer = chaotic_layer()
    inputs, state = batch(lengths, random_state)
    with torch.no_grad(), thread_count(1):
        expected = each_alone(layer, inputs, lengths, state, reverse)
        with lanes.rows_alone():
            actual = EXACT.run_layer(layer, inputs, lengths, state, reverse)
        batched = EXACT.run_layer(
            layer, inputs, lengths, state, reverse
        )  # without: the batch's bits
    assert lane_runs == [len(lengths)]
    assert_same(actual, expected)
    assert not torch.equal(batched[0], expected[0]) or len(set(lengths)) == 1 or max(lengths) == 1


def test_beside_another_stack_each_stack_runs_its_lanes_on_one_thread(lane_runs):
    layer, lengths, inputs, state = falling_case(1, random_state=False)
    with torch.no_grad(), thread_count(2):
        expected = each_alone(layer, inputs, lengths, state, False)
        with one_thread_per_stack():
            expected_beside = each_alone(layer, inputs, lengths, state, False)
            with lanes.rows_alone():
                actual = EXACT.run_layer(layer, inputs, lengths, state, False)
        threads = torch.get_num_threads()
    assert threads == 2  # the caller's count is restored
    assert lane_runs == [len(lengths)]
    assert_same(actual, expected_beside)
    assert_same(actual, expected)  # here one row's products keep their bits on one thread


@pytest.mark.parametrize("why", ["cell_size", "threads", "bias_probe", "products_probe"])
def test_where_lanes_would_change_bits_the_rows_run_one_at_a_time(why, lane_runs, monkeypatch):
    cell_size = 96 if why == "cell_size" else 128
    layer, lengths, inputs, state = falling_case(2, random_state=True, cell_size=cell_size)
    if why == "bias_probe":
        monkeypatch.setattr(lanes, "bias_after_keeps_bits", lambda weight: False)
    if why == "products_probe":
        monkeypatch.setattr(lanes, "few_row_products_exact", lambda weight, rows: False)
    with torch.no_grad(), thread_count(2 if why == "threads" else 1):
        expected = each_alone(layer, inputs, lengths, state, True)
        with lanes.rows_alone():
            actual = EXACT.run_layer(layer, inputs, lengths, state, True)
    assert lane_runs == []
    assert_same(actual, expected)


def test_with_a_gradient_rows_alone_changes_nothing(lane_runs):
    layer, lengths, inputs, state = falling_case(3, random_state=False)
    with thread_count(1):
        expected = EXACT.run_layer(layer, inputs, lengths, state, False)
        with lanes.rows_alone():
            actual = EXACT.run_layer(layer, inputs, lengths, state, False)
    assert lane_runs == []
    assert_same(actual, expected)


def test_the_request_reaches_the_backward_stacks_side_thread():
    assert not lanes.rows_alone_requested()
    with lanes.rows_alone():
        assert lanes.rows_alone_requested()
        assert on_side_thread(lanes.rows_alone_requested)()
    assert not lanes.rows_alone_requested()
    assert not on_side_thread(lanes.rows_alone_requested)()


def test_without_torchscript_the_lanes_run_from_python_with_a_warning(monkeypatch, lane_runs):
    def refuse(function):
        raise RuntimeError("no TorchScript here")

    scripted._script.cache_clear()
    assert scripted.scripted_loop() is not None  # the one-row loop compiled: only the lanes' fails
    monkeypatch.setattr(torch.jit, "script", refuse)
    try:
        with pytest.warns(RuntimeWarning, match="lanes' loop.*same bits"):
            loop = lanes.lane_loop()
        assert loop is lanes.run_lane_steps
        layer, lengths, inputs, state = falling_case(4, random_state=False)
        with torch.no_grad(), thread_count(1):
            expected = each_alone(layer, inputs, lengths, state, False)
            with lanes.rows_alone():
                actual = EXACT.run_layer(layer, inputs, lengths, state, False)
        assert lane_runs == [len(lengths)]
        assert_same(actual, expected)
    finally:
        scripted._script.cache_clear()


def test_the_bias_probe_answers_for_the_machine_at_hand():
    weight = torch.randn(256, 48)
    with thread_count(1):
        assert isinstance(lanes.bias_after_keeps_bits(weight), bool)


def test_the_steps_run_in_chunks_with_the_same_bits(monkeypatch, lane_runs):
    monkeypatch.setattr(lanes, "CHUNK_ROWS", 3)  # a chunk every step or two
    layer, lengths, inputs, state = falling_case(5, random_state=True)
    for reverse in (False, True):
        with torch.no_grad(), thread_count(1):
            expected = each_alone(layer, inputs, lengths, state, reverse)
            with lanes.rows_alone():
                actual = EXACT.run_layer(layer, inputs, lengths, state, reverse)
        assert_same(actual, expected)
    assert lane_runs == [len(lengths)] * 2


@pytest.fixture
def native_bf16(monkeypatch):
    """Run bfloat16 products here whatever the CPU (emulated ones compute the same values)."""
    from elmo.kernels import bf16

    monkeypatch.setattr(bf16, "native_bf16", lambda device_type: True)


@pytest.mark.parametrize("name", ["fused", "bf16"])
def test_the_fused_and_bf16_kernels_take_lanes_where_one_row_runs_the_exact_loop(
    name, lane_runs, native_bf16
):
    """One row through either kernel is the exact kernel's TorchScript loop (a small layer), so
    inside ``rows_alone()`` its rows run as the exact kernel's lanes: each row's bits alone."""
    from elmo.kernels import get_kernel

    kernel = get_kernel(name)
    layer, lengths, inputs, state = falling_case(3, random_state=True)
    with torch.no_grad(), thread_count(1):
        expected = each_alone(layer, inputs, lengths, state, False)
        alone = kernel.run_layer(layer, inputs[:1, :41], [41], (state[0][:1], state[1][:1]), False)
        with lanes.rows_alone():
            actual = kernel.run_layer(layer, inputs, lengths, state, False)
    assert kernel.rows_alone and lane_runs == [len(lengths)]
    assert_same(actual, expected)
    assert torch.equal(alone[0], expected[0][:1])  # the kernel alone: the exact loop too


def test_where_bf16_runs_one_row_in_bfloat16_its_rows_alone_run_one_at_a_time(
    lane_runs, native_bf16, monkeypatch
):
    """On a large layer (the ORIGINAL shape) the bf16 kernel's one-row products are bfloat16:
    no lanes then, each row through the kernel alone, with the bits it has alone."""
    from elmo.kernels import bf16, get_kernel

    monkeypatch.setattr(bf16, "few_rows_in_bf16", lambda layer: True)
    kernel = get_kernel("bf16")
    layer, lengths, inputs, state = falling_case(4, random_state=False)
    with torch.no_grad(), thread_count(1):
        alone = [
            kernel.run_layer(
                layer, inputs[row : row + 1, :n], [n], (state[0][row : row + 1], state[1][row : row + 1]), True
            )
            for row, n in enumerate(lengths)
        ]
        exact = each_alone(layer, inputs, lengths, state, True)
        with lanes.rows_alone():
            actual = kernel.run_layer(layer, inputs, lengths, state, True)
    assert lane_runs == []
    for row, (n, (output, _)) in enumerate(zip(lengths, alone)):
        assert torch.equal(actual[0][row : row + 1, :n], output)
    assert not torch.equal(actual[0], exact[0])  # bfloat16, not the exact kernel's bits
