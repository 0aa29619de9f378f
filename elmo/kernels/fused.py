"""A kernel equal to the reference up to float rounding, with less work per step.

* The input projections of all time steps are one GEMM, with the bias folded in.
* tanh is computed as ``2 * sigmoid(2x) - 1``, and the candidate's rows of the weights are
  doubled (exact: a power of two) so that one sigmoid covers all four gates. On CPU torch's tanh
  is several times slower than its sigmoid.
* The per-step products use prepacked weights when no gradient is needed, and beside the other
  stack (inference, ``ExactKernel.run_directions``) every step runs on one torch thread.

Not bit for bit: on trained weights the difference stays near 1e-6, but chaotic weights such as
the elmo-random-mid fixture drift (README, Exactness). Opt-in.
"""

from __future__ import annotations

import torch
from torch import nn

from elmo.kernels.cpu import beside_another_stack, step_linear
from elmo.kernels.exact import ExactKernel
from elmo.modules.lstm import LayerStep, LstmLayer


class FusedKernel(ExactKernel):
    """Fewer, larger products and one sigmoid per step; equal up to rounding."""

    name = "fused"
    exact = False

    def run_layer(self, layer, inputs, lengths, state, reverse):
        return layer(inputs, lengths, state, reverse, step=fused_step(layer, inputs))


def fused_step(layer: LstmLayer, inputs: torch.Tensor) -> LayerStep:
    """The step of the fused recurrence (module docstring); inputs (B, T, D_in)."""
    if beside_another_stack():  # one torch thread per stack: the bits may change here anyway
        torch.set_num_threads(1)
    cell = layer.cell_size
    scale = torch.ones(4 * cell, 1, dtype=inputs.dtype, device=inputs.device)  # (4H, 1)
    scale[2 * cell : 3 * cell] = 2.0  # the candidate's pre-activation, doubled
    bias = layer.gate_bias() * scale[:, 0]  # (4H,)
    time_major = inputs.transpose(0, 1).contiguous()  # (T, B, D_in): contiguous steps
    projected = nn.functional.linear(time_major, layer.input_weight * scale, bias)  # (T, B, 4H)
    steps = projected.unbind(0)  # T x (B, 4H); one backward for all, not a zero-filled (T, B, 4H) each
    recurrent = step_linear(layer.recurrent_weight * scale)
    project = step_linear(layer.projection_weight)

    def gates(index: int, rows: int, hidden: torch.Tensor) -> torch.Tensor:
        return steps[index][:rows] + recurrent(hidden)  # (R, 4H)

    def fused_cell(gates: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        activations = torch.sigmoid(gates)  # (R, 4H), the candidate's doubled
        input_gate, forget_gate, candidate, output_gate = activations.chunk(4, dim=-1)  # 4 x (R, H)
        memory = layer.clip_memory(torch.addcmul(forget_gate * memory, input_gate, 2.0 * candidate - 1.0))
        squashed = 2.0 * torch.sigmoid(2.0 * memory) - 1.0  # tanh(memory)
        return layer.clip_output(project(output_gate * squashed)), memory  # (R, D), (R, H)

    return LayerStep(gates, fused_cell)
