"""A layer's steps as one TorchScript loop: the exact kernel's lever for steps of few rows.

One sentence at a time, a step's two products read its recurrent and projection weights (2.5
MiB on the published small shape) in about 100 us, and the twenty-odd torch calls around them,
each made from Python, cost more than half as much again (``scripts/bench_scripted_loop.py``,
docs/benchmarks.md). The two stacks of a biLM run side by side on threads of
their own (``ExactKernel.run_directions``), but each of those calls holds Python's global
interpreter lock while torch parses its arguments, so at batch 1 the two stacks often took
turns: side by side, each step took 1.5x as long as with one stack alone.

``run_steps`` is ``LstmLayer.forward``'s loop with ``LstmLayer.cell`` written out, for steps
whose input projections are taken before it. Compiled by TorchScript, it makes the same aten
calls on the same tensors in the same order, so every bit is kept (``tests/kernels``), but
without Python between them and without holding the lock, so the two stacks do run at once.

TorchScript is deprecated in torch 2.x and complete in the versions this project admits
(pyproject: torch < 2.14). Where it cannot compile the loop (a torch without it, a package
installed without its ``.py`` sources), ``scripted_loop`` warns once and returns None, and the
exact kernel runs the loop from Python as before.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable
from typing import List, Optional, Tuple  # noqa: UP035 (TorchScript reads these annotations)

import torch
from torch import nn

from elmo.modules.lstm import LstmLayer


def run_steps(
    step_inputs: List[torch.Tensor],  # noqa: UP006
    positions: List[int],  # noqa: UP006
    hidden: torch.Tensor,
    memory: torch.Tensor,
    recurrent_weight: torch.Tensor,
    bias: torch.Tensor,
    projection_weight: torch.Tensor,
    cell_clip: Optional[float],  # noqa: UP045
    projection_clip: Optional[float],  # noqa: UP045
) -> Tuple[List[torch.Tensor], torch.Tensor, torch.Tensor]:  # noqa: UP006
    """The steps at ``positions``, in that order: ``LstmLayer.forward``'s loop, call for call.

    Args:
        step_inputs: position t's input projection (R_t, 4H), for every position; R_t rows are
            still inside their sentence (rows sorted by decreasing length).
        positions: the positions to run, in the loop's order.
        hidden: (B, D) and memory: (B, H), the state before the first of them.
        recurrent_weight: (4H, D); bias: (4H,), the gate bias; projection_weight: (D, H).
        cell_clip, projection_clip: the layer's clips (None: no clip).

    Returns:
        each position's output (B, D), zero for rows past their sentence, and the state after.
    """
    outputs: List[torch.Tensor] = []  # noqa: UP006
    for position in positions:
        step_input = step_inputs[position]  # (R, 4H)
        rows = step_input.shape[0]
        gates = step_input + nn.functional.linear(hidden[:rows], recurrent_weight, bias)  # (R, 4H)
        squashed, new_memory = cell_memory(gates, memory[:rows], cell_clip)  # (R, H), (R, H)
        new_hidden = nn.functional.linear(squashed, projection_weight)
        if projection_clip is not None:
            new_hidden = new_hidden.clamp(-projection_clip, projection_clip)  # (R, D)
        hidden, memory = carry_rows(outputs, new_hidden, new_memory, hidden, memory)
    return outputs, hidden, memory


def cell_memory(
    gates: torch.Tensor, memory: torch.Tensor, cell_clip: Optional[float]  # noqa: UP045
) -> Tuple[torch.Tensor, torch.Tensor]:  # noqa: UP006
    """``LstmLayer.cell`` up to its projection, call for call: gates (R, 4H), memory (R, H) ->
    the projection's input (R, H) and the new memory (R, H)."""
    input_gate, forget_gate, candidate, output_gate = gates.chunk(4, dim=-1)  # 4 x (R, H)
    new_memory = (
        torch.sigmoid(input_gate) * torch.tanh(candidate) + torch.sigmoid(forget_gate) * memory
    )
    if cell_clip is not None:
        new_memory = new_memory.clamp(-cell_clip, cell_clip)
    return torch.sigmoid(output_gate) * torch.tanh(new_memory), new_memory


def carry_rows(
    outputs: List[torch.Tensor],  # noqa: UP006
    new_hidden: torch.Tensor,
    new_memory: torch.Tensor,
    hidden: torch.Tensor,
    memory: torch.Tensor,
) -> Tuple[torch.Tensor, torch.Tensor]:  # noqa: UP006
    """``lstm.carry``: append the step's output (B, D), zero for rows past their sentence, to
    ``outputs``; -> the state (B, D), (B, H) with the step's R rows updated."""
    batch, rows = hidden.shape[0], new_hidden.shape[0]
    if rows == batch:
        outputs.append(new_hidden)
        return new_hidden, new_memory
    padding = new_hidden.new_zeros([batch - rows, new_hidden.shape[1]])
    outputs.append(torch.cat([new_hidden, padding]))
    return torch.cat([new_hidden, hidden[rows:]]), torch.cat([new_memory, memory[rows:]])


_COMPILING = threading.Lock()  # the two stacks reach their first layer at once


def scripted_loop() -> Callable | None:
    """``run_steps`` compiled by TorchScript (once per process); None, with a warning, where
    that fails."""
    fallback = "one sentence at a time runs the loop from Python"
    return compiled(run_steps, "the recurrence's loop", fallback)


def compiled(function: Callable, what: str, fallback: str) -> Callable | None:
    """``function`` compiled by TorchScript, once per process (under a lock); where that fails,
    None, with a warning naming ``what`` and what runs instead (``fallback``)."""
    with _COMPILING:
        return _script(function, what, fallback)


@functools.cache
def _script(function: Callable, what: str, fallback: str) -> Callable | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script's, in torch 2.x
            return torch.jit.script(function)
    except Exception as error:  # noqa: BLE001 (any failure: the Python loop is the fallback)
        warnings.warn(
            f"could not compile {what} with TorchScript ({type(error).__name__}: {error}); "
            f"{fallback}, slower but with the same bits",
            RuntimeWarning,
            stacklevel=4,
        )
        return None


def has_plain_cell(layer: LstmLayer) -> bool:
    """Whether ``layer`` computes its steps as ``LstmLayer`` does (``run_steps`` writes that out)."""
    return all(
        getattr(getattr(layer, name), "__func__", None) is getattr(LstmLayer, name)
        for name in ("cell", "clip_memory", "clip_output", "gate_bias", "forward")
    )  # neither a subclass's method nor one set on the instance


def optional_float(value: float | None) -> float | None:
    """A clip as TorchScript's ``Optional[float]`` takes it (an int clip clamps the same)."""
    return None if value is None else float(value)
