"""Tests for elmo.kernels.cpu: each CPU lever of the exact kernel keeps every bit."""

from __future__ import annotations

import pytest
import torch
from lstm_cases import LENGTHS, make_layer, padded_inputs, random_state

from elmo.config import LSTMConfig
from elmo.kernels.cpu import (
    DISTINCT_MIN_INPUT,
    FEW_ROWS,
    HOIST_MIN_ROWS,
    PACK_ROWS,
    GatheredRows,
    blocked_products,
    caller_threads,
    distinct_rows,
    few_row_inputs,
    few_row_products_exact,
    has_rows,
    hoisted_inputs,
    one_thread_per_stack,
    rows_alone,
    same_bits_on_one_thread,
    step_linear,
    thread_count,
    threads_for,
)
from elmo.kernels.exact import ExactKernel
from elmo.modules.lstm import LstmLayer, active_rows

EXACT = ExactKernel()


@pytest.mark.parametrize("shape", [(12, 5), (256, 48), (4096, 128), (128, 1024)])
def test_step_linear_is_linear_bit_for_bit(shape):
    weight, bias = torch.randn(*shape), torch.randn(shape[0])
    with torch.no_grad():
        for rows in (1, 2, 3, 5, 17, 64, 100):
            x = torch.randn(rows, shape[1])
            assert torch.equal(step_linear(weight)(x), torch.nn.functional.linear(x, weight))
            assert torch.equal(step_linear(weight)(x, bias), torch.nn.functional.linear(x, weight, bias))
    assert step_linear(weight.requires_grad_())(x).grad_fn is not None  # grad mode: plain linear


def test_step_linear_without_packing_is_linear():
    weight, x = torch.randn(256, 48), torch.randn(64, 48)
    with torch.no_grad():
        assert torch.equal(step_linear(weight, pack=False)(x), torch.nn.functional.linear(x, weight))


@pytest.mark.parametrize(
    ("lengths", "rows", "expected"),
    [([5, 3, 3, 1], 4, True), ([5, 3, 3, 1], 3, True), ([5, 3, 3, 1], 2, False),
     ([5, 3, 3, 1], 1, True), ([3, 3, 3], 3, True), ([3, 3, 0], 3, False), ([2], 5, False)],
)  # fmt: skip
def test_has_rows_says_whether_some_position_has_exactly_that_many_rows(lengths, rows, expected):
    counts = {active_rows(lengths, index) for index in range(lengths[0])}
    assert has_rows(lengths, rows) is expected is (rows in counts)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(4096, 128), (512, 16), (64, 24)])
def test_blocked_products_keep_linears_bits_where_the_probe_says_so(shape, threads):
    # One sentence at a time (1 row) must always qualify: it is what the block reading is for.
    weight = torch.randn(*shape) * shape[1] ** -0.5
    x = torch.randn(6, 15, shape[1])
    with thread_count(threads), torch.no_grad():
        assert few_row_products_exact(weight, 1)
        for rows in FEW_ROWS:
            if few_row_products_exact(weight, rows):
                each = torch.stack([torch.nn.functional.linear(item[:rows], weight) for item in x])
                assert torch.equal(blocked_products(x[:, :rows], weight), each)
        if threads == 1:  # with MKL on one thread every row count qualifies
            assert all(few_row_products_exact(weight, rows) for rows in FEW_ROWS)
    assert not few_row_products_exact(weight, HOIST_MIN_ROWS)  # hoisted_inputs' business


def test_few_row_inputs_are_each_positions_own_product():
    weight = torch.randn(256, 24)
    lengths = [30, 30, 12, 12, 12, 7, 1]  # positions 0: 7 rows, 1-6: 6, 7-11: 5, 12-29: 2
    inputs = padded_inputs(lengths, dim=24)
    with torch.no_grad(), thread_count(1):  # the steps' own products on the same one thread
        few = few_row_inputs(inputs, lengths, weight, start=0, threads=lambda rows: 1)
        assert sorted(few) == list(range(1, 30))  # position 0 is a run of one: left out
        for index, product in few.items():
            own = torch.nn.functional.linear(inputs[: active_rows(lengths, index), index], weight)
            assert torch.equal(product, own)
        later = few_row_inputs(inputs, lengths, weight, start=11, threads=lambda rows: 1)
        assert sorted(later) == list(range(12, 30))  # position 11 is a run of one: left out
    trained = weight.requires_grad_()  # with a gradient: the steps compute their own
    assert few_row_inputs(inputs, lengths, trained, start=0, threads=lambda rows: 1) == {}


