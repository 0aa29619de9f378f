"""Backpropagation through time by hand: the exact kernel's LSTM layer when a gradient is needed.

Under autograd the reference loop records about twenty nodes per time step (the gate products,
chunk, three sigmoids, two tanhs, the products, the clips, the carry), and its backward pays
autograd's bookkeeping for each of them, zero-fills a gradient per node and accumulates each
weight's gradient step by step, in 64-row products. ``run_with_bptt`` runs the same forward
under ``no_grad``, keeping what the backward needs, and its backward walks the steps in reverse
with a few fused operations each (``sigmoid_backward``/``tanh_backward``), then takes each
weight's gradient as one GEMM over all the steps' rows.

Same forward bits as the reference loop (the exact kernel's products and the reference cell's
operations, in the same order: ``LstmLayer.cell``); the gradients are the reference loop's up to
float rounding (their sums run in another order), as the tests check, and a float64 gradcheck
checks the maths. Not twice differentiable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch.autograd.function import once_differentiable

from elmo.modules.lstm import LstmLayer, active_rows, carry

aten = torch.ops.aten

# A step's gates (t, R, hidden (R, D)) -> (R, 4H), and the projection (R, H) -> (R, D).
Products = tuple[
    Callable[[int, int, torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]
]


def run_with_bptt(
    layer: LstmLayer,
    inputs: torch.Tensor,
    lengths: list[int],
    state: tuple[torch.Tensor, torch.Tensor],
    reverse: bool,
    products: Products,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """``layer(inputs, lengths, state, reverse)`` with the given products and the backward of
    this module: arguments and results as ``LstmLayer.forward``.

    Args:
        products: ``(gates, project)``: ``LayerStep.gates`` and the projection's product
            ((R, H) -> (R, D)), made without a gradient (``elmo.kernels.exact.exact_products``).
    """
    hidden, memory = state
    outputs, final_hidden, final_memory = _LayerThroughTime.apply(
        inputs, hidden, memory, layer.input_weight, layer.recurrent_weight, layer.bias,
        layer.projection_weight, layer, lengths, reverse, products,
    )  # fmt: skip
    return outputs, (final_hidden, final_memory)


class _Saved(NamedTuple):
    """What one step keeps for the backward (R = the step's rows)."""

    rows: int  # R
    hidden: torch.Tensor  # (R, D) the step's input state
    memory: torch.Tensor  # (R, H)
    gates: tuple[torch.Tensor, ...]  # i, f, g, o: 4 x (R, H), after their sigmoid or tanh
    squashed: torch.Tensor  # (R, H) tanh of the clipped memory
    output: torch.Tensor  # (R, H) o * tanh(memory), the projection's input
    memory_inside: torch.Tensor | None  # (R, H) 1.0 where the memory is within its clip, else 0.0
    hidden_inside: torch.Tensor | None  # (R, D) the same for the projected output


class _LayerThroughTime(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs, hidden, memory, input_weight, recurrent_weight, bias, projection_weight,
                layer: LstmLayer, lengths: list[int], reverse: bool, products: Products):  # fmt: skip
        gates_of, project = products
        steps = inputs.shape[1]
        outputs: list[torch.Tensor | None] = [None] * steps
        saved: list[_Saved | None] = [None] * steps
        for index in range(steps - 1, -1, -1) if reverse else range(steps):
            rows = active_rows(lengths, index)
            before_hidden, before_memory = hidden[:rows], memory[:rows]
            gates = gates_of(index, rows, before_hidden)  # (R, 4H)
            # LstmLayer.cell's operations, in its order (the same bits), keeping what they make.
            input_gate, forget_gate, candidate, output_gate = gates.chunk(4, dim=-1)  # 4 x (R, H)
            i, g, f = torch.sigmoid(input_gate), torch.tanh(candidate), torch.sigmoid(forget_gate)
            raw_memory = i * g + f * before_memory  # (R, H)
            new_memory = layer.clip_memory(raw_memory)
            o = torch.sigmoid(output_gate)
            squashed = torch.tanh(new_memory)
            output = o * squashed  # (R, H)
            projected = project(output)  # (R, D)
            new_hidden = layer.clip_output(projected)
            saved[index] = _Saved(
                rows, before_hidden, before_memory, (i, f, g, o), squashed, output,
                _inside(new_memory, raw_memory), _inside(new_hidden, projected),
            )  # fmt: skip
            outputs[index], hidden, memory = carry(new_hidden, new_memory, hidden, memory)
        ctx.saved, ctx.reverse = saved, reverse
        ctx.save_for_backward(inputs, input_weight, recurrent_weight, projection_weight)
        return torch.stack(outputs, dim=1), hidden, memory  # (B, T, D), (B, D), (B, H)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_outputs, grad_hidden, grad_memory):
        inputs, input_weight, recurrent_weight, projection_weight = ctx.saved_tensors
        saved: list[_Saved] = ctx.saved
        batch, steps = inputs.shape[:2]
        hidden_size, cell = projection_weight.shape
        # The gradient reaching each row's state, (B, D) and (B, H): a row past its sentence at
        # a step carries its own through the step unchanged.
        d_hidden = inputs.new_zeros(batch, hidden_size) if grad_hidden is None else grad_hidden
        d_memory = inputs.new_zeros(batch, cell) if grad_memory is None else grad_memory
        # Every step's gradients, time-major (position t's R rows from offsets[t]), so that each
        # weight's gradient is one GEMM.
        offsets = _offsets(saved)
        d_gates = inputs.new_empty(offsets[-1], 4 * cell)  # (N, 4H), gates i, f, g, o
        d_projected = inputs.new_empty(offsets[-1], hidden_size)  # (N, D)
        for index in range(steps) if ctx.reverse else range(steps - 1, -1, -1):
            step = saved[index]
            rows, (i, f, g, o) = step.rows, step.gates
            if rows == 0:
                continue
            dh = d_projected[offsets[index] : offsets[index] + rows]  # (R, D)
            if grad_outputs is None:
                dh.copy_(d_hidden[:rows])
            else:
                torch.add(d_hidden[:rows], grad_outputs[:rows, index], out=dh)
            if step.hidden_inside is not None:
                dh.mul_(step.hidden_inside)
            d_output = dh.mm(projection_weight)  # (R, H)
            dm = aten.tanh_backward(d_output * o, step.squashed).add_(d_memory[:rows])  # (R, H)
            if step.memory_inside is not None:
                dm.mul_(step.memory_inside)
            da = d_gates[offsets[index] : offsets[index] + rows]  # (R, 4H)
            aten.sigmoid_backward.grad_input(dm * g, i, grad_input=da[:, :cell])
            aten.sigmoid_backward.grad_input(dm * step.memory, f, grad_input=da[:, cell : 2 * cell])
            aten.tanh_backward.grad_input(dm * i, g, grad_input=da[:, 2 * cell : 3 * cell])
            d_out_gate = d_output * step.squashed
            aten.sigmoid_backward.grad_input(d_out_gate, o, grad_input=da[:, 3 * cell :])
            d_hidden = _replace_rows(d_hidden, da.mm(recurrent_weight))  # (B, D)
            d_memory = _replace_rows(d_memory, dm * f)  # (B, H)
        ran = _time_major_mask(saved, batch, inputs.device)  # (T, B)
        d_inputs = inputs.new_zeros(steps, batch, inputs.shape[2])  # (T, B, D_in), zero at padding
        d_inputs[ran] = d_gates.mm(input_weight)
        return (
            d_inputs.transpose(0, 1),
            d_hidden,
            d_memory,
            d_gates.t().mm(inputs.transpose(0, 1)[ran]),  # (4H, D_in)
            d_gates.t().mm(torch.cat([step.hidden for step in saved])),  # (4H, D)
            d_gates.sum(0),  # (4H,)
            d_projected.t().mm(torch.cat([step.output for step in saved])),  # (D, H)
            None, None, None, None,
        )  # fmt: skip


def _offsets(saved: list[_Saved]) -> list[int]:
    """Where each position's rows start in the time-major buffers; the last item is their total."""
    offsets = [0]
    for step in saved:
        offsets.append(offsets[-1] + step.rows)
    return offsets


def _time_major_mask(saved: list[_Saved], batch: int, device: torch.device) -> torch.Tensor:
    """(T, B) bool: True at the rows each position ran (its first R), in time-major order."""
    rows = torch.tensor([step.rows for step in saved], device=device)  # (T,)
    return torch.arange(batch, device=device) < rows[:, None]


def _inside(clipped: torch.Tensor, values: torch.Tensor) -> torch.Tensor | None:
    """1.0 where the clip let ``values`` through, 0.0 where it cut them: clamp's gradient rule
    (bounds included, as ``clipped == values`` there); None without a clip. A float32 result,
    as comparisons written to bool tensors run several times slower on CPU."""
    if clipped is values:
        return None
    return torch.eq(clipped, values, out=torch.empty_like(values))


def _replace_rows(full: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """``full`` (B, .) with its first R rows replaced by ``first`` (R, .)."""
    if len(first) == len(full):
        return first
    return torch.cat([first, full[len(first) :]])
