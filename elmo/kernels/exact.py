"""The default kernel: the reference order of operations, every bit kept, run fast on CPU.

Per layer (``exact_step``): prepacked weights for the per-step products (where some step has
the rows they are packed for), the input projections of positions with >= 16 real rows from
one GEMM (on wide inputs without a gradient, of their distinct rows alone) and those of the
other positions before the loop, reading the weight block by block (batch 1: every position),
and, beside the other stack, steps of >= 16 rows, and of the fewer row counts whose products
keep their bits there, on one torch thread; with fewer than 16 rows
(one sentence at a time), the steps as one TorchScript loop (``elmo.kernels.scripted``). Per biLM
(``run_directions``): for inference on a CPU with two or more threads, the backward stack runs
on a side thread while the forward one runs (torch releases the GIL in its ops), since the many
small per-step products of either stack leave cores idle that the other can use. Each of these
keeps the bits of the reference loop on the machine at hand: ``elmo.kernels.cpu`` says why and
probes it; elsewhere (a GPU) it falls back to the per-step products.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn

from elmo.kernels.base import RecurrenceKernel
from elmo.kernels.bptt import run_with_bptt
from elmo.kernels.cpu import (
    HOIST_MIN_ROWS,
    PACK_ROWS,
    caller_threads,
    few_row_inputs,
    has_rows,
    hoisted_inputs,
    on_one_thread,
    on_side_thread,
    rows_alone,
    rows_are_independent,
    step_linear,
    thread_count,
    threads_for,
)
from elmo.kernels.lanes import rows_alone_layer, rows_alone_requested
from elmo.kernels.scripted import has_plain_cell, optional_float, scripted_loop
from elmo.modules.lstm import LayerStep, LstmLayer, active_rows

T = TypeVar("T")


class ExactKernel(RecurrenceKernel):
    """Bit-identical to the reference loop on CPU; the default."""

    name = "exact"
    exact = True
    rows_alone = True

    def run_layer(self, layer, inputs, lengths, state, reverse):
        if runs_rows_alone(layer, inputs, lengths, state):
            return self.rows_alone_layer(layer, inputs, lengths, state, reverse)
        has_steps = bool(lengths) and lengths[0] > 0
        if has_steps and inputs.device.type == "cpu" and needs_gradient(layer, inputs, state):
            with torch.no_grad():  # the products' levers that keep the bits without a gradient
                products = exact_products(layer, inputs, lengths)
            return run_with_bptt(layer, inputs, lengths, state, reverse, products)  # a backward by hand
        if runs_scripted(layer, inputs, lengths, state) and (loop := scripted_loop()) is not None:
            return scripted_layer(layer, inputs, lengths, state, reverse, loop)  # None: no TorchScript
        return layer(inputs, lengths, state, reverse, step=exact_step(layer, inputs, lengths))

    def rows_alone_layer(self, layer, inputs, lengths, state, reverse):
        """``run_layer`` inside ``lanes.rows_alone()``: each row as this kernel computes it alone,
        as lanes where that is the exact kernel's result (``one_row_is_exact``), else row by row."""
        threads = step_placement(layer)[1](1)  # what a step of one row runs on
        lanes = self.one_row_is_exact(layer, inputs)
        return rows_alone_layer(layer, inputs, lengths, state, reverse, threads, self.run_layer, lanes)

    def one_row_is_exact(self, layer: LstmLayer, inputs: torch.Tensor) -> bool:
        """Whether this kernel computes a batch of one row as the exact kernel does, bit for bit
        (then lanes, which compute each row so, may stand in for it)."""
        return True

    def run_directions(
        self, forward: Callable[[], T], backward: Callable[[], T], tokens: torch.Tensor, training: bool
    ) -> tuple[T, T]:
        if not side_by_side(tokens, training):
            return forward(), backward()
        pending = on_side_thread(on_one_thread(backward))
        return on_one_thread(forward)(), pending()


def runs_rows_alone(
    layer: LstmLayer, inputs: torch.Tensor, lengths: list[int], state: tuple[torch.Tensor, ...]
) -> bool:
    """Whether a kernel honouring ``lanes.rows_alone()`` runs this layer's rows as if alone:
    asked for, more than one row, and no gradient (the rows' gradients would not be summed as
    one batch's)."""
    return len(lengths) > 1 and rows_alone_requested() and not needs_gradient(layer, inputs, state)


def needs_gradient(layer: LstmLayer, inputs: torch.Tensor, state: tuple[torch.Tensor, ...]) -> bool:
    """Whether autograd would record the layer: grad mode, and a weight or an input that needs one."""
    tensors = [inputs, *state, *layer.parameters()]
    return torch.is_grad_enabled() and any(tensor.requires_grad for tensor in tensors)


def side_by_side(tokens: torch.Tensor, training: bool) -> bool:
    """Whether the two stacks may run side by side: CPU inference with two or more threads.

    Never with gradients (autograd's graph is built in order) or in training mode (dropout
    masks must be drawn in a fixed order).
    """
    return (
        tokens.device.type == "cpu"
        and not torch.is_grad_enabled()
        and not training
        and torch.get_num_threads() > 1
    )


def exact_step(layer: LstmLayer, inputs: torch.Tensor, lengths: list[int]) -> LayerStep:
    """``layer.reference_step`` with the same bits, computed faster (module docstring).

    Args:
        inputs: (B, T, D_in), rows sorted by decreasing length; lengths: B ints.
    """
    gates, project = exact_products(layer, inputs, lengths)
    return LayerStep(gates, functools.partial(layer.cell, project=project))


