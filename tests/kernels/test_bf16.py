"""Tests for the bf16 kernel: the fused kernel with its products in bfloat16.

It is equal to the exact kernel up to bfloat16 rounding where it uses bfloat16; on a large
layer that is every product, on a small one those of >= 16 rows, and below 16 sentences a small
layer runs the exact kernel; in float64 it is the fused one, bit for bit. It refuses a CPU
without bfloat16 instructions, keeps its weights' copies only while the weights stay the same,
takes the input products a chunk of steps at a time, and refuses a gradient (inference only).
"""

from __future__ import annotations

import weakref
from pathlib import Path

import pytest
import torch
from lstm_cases import mask_of, padded_inputs

from elmo.config import LSTMConfig
from elmo.kernels import bf16, fused, get_kernel
from elmo.modules.lstm import LstmLayer, LstmStack

DIM = 24  # the inputs' and the projection's size


@pytest.fixture
def native(monkeypatch):
    """Run bfloat16 products here whatever the CPU (emulated ones compute the same values)."""
    monkeypatch.setattr(bf16, "native_bf16", lambda device_type: True)


def stack_and_batch(rows: int) -> tuple[LstmStack, torch.Tensor, list[int]]:
    torch.manual_seed(0)
    config = LSTMConfig(num_layers=2, cell_size=64, projection_dim=DIM, cell_clip=3.0, projection_clip=3.0)
    lengths = sorted(torch.randint(1, 12, (rows,)).tolist(), reverse=True)
    return LstmStack(config, input_dim=DIM), padded_inputs(lengths, dim=DIM), lengths


def run(stack: LstmStack, kernel, inputs, lengths, **kwargs):
    stack.kernel = get_kernel(kernel)
    return stack(inputs, mask_of(lengths), **kwargs)


def test_from_16_rows_it_equals_the_exact_kernel_up_to_bfloat16_rounding(native):
    stack, inputs, lengths = stack_and_batch(rows=40)
    with torch.no_grad():
        exact = run(stack, "exact", inputs, lengths)
        fused = run(stack, "fused", inputs, lengths)
        half = run(stack, "bf16", inputs, lengths)
    for actual, expected, rounded in zip(half.layers, exact.layers, fused.layers):
        scale = expected.abs().max()
        assert (actual - expected).abs().max() < 1e-2 * scale  # bfloat16: 8 bits of mantissa (4e-3 seen)
        assert (actual - rounded).abs().max() > 1e-4 * scale  # it did run in bfloat16
        assert (actual[lengths.index(min(lengths)), min(lengths) :] == 0).all()  # padding stays 0
    cosine = torch.nn.functional.cosine_similarity(half.layers[-1], exact.layers[-1], dim=-1)
    assert cosine[mask_of(lengths)].min() > 0.999


def test_below_16_sentences_it_is_the_exact_kernel_and_in_float64_the_fused_one_bit_for_bit(native):
    stack, inputs, lengths = stack_and_batch(rows=15)
    with torch.no_grad():
        exact = run(stack, "exact", inputs, lengths)  # 15 rows: no step of 16
        half = run(stack, "bf16", inputs, lengths)
        assert all(torch.equal(a, b) for a, b in zip(half.layers, exact.layers))
        _, inputs, lengths = stack_and_batch(rows=40)
        stack.double()
        inputs = inputs.double()
        fused = run(stack, "fused", inputs, lengths)
        half = run(stack, "bf16", inputs, lengths)
        assert all(torch.equal(a, b) for a, b in zip(half.layers, fused.layers))


def test_on_a_large_layer_every_product_is_bfloat16_one_sentence_at_a_time_too(native, monkeypatch):
    monkeypatch.setattr(bf16, "BF16_FEW_ROWS_MIN_WEIGHTS", 0)  # the tiny layers count as large
    for rows in (1, 5, 40):
        stack, inputs, lengths = stack_and_batch(rows=rows)
        assert all(bf16.few_rows_in_bf16(layer) == bf16.packs_bf16() for layer in stack.layers)
        with torch.no_grad():
            exact = run(stack, "exact", inputs, lengths)
            half = run(stack, "bf16", inputs, lengths)
        for actual, expected in zip(half.layers, exact.layers):
            scale = expected.abs().max()
            assert (actual - expected).abs().max() < 1e-2 * scale
            if bf16.packs_bf16():  # else a small layer's rule: below 16 rows, the exact kernel
                assert (actual - expected).abs().max() > 1e-4 * scale  # it did run in bfloat16
            assert (actual[lengths.index(min(lengths)), min(lengths) :] == 0).all()  # padding stays 0