@pytest.mark.parametrize("lengths", [[41], [37, 20, 9, 9, 3]], ids=["batch_1", "batch_5"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "backward"])
def test_few_rows_beside_another_stack_keep_every_bit(lengths, reverse):
    # One sentence at a time: every input projection comes from blocked_products and the steps
    # run on one thread beside the other stack; the chaotic weights show any 1e-7.
    config = LSTMConfig(num_layers=1, cell_size=128, projection_dim=48, cell_clip=3.0,
                        projection_clip=3.0)  # fmt: skip
    layer = LstmLayer(48, config)
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.mul_(8.0)
    inputs = padded_inputs(lengths, dim=48)
    state = (torch.zeros(len(lengths), 48), torch.zeros(len(lengths), 128))
    with thread_count(2), torch.no_grad():
        expected = layer(inputs, lengths, state, reverse)  # the reference loop
        with one_thread_per_stack():
            actual = EXACT.run_layer(layer, inputs, lengths, state, reverse)
        assert torch.get_num_threads() == 2
    assert torch.equal(actual[0], expected[0])
    assert all(torch.equal(a, b) for a, b in zip(actual[1], expected[1]))


def test_pack_rows_is_what_the_packed_product_serves():
    assert has_rows([3] * PACK_ROWS, PACK_ROWS) and not has_rows([3] * (PACK_ROWS - 1), PACK_ROWS)


def _batch_of_64(dim: int) -> tuple[torch.Tensor, list[int]]:
    # 64 rows of varied lengths: positions with 64, 16-63 and fewer than 16 real rows.
    drawn = torch.randint(1, 40, (64,), generator=torch.Generator().manual_seed(3))
    lengths = sorted((int(n) for n in drawn), reverse=True)
    return padded_inputs(lengths, dim=dim), lengths


def test_hoisted_inputs_are_each_positions_own_projection():
    weight = torch.randn(32, 24)
    inputs, lengths = _batch_of_64(24)
    hoisted = hoisted_inputs(inputs, lengths, weight)
    assert len(hoisted) == lengths[HOIST_MIN_ROWS - 1]  # positions with >= 16 real rows
    for index, projected in enumerate(hoisted):
        rows = active_rows(lengths, index)
        assert projected.shape == (rows, 32) and rows >= HOIST_MIN_ROWS
        assert torch.equal(projected, torch.nn.functional.linear(inputs[:rows, index], weight))


def test_hoisted_inputs_with_fewer_than_16_rows_hoist_nothing():
    assert len(hoisted_inputs(torch.randn(15, 6, 4), [6] * 15, torch.randn(8, 4))) == 0


def _words_of_a_batch(dim: int, vocabulary: int) -> tuple[torch.Tensor, list[int]]:
    # A batch of 64 sentences of words from a small vocabulary: each word's vector recurs.
    _, lengths = _batch_of_64(dim)
    generator = torch.Generator().manual_seed(4)
    words = torch.randn(vocabulary, dim, generator=generator) * 2.0  # (V, D_in)
    drawn = torch.randint(0, vocabulary, (64, lengths[0]), generator=generator)
    return words[drawn], lengths  # (64, T, D_in); padding holds words too: never read


@pytest.mark.parametrize("threads", [1, 2])
def test_repeated_rows_are_projected_once_with_the_same_bits(threads):
    # A word's vector wherever it occurs is one row of the GEMM, gathered back per position.
    weight = torch.randn(64, DISTINCT_MIN_INPUT)
    inputs, lengths = _words_of_a_batch(DISTINCT_MIN_INPUT, vocabulary=40)
    with thread_count(threads), torch.no_grad():
        hoisted = hoisted_inputs(inputs, lengths, weight)
        assert isinstance(hoisted, GatheredRows)
        real = torch.cat([inputs[: active_rows(lengths, t), t] for t in range(len(hoisted))])
        assert hoisted.projected.shape == (len(real.unique(dim=0)), 64)  # the distinct rows alone
        for index, projected in enumerate(hoisted):
            rows = active_rows(lengths, index)
            assert torch.equal(projected, torch.nn.functional.linear(inputs[:rows, index], weight))


def test_rows_are_told_apart_by_their_bits():
    # -0.0 and 0.0 are equal numbers but not the same row: each is projected as itself.
    rows = torch.randn(20, DISTINCT_MIN_INPUT).repeat(4, 1)  # (80, D_in): 20 distinct rows
    rows[[0, 40], 0], rows[[20, 60], 0] = 0.0, -0.0  # row 0's repeats now differ in a sign bit
    unique, inverse = distinct_rows(rows, torch.randn(8, DISTINCT_MIN_INPUT))
    assert unique.shape[0] == 21 and inverse[0] != inverse[20]
    assert torch.equal(unique[inverse].view(torch.int32), rows.view(torch.int32))


