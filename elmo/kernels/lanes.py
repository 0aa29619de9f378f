"""Sentences side by side, each computed as if alone: one sentence at a time, faster, same bits.

One sentence at a time (``elmo embed --batch-size 1``, ``embed_sentences`` at batch size 1) a
step's products are one row each, bound by reading their weights, and the calls around them
cost as much again. Run as "lanes", the rows of a batch of sentences share each step: every
product of a row is one item of a ``bmm`` (``cpu.blocked_products``: each item a one-row
product of its own, which on CPU keeps the bits of ``linear`` on that row alone, probed), the
gate bias is added after (probed as well), and the cell's element-wise operations cover every
lane at once (each element computed as it is alone: see ``lanes_apply``). So each sentence's
vectors are bit for bit those of its run alone, and the weights are read once per step for all
the lanes (docs/benchmarks.md).

``rows_alone()`` asks for it: inside it, the exact kernel runs each layer's rows as if alone
(lanes where ``lanes_apply``, else each row by itself). The request is a context variable, so
it reaches the backward stack on its side thread (``cpu.on_side_thread`` copies the context).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import List, Optional, Tuple  # noqa: UP035 (TorchScript reads these annotations)

import torch
from torch import nn

from elmo.kernels.cpu import (
    block_products,
    blocked_products,
    few_row_products_exact,
    thread_count,
    weight_blocks,
)
from elmo.kernels.probe_store import remembered
from elmo.kernels.scripted import carry_rows, cell_memory, compiled, has_plain_cell, optional_float
from elmo.modules.lstm import LstmLayer, active_rows

LANE_CELL_MULTIPLE = 64  # the cell size a multiple of this: each row's elements vectorize as alone

_ROWS_ALONE: contextvars.ContextVar[bool] = contextvars.ContextVar("elmo_rows_alone", default=False)


@contextlib.contextmanager
def rows_alone() -> Iterator[None]:
    """Within this, the exact kernel computes each row of a batch as if it were alone."""
    token = _ROWS_ALONE.set(True)
    try:
        yield
    finally:
        _ROWS_ALONE.reset(token)


def rows_alone_requested() -> bool:
    return _ROWS_ALONE.get()


def lanes_apply(layer: LstmLayer, inputs: torch.Tensor, threads: int) -> bool:
    """Whether lanes keep each row's bits for ``layer`` on ``threads`` torch threads.

    * CPU, the layer's own cell (``LstmLayer``'s, which the lane loop writes out);
    * one thread: an element-wise operation on several threads may split a row between them;
    * a cell size that is a multiple of ``LANE_CELL_MULTIPLE``: the non-linearities
      (sigmoid, tanh) then vectorize each row's elements as they do alone, never a row's
      elements in a scalar tail (where their results may differ);
    * each product as one-row ``bmm`` items keeps ``linear``'s bits on one row
      (``few_row_products_exact``), and the gate bias added after keeps those of ``linear``
      with the bias (``bias_after_keeps_bits``).
    """
    weights = (layer.input_weight, layer.recurrent_weight, layer.projection_weight)
    return (
        inputs.device.type == "cpu"
        and threads == 1
        and has_plain_cell(layer)
        and layer.cell_size % LANE_CELL_MULTIPLE == 0
        and all(few_row_products_exact(weight, 1) for weight in weights)
        and bias_after_keeps_bits(layer.recurrent_weight)
    )


def bias_after_keeps_bits(weight: torch.Tensor) -> bool:
    """Whether ``linear(x, W) + b`` has the bits of ``linear(x, W, b)`` for one row ``x``, for this
    weight shape, dtype and thread count (CPU; checked on random data)."""
    key = (tuple(weight.shape), weight.dtype, torch.get_num_threads())
    return remembered("bias_after_keeps_bits", key, lambda: _bias_after_probe(weight), bool)


def _bias_after_probe(weight: torch.Tensor) -> bool:
    generator = torch.Generator().manual_seed(5)
    out_dim, in_dim = weight.shape
    x = torch.randn(3, 1, in_dim, generator=generator, dtype=weight.dtype)
    probe = torch.randn(out_dim, in_dim, generator=generator, dtype=weight.dtype) * in_dim**-0.5
    bias = torch.randn(out_dim, generator=generator, dtype=weight.dtype)
    with torch.no_grad():
        alone = torch.stack([nn.functional.linear(row, probe, bias) for row in x])  # (3, 1, out)
        return torch.equal(blocked_products(x, probe) + bias, alone)


def lane_products(x: torch.Tensor, blocks: List[torch.Tensor]) -> torch.Tensor:  # noqa: UP006
    """``cpu.blocked_products`` of one row per item: x (R, in) -> (R, out), each row's product
    its own ``bmm`` item; ``blocks``: ``cpu.weight_blocks`` of the (out, in) weight."""
    return block_products(x.unsqueeze(1), blocks).squeeze(1)  # (R, 1, in) -> (R, out)


def run_lane_steps(
    step_inputs: List[torch.Tensor],  # noqa: UP006
    hidden: torch.Tensor,
    memory: torch.Tensor,
    recurrent_blocks: List[torch.Tensor],  # noqa: UP006
    bias: torch.Tensor,
    projection_blocks: List[torch.Tensor],  # noqa: UP006
    cell_clip: Optional[float],  # noqa: UP045
    projection_clip: Optional[float],  # noqa: UP045
) -> Tuple[List[torch.Tensor], torch.Tensor, torch.Tensor]:  # noqa: UP006
    """``scripted.run_steps`` with each row's products one-row ``bmm`` items (module docstring),
    its cell and carry the same functions (``scripted.cell_memory``, ``scripted.carry_rows``).

    Args:
        step_inputs: the input projections (R_t, 4H) of the steps to run, in the loop's order,
            each row's alone; R_t rows are still inside their sentence.
        hidden: (B, D) and memory: (B, H), the state before the first of them.
        recurrent_blocks: ``weight_blocks`` of the (4H, D) recurrent weight; bias: (4H,), the
            gate bias; projection_blocks: those of the (D, H) projection weight.
        cell_clip, projection_clip: the layer's clips (None: no clip).

    Returns:
        each step's output (B, D), zero for rows past their sentence, and the state after.
    """
    outputs: List[torch.Tensor] = []  # noqa: UP006
    for step_input in step_inputs:
        rows = step_input.shape[0]
        gates = step_input + (lane_products(hidden[:rows], recurrent_blocks) + bias)  # (R, 4H)
        squashed, new_memory = cell_memory(gates, memory[:rows], cell_clip)  # (R, H), (R, H)
        new_hidden = lane_products(squashed, projection_blocks)  # (R, D)
        if projection_clip is not None:
            new_hidden = new_hidden.clamp(-projection_clip, projection_clip)
        hidden, memory = carry_rows(outputs, new_hidden, new_memory, hidden, memory)
    return outputs, hidden, memory


def lane_loop() -> Callable:
    """``run_lane_steps`` compiled by TorchScript (once per process); where that fails, warned
    once, the Python function itself (the same calls: the same bits, slower)."""
    fallback = "sentences side by side run the loop from Python"
    loop = compiled(run_lane_steps, "the lanes' loop", fallback)
    return loop if loop is not None else run_lane_steps


def lanes_layer(
    layer: LstmLayer,
    inputs: torch.Tensor,
    lengths: list[int],
    state: tuple[torch.Tensor, torch.Tensor],
    reverse: bool,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """``layer`` over each row as if alone, the rows as lanes (``lanes_apply`` must hold).

    The steps run in chunks of about ``CHUNK_ROWS`` real rows: each chunk's input projections
    (one-row ``bmm`` items too) are taken just before its steps, so that only one chunk's are held
    (the ORIGINAL shape's are 64 KiB a row).

    Args:
        inputs: (B, T, D_in), rows sorted by decreasing length; lengths: B ints.
        state: (hidden (B, D), memory (B, H)).

    Returns:
        outputs (B, T, D), zero at padding, and each row's final (hidden, memory).
    """
    steps = inputs.shape[1]
    if steps == 0:
        return inputs.new_zeros(inputs.shape[0], 0, layer.projection_weight.shape[0]), state
    hidden, memory = state
    order = list(range(steps - 1, -1, -1) if reverse else range(steps))
    clips = optional_float(layer.cell_clip), optional_float(layer.projection_clip)
    blocks = weight_blocks(layer.recurrent_weight), weight_blocks(layer.projection_weight)
    bias = layer.gate_bias()  # (4H,)
    loop = lane_loop()
    outputs: list[torch.Tensor] = [inputs] * steps  # each replaced below
    for chunk in _chunks(order, lengths):
        counts = [active_rows(lengths, index) for index in chunk]  # R_t
        real = torch.cat([inputs[:rows, index] for index, rows in zip(chunk, counts)])  # (N, D_in)
        projected = blocked_products(real.unsqueeze(1), layer.input_weight).squeeze(1)  # (N, 4H)
        with torch.jit.optimized_execution(False):  # the graph as written: nothing fused
            produced, hidden, memory = loop(
                list(projected.split(counts)), hidden, memory, blocks[0], bias, blocks[1], *clips
            )
        for index, output in zip(chunk, produced):
            outputs[index] = output  # (B, D)
    return torch.stack(outputs, dim=1), (hidden, memory)  # (B, T, D)


CHUNK_ROWS = 256  # real rows whose input projections are taken at once (lanes_layer)


def _chunks(order: list[int], lengths: list[int]) -> Iterator[list[int]]:
    """The positions of ``order`` in runs of about ``CHUNK_ROWS`` real rows (at least one)."""
    chunk: list[int] = []
    rows = 0
    for index in order:
        chunk.append(index)
        rows += active_rows(lengths, index)
        if rows >= CHUNK_ROWS:
            yield chunk
            chunk, rows = [], 0
    if chunk:
        yield chunk


def rows_alone_layer(
    layer: LstmLayer,
    inputs: torch.Tensor,
    lengths: list[int],
    state: tuple[torch.Tensor, torch.Tensor],
    reverse: bool,
    threads: int,
    run_alone: Callable,
    lanes: bool = True,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """``layer`` over each row as if alone: as lanes on ``threads`` threads where they keep the
    bits (``lanes_apply``) and ``lanes`` allows them (``run_alone`` of one row computes what the
    exact kernel does), else one row at a time through ``run_alone`` (arguments as
    ``RecurrenceKernel.run_layer``'s)."""
    with thread_count(threads):
        if lanes and lanes_apply(layer, inputs, threads):
            return lanes_layer(layer, inputs, lengths, state, reverse)
    hidden, memory = state
    outputs, hiddens, memories = [], [], []
    for row, length in enumerate(lengths):
        output, (last_hidden, last_memory) = run_alone(
            layer,
            inputs[row : row + 1, :length],
            [length],
            (hidden[row : row + 1], memory[row : row + 1]),
            reverse,
        )  # (1, n, D)
        outputs.append(nn.functional.pad(output, (0, 0, 0, inputs.shape[1] - length)))
        hiddens.append(last_hidden)
        memories.append(last_memory)
    return torch.cat(outputs), (torch.cat(hiddens), torch.cat(memories))