def test_the_bfloat16_weights_are_the_fused_weights_rounded_to_bfloat16(monkeypatch):
    monkeypatch.setattr(bf16, "packs_bf16", lambda: False)  # plain weights, to compare
    stack, _, _ = stack_and_batch(rows=1)
    layer = stack.layers[1]
    with torch.no_grad():
        layer.forget_offset.fill_(1.0)
        layer.recurrent_weight.mul_(1e30)  # large values doubled: rounding and doubling still commute
    weights = get_kernel("bf16").bf16_weights(layer)
    expected = fused.fused_weights(layer)  # doubled in float32, then rounded
    assert torch.equal(weights.input, expected.input.bfloat16())
    assert torch.equal(weights.bias, expected.bias.bfloat16())
    eye = torch.eye(DIM).bfloat16()  # the products of the identity give the weights back
    assert torch.equal(weights.recurrent(eye).t(), expected.recurrent.bfloat16())
    eye = torch.eye(layer.cell_size).bfloat16()
    assert torch.equal(weights.projection(eye).t(), expected.projection.bfloat16())


def test_the_bfloat16_product_equals_the_float64_one_up_to_its_rounding_at_any_row_count():
    torch.manual_seed(0)
    weight = torch.randn(96, 40) * 0.1
    product = bf16.bf16_linear(weight.bfloat16())
    for rows in (1, 3, 15, 16, 64):
        x = torch.randn(rows, 40)
        out = product(x.bfloat16())
        assert out.shape == (rows, 96) and out.dtype == torch.bfloat16
        expected = torch.nn.functional.linear(x.double(), weight.double())
        assert (out.double() - expected).abs().max() < 2e-2 * expected.abs().max()


def test_without_onednn_packing_the_plain_bfloat16_product_runs(monkeypatch):
    monkeypatch.setattr(bf16, "packs_bf16", lambda: False)
    weight = torch.randn(12, 8).bfloat16()
    x = torch.randn(2, 8).bfloat16()
    assert torch.equal(bf16.bf16_linear(weight)(x), torch.nn.functional.linear(x, weight))
    config = LSTMConfig(num_layers=1, cell_size=64, projection_dim=DIM)
    monkeypatch.setattr(bf16, "BF16_FEW_ROWS_MIN_WEIGHTS", 0)
    assert not bf16.few_rows_in_bf16(LstmLayer(DIM, config))  # then few rows stay float32


def test_a_cpu_without_bfloat16_instructions_is_refused_with_the_way_out(monkeypatch):
    monkeypatch.setattr(bf16, "native_bf16", lambda device_type: False)
    stack, inputs, lengths = stack_and_batch(rows=16)
    for rows in (16, 1):  # refused at once, not at the first product of 16 rows
        with torch.no_grad(), pytest.raises(ValueError, match=r"kernel 'bf16'.*CPU.*use kernel 'exact' \(the default\) or 'fused'"):
            run(stack, "bf16", inputs[:rows, :1], [1] * rows)
    stack.double()  # a float64 model runs the fused kernel: nothing to refuse
    run(stack, "bf16", inputs.double(), lengths)


def test_the_bfloat16_weights_are_made_once_and_again_when_the_weights_change(native):
    stack, inputs, lengths = stack_and_batch(rows=20)
    kernel = get_kernel("bf16")
    layer = stack.layers[0]
    with torch.no_grad():
        first = kernel.bf16_weights(layer)
        assert kernel.bf16_weights(layer) is first
        assert first.input.dtype == torch.bfloat16
        hidden = torch.randn(3, DIM).bfloat16()
        assert first.recurrent(hidden).dtype == torch.bfloat16
        before = run(stack, kernel, inputs, lengths).layers[-1]
        layer.recurrent_weight.mul_(0.5)  # an in-place write
        assert kernel.bf16_weights(layer) is not first
        after = run(stack, kernel, inputs, lengths).layers[-1]
        fresh = run(stack, "bf16", inputs, lengths).layers[-1]
        replaced = weakref.ref(layer.recurrent_weight)
        layer.recurrent_weight = torch.nn.Parameter(layer.recurrent_weight * 2.0)  # another tensor
        assert replaced() is None  # the kernel does not hold on to weights replaced since
        assert torch.equal(kernel.bf16_weights(layer).recurrent(hidden), first.recurrent(hidden))
    assert not torch.equal(before, after)
    assert torch.equal(after, fresh)


def test_a_gradient_is_refused_but_a_frozen_stack_under_grad_mode_runs(native):
    stack, inputs, lengths = stack_and_batch(rows=32)
    with pytest.raises(ValueError, match=r"kernel 'bf16' is for inference.*use 'exact' or 'fused'"):
        run(stack, "bf16", inputs, lengths)
    stack.requires_grad_(False)  # a frozen biLM under a model being trained: inference
    out = run(stack, "bf16", inputs, lengths)
    assert not out.layers[-1].requires_grad