def test_distinct_rows_only_where_they_pay_and_keep_the_gradient():
    weight = torch.randn(8, DISTINCT_MIN_INPUT)
    repeated = torch.randn(20, DISTINCT_MIN_INPUT).repeat(4, 1)  # (80, D_in)
    assert distinct_rows(repeated, weight) is not None
    assert distinct_rows(torch.randn(80, DISTINCT_MIN_INPUT), weight) is None  # all distinct
    assert distinct_rows(torch.randn(10, DISTINCT_MIN_INPUT).repeat(8, 1), weight) is None  # < 16
    narrow = torch.randn(20, DISTINCT_MIN_INPUT // 2).repeat(4, 1)  # a narrow input: the GEMM is cheap
    assert distinct_rows(narrow, torch.randn(8, DISTINCT_MIN_INPUT // 2)) is None
    trained = weight.clone().requires_grad_()  # a gradient would be summed in another order
    assert distinct_rows(repeated, trained) is None
    with torch.no_grad():
        assert distinct_rows(repeated, trained) is not None
    inputs, lengths = _words_of_a_batch(DISTINCT_MIN_INPUT, vocabulary=40)
    hoisted = hoisted_inputs(inputs, lengths, trained)
    assert not isinstance(hoisted, GatheredRows) and hoisted[0].grad_fn is not None


@pytest.mark.parametrize("grad", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "backward"])
def test_a_layer_of_repeated_words_keeps_every_bit(reverse, grad, monkeypatch):
    # The exact kernel's layer over a batch of 64 whose rows repeat: the reference loop's bits,
    # in inference and in training's forward (its products are taken without a gradient).
    gathered = []
    monkeypatch.setattr("elmo.kernels.cpu.GatheredRows", lambda *args: gathered.append(1) or GatheredRows(*args))
    config = LSTMConfig(num_layers=1, cell_size=32, projection_dim=24, cell_clip=3.0,
                        projection_clip=3.0)  # fmt: skip
    layer = LstmLayer(DISTINCT_MIN_INPUT, config)
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.mul_(8.0)  # chaotic: any 1e-7 would grow
    inputs, lengths = _words_of_a_batch(DISTINCT_MIN_INPUT, vocabulary=40)
    state = (torch.zeros(64, 24), torch.zeros(64, 32))
    with torch.set_grad_enabled(grad):
        expected = layer(inputs, lengths, state, reverse)  # the reference loop
        actual = EXACT.run_layer(layer, inputs, lengths, state, reverse)
    assert gathered == [1]  # the distinct rows' GEMM served the layer
    assert torch.equal(actual[0], expected[0])
    assert all(torch.equal(a, b) for a, b in zip(actual[1], expected[1]))
    if grad:  # and the gradient flows as before (tests/kernels/test_bptt.py checks its values)
        actual[0].sum().backward()
        assert layer.input_weight.grad is not None and layer.input_weight.grad.abs().sum() > 0


def _threads_by_rows(layer: LstmLayer, monkeypatch) -> list[tuple[int, int]]:
    seen = []
    cell = layer.cell

    def recording(gates, memory, project):
        seen.append((gates.shape[0], torch.get_num_threads()))
        return cell(gates, memory, project)

    monkeypatch.setattr(layer, "cell", recording)
    return seen


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "backward"])
def test_one_thread_per_stack_keeps_every_bit_and_the_callers_thread_count(reverse, monkeypatch):
    # Beside another stack, the recurrence runs on one thread from 16 rows up, and below that
    # for the row counts whose products keep their bits there (on MKL with 2 threads, all but
    # 5-7 and 9-11 rows); the others run on the caller's count.
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
            expected = EXACT.run_layer(layer, inputs, lengths, state, reverse)
            seen = _threads_by_rows(layer, monkeypatch)
            with one_thread_per_stack():
                actual = EXACT.run_layer(layer, inputs, lengths, state, reverse)
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    with thread_count(2):
        weights = [(layer.input_weight, False), (layer.recurrent_weight, True)]
        alone = rows_alone([*weights, (layer.projection_weight, False)], caller=2)
    assert all(threads == (1 if min(rows, HOIST_MIN_ROWS) in alone else 2) for rows, threads in seen)
    assert 1 in {threads for _, threads in seen}
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
            EXACT.run_layer(layer, padded_inputs(LENGTHS), LENGTHS, random_state(len(LENGTHS)), False)
    finally:
        torch.set_num_threads(previous)
    assert seen and all(threads == 2 for _, threads in seen)


@pytest.mark.parametrize("shape", [(16384, 512), (512, 4096), (4096, 128), (128, 1024)])
def test_a_published_shape_runs_on_one_thread_only_where_its_bits_allow(shape):
    # A property of the CPU's MKL: on an AMD EPYC every published shape keeps its bits on one
    # thread; on an Intel Xeon with AVX-512, 2 threads split the products of the 1,024- and
    # 4,096-wide projections differently from 16 rows up. The probes must see that, and a step
    # beside the other stack then keeps the caller's thread count at those row counts.
    weight = torch.randn(*shape) * shape[1] ** -0.5
    x, bias = torch.randn(64, shape[1]), torch.randn(shape[0])
    counts = (1, 2, 5, 9, 15, 16, 33, 64)
    with torch.no_grad(), thread_count(2):
        together = [torch.nn.functional.linear(x[:rows], weight, bias) for rows in counts]
        with thread_count(1):
            alone = [torch.nn.functional.linear(x[:rows], weight, bias) for rows in counts]
        probe = same_bits_on_one_thread(weight)
        with one_thread_per_stack():
            caller = caller_threads(256)
            allowed = rows_alone([(weight, True)], caller)
    assert caller == 2
    for rows, a, b in zip(counts, together, alone):
        if not torch.equal(a, b):  # the bits move: the step must keep the caller's count
            assert threads_for(rows, caller, allowed) == 2, rows
    assert (threads_for(64, caller, allowed) == 1) == probe