def step_placement(layer: LstmLayer) -> tuple[int | None, Callable[[int], int]]:
    """The caller's thread count inside ``one_thread_per_stack`` (``caller_threads``; None
    elsewhere), and the torch threads a step of R rows runs on: one where each of the step's
    products keeps its bits there (``rows_alone``), else the caller's count."""
    caller = caller_threads(layer.cell_size)  # None: keep the thread count as it is
    if caller is None:
        return None, lambda rows: torch.get_num_threads()
    weights = (layer.input_weight, layer.recurrent_weight, layer.projection_weight)
    alone = rows_alone([(weights[0], False), (weights[1], True), (weights[2], False)], caller)
    return caller, lambda rows: threads_for(rows, caller, alone)


def runs_scripted(
    layer: LstmLayer, inputs: torch.Tensor, lengths: list[int], state: tuple[torch.Tensor, ...]
) -> bool:
    """Whether the layer's steps run as one TorchScript loop (``elmo.kernels.scripted``): CPU
    inference with some steps and fewer than HOIST_MIN_ROWS rows, where every product of a step
    is a plain ``linear`` (nothing hoisted or packed) and the Python around them costs as much as
    they do."""
    return (
        bool(lengths)
        and lengths[0] > 0
        and inputs.device.type == "cpu"
        and len(lengths) < HOIST_MIN_ROWS
        and not needs_gradient(layer, inputs, state)
        and has_plain_cell(layer)
    )


def scripted_layer(
    layer: LstmLayer,
    inputs: torch.Tensor,
    lengths: list[int],
    state: tuple[torch.Tensor, torch.Tensor],
    reverse: bool,
    loop: Callable,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """``layer(inputs, lengths, state, reverse, step=exact_step(...))`` with the same bits, its
    steps run by ``loop`` (``scripted_loop()``) in runs of positions on the same thread count.

    Every position's input projection is taken first, each on the thread count of its step, as
    ``exact_products`` takes it (from ``few_row_inputs`` where it can, else by its own product).
    """
    _, placement = step_placement(layer)
    steps = inputs.shape[1]
    few = few_row_inputs(inputs, lengths, layer.input_weight, 0, placement)
    step_inputs = []  # position t's (R_t, 4H)
    for index in range(steps):
        rows = active_rows(lengths, index)
        if index not in few:
            with thread_count(placement(rows)):
                few[index] = nn.functional.linear(inputs[:rows, index], layer.input_weight)
        step_inputs.append(few[index])
    bias = layer.gate_bias()  # (4H,)
    clips = optional_float(layer.cell_clip), optional_float(layer.projection_clip)
    hidden, memory = state
    outputs: list[torch.Tensor] = [inputs] * steps  # each replaced below
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    weights = layer.recurrent_weight, bias, layer.projection_weight
    runs = itertools.groupby(order, key=lambda index: placement(active_rows(lengths, index)))
    for threads, run in runs:  # rows only fall (reversed: only rise): a few runs at most
        positions = list(run)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        with torch.jit.optimized_execution(False):  # the graph as written: nothing fused
            produced, hidden, memory = loop(step_inputs, positions, hidden, memory, *weights, *clips)
        for index, output in zip(positions, produced):
            outputs[index] = output  # (B, D)
    return torch.stack(outputs, dim=1), (hidden, memory)  # (B, T, D)


def exact_products(
    layer: LstmLayer, inputs: torch.Tensor, lengths: list[int]
) -> tuple[Callable[[int, int, torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]:
    """The two product functions of ``exact_step``: ``LayerStep.gates`` and the projection's
    ``project`` ((R, H) -> (R, D)), which ``layer.cell`` takes (``elmo.kernels.bptt`` runs its
    own copy of the cell with them: ``bptt.Products``)."""
    bias = layer.gate_bias()  # (4H,)
    weights = (layer.input_weight, layer.recurrent_weight, layer.projection_weight)
    hoist = rows_are_independent(layer.input_weight)
    pack = has_rows(lengths, PACK_ROWS)  # only then does a packed weight serve a product
    input_linear = step_linear(layer.input_weight, pack=pack and not hoist)
    recurrent_linear, project = (step_linear(weight, pack=pack) for weight in weights[1:])
    caller, placement = step_placement(layer)
    # position t's (R, 4H), for the hoisted positions
    hoisted = hoisted_inputs(inputs, lengths, layer.input_weight) if hoist else ()
    few = few_row_inputs(inputs, lengths, layer.input_weight, len(hoisted), placement)
    threads = placement(inputs.shape[0])
    if caller is not None:
        torch.set_num_threads(threads)

    def gates(index: int, rows: int, hidden: torch.Tensor) -> torch.Tensor:
        nonlocal threads  # what this thread runs on now: no query per step
        if caller is not None and threads != (wanted := placement(rows)):
            threads = wanted  # rows only fall (reversed: only rise): this happens a few times
            torch.set_num_threads(threads)
        if index < len(hoisted):  # hoisted: the same bits as the step's own GEMM
            step_input = hoisted[index]  # (R, 4H)
        elif index in few:  # taken before the loop: the same bits as the step's own product
            step_input = few[index]  # (R, 4H)
        else:
            step_input = input_linear(inputs[:rows, index])  # (R, 4H)
        return step_input + recurrent_linear(hidden, bias)

    return gates, project