def test_the_layer_alone_from_a_carried_state_and_both_directions(native):
    # run_layer directly, as a kernel seam caller would (a stateful embedder carries the state).
    config = LSTMConfig(num_layers=1, cell_size=32, projection_dim=16, cell_clip=3.0, projection_clip=3.0)
    layer = LstmLayer(16, config)
    lengths = [6] * 10 + [4] * 10
    inputs = padded_inputs(lengths, dim=16)
    state = (torch.randn(20, 16) * 0.3, torch.randn(20, 32) * 0.3)
    for reverse in (False, True):
        with torch.no_grad():
            expected, expected_state = get_kernel("exact").run_layer(layer, inputs, lengths, state, reverse)
            actual, (hidden, memory) = get_kernel("bf16").run_layer(layer, inputs, lengths, state, reverse)
        assert actual.dtype == hidden.dtype == memory.dtype == torch.float32
        assert (actual - expected).abs().max() < 1e-2 * expected.abs().max()
        assert (hidden - expected_state[0]).abs().max() < 1e-2 * expected_state[0].abs().max()
        assert (memory - expected_state[1]).abs().max() < 1e-2 * expected_state[1].abs().max()


def test_the_input_products_come_a_chunk_of_steps_at_a_time_for_the_rows_it_reads(monkeypatch):
    monkeypatch.setattr(fused, "CHUNK_STEPS", 4)
    lengths = [10, 9, 5, 4, 4, 1]
    time_major = torch.randn(10, 6, 3, dtype=torch.float64)  # (T, B, D_in)
    weight = torch.randn(7, 3, dtype=torch.float64)
    shapes = []

    def product(x):
        shapes.append(tuple(x.shape))
        return torch.nn.functional.linear(x, weight)

    expected = torch.nn.functional.linear(time_major, weight)  # (T, B, 7)
    for order in (range(10), range(9, -1, -1)):  # forward, backward
        shapes.clear()
        step_inputs = fused.chunked_inputs(product, time_major, lengths)
        for index in order:
            rows = sum(n > index for n in lengths)
            torch.testing.assert_close(step_inputs(index, rows), expected[index, :rows], rtol=0, atol=1e-12)
        # steps 0-3 read all 6 rows, 4-7 the 3 rows longer than 4, 8-9 the 2 longer than 8
        assert sorted(shapes) == sorted([(4, 6, 3), (4, 3, 3), (2, 2, 3)])


def test_across_chunks_it_still_equals_the_exact_kernel_up_to_bfloat16_rounding(native, monkeypatch):
    monkeypatch.setattr(fused, "CHUNK_STEPS", 3)
    stack, inputs, lengths = stack_and_batch(rows=40)  # up to 11 steps: 4 chunks
    with torch.no_grad():
        exact = run(stack, "exact", inputs, lengths, reverse=True)
        half = run(stack, "bf16", inputs, lengths, reverse=True)
    for actual, expected in zip(half.layers, exact.layers):
        assert (actual - expected).abs().max() < 1e-2 * expected.abs().max()


def test_bfloat16_hardware_is_read_from_the_cpu_flags(monkeypatch):
    detect = bf16.native_bf16.__wrapped__  # not the cached answer
    for flags, expected in (({"amx_bf16": True}, True), ({"avx512_bf16": True, "amx_bf16": False}, True),
                            ({"avx512_f": True}, False), ({}, False)):  # fmt: skip
        monkeypatch.setattr(bf16, "_cpu_flags", lambda flags=flags: flags)
        assert detect("cpu") is expected
    assert detect("meta") is False
    monkeypatch.undo()
    # Without torch's cpuinfo reader, Linux's /proc/cpuinfo is read (on Linux it names "fpu").
    monkeypatch.delattr(torch._C._cpu, "_get_cpu_capability", raising=False)
    flags = bf16._cpu_flags()
    assert isinstance(flags, dict)
    assert not Path("/proc/cpuinfo").exists() or flags.get("fpu") is True


def test_one_sentence_at_a_time_in_bfloat16_only_on_the_original_shape(monkeypatch):
    """The published shapes' layers (input 512 / 256 / 128 wide): the ORIGINAL shape's few-row
    products run in bfloat16 (1.8x the exact kernel at batch 1), the medium and small shapes'
    stay with the exact kernel (its TorchScript loop was as fast or faster there)."""
    monkeypatch.setattr(bf16, "packs_bf16", lambda: True)
    shapes = {"original": (4096, 512), "medium": (2048, 256), "small": (1024, 128)}
    for name, (cell, projection) in shapes.items():
        layer = LstmLayer(projection, LSTMConfig(num_layers=1, cell_size=cell, projection_dim=projection))
        assert bf16.few_rows_in_bf16(layer) == (name == "original"), name
