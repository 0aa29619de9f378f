"""A kernel equal to the reference up to float rounding, with less work per step.

* The input projections are one GEMM per chunk of 32 steps, over the rows still in their
  sentence at the chunk's first step, with the bias folded in.
* tanh is computed as ``2 * sigmoid(2x) - 1``, and the candidate's rows of the weights are
  doubled (exact: a power of two) so that one sigmoid covers all four gates. On CPU torch's tanh
  is several times slower than its sigmoid.
* The per-step products use prepacked weights when no gradient is needed, and beside the other
  stack (inference, ``ExactKernel.run_directions``) every step runs on one torch thread.

With fewer than 16 rows and no gradient (one sentence at a time), the exact kernel's TorchScript
loop runs instead (``elmo.kernels.scripted``): the fused step from Python was 0.63x its speed
there, and the same step as a TorchScript loop of its own only 1.04x (docs/benchmarks.md). So
inside ``lanes.rows_alone()`` (``ElmoEmbedder`` at batch size 1) its rows run as the exact
kernel's lanes, each as this kernel computes it alone.

Not bit for bit: on trained weights the difference stays near 1e-6, but chaotic weights such as
the elmo-random-mid fixture drift (README, Exactness). Opt-in.

The step takes its three products as functions (``FusedProducts``), so that a kernel with other
products (``elmo.kernels.bf16``) shares the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from elmo.kernels.cpu import beside_another_stack, step_linear
from elmo.kernels.exact import ExactKernel, runs_rows_alone, runs_scripted, scripted_layer
from elmo.kernels.scripted import scripted_loop
from elmo.modules.lstm import LayerStep, LstmLayer, active_rows

CHUNK_STEPS = 32  # the input products are taken this many steps at a time (chunked_inputs)

Product = Callable[[torch.Tensor], torch.Tensor]  # x (..., D_in) -> x W^T (+ b) (..., D_out)
StepInputs = Callable[[int, int], torch.Tensor]  # (index, rows) -> that step's (R, 4H) input products


class FusedKernel(ExactKernel):
    """Fewer, larger products and one sigmoid per step; equal up to rounding."""

    name = "fused"
    exact = False
    rows_alone = True  # asked to, it runs each row as alone: as lanes where it runs the exact loop

    def run_layer(self, layer, inputs, lengths, state, reverse):
        if runs_rows_alone(layer, inputs, lengths, state):
            return self.rows_alone_layer(layer, inputs, lengths, state, reverse)
        if runs_scripted(layer, inputs, lengths, state) and (loop := scripted_loop()) is not None:
            return scripted_layer(layer, inputs, lengths, state, reverse, loop)  # as fast here, exact
        return layer(inputs, lengths, state, reverse, step=fused_step(layer, inputs, lengths))

    def one_row_is_exact(self, layer: LstmLayer, inputs: torch.Tensor) -> bool:
        return scripted_loop() is not None  # one row: the exact kernel's loop (lanes check the rest)


class FusedWeights(NamedTuple):
    """A layer's weights as the fused step reads them: the candidate's rows doubled."""

    input: torch.Tensor  # (4H, D_in)
    bias: torch.Tensor  # (4H,)
    recurrent: torch.Tensor  # (4H, D)
    projection: torch.Tensor  # (D, H), as the layer's


class FusedProducts(NamedTuple):
    """The three products of a fused step."""

    inputs: Product  # (C, R, D_in) -> (C, R, 4H), with the bias (a chunk of steps: chunked_inputs)
    recurrent: Product  # (R, D) -> (R, 4H)
    projection: Product  # (R, H) -> (R, D)


def fused_weights(layer: LstmLayer) -> FusedWeights:
    """``layer``'s weights with the candidate's rows doubled (exact: a power of two)."""
    scale = candidate_scale(layer)  # (4H, 1)
    return FusedWeights(
        layer.input_weight * scale,
        layer.gate_bias() * scale[:, 0],
        layer.recurrent_weight * scale,
        layer.projection_weight,
    )


def candidate_scale(layer: LstmLayer) -> torch.Tensor:
    """(4H, 1): 2 on the candidate's rows of the gate weights, 1 on the others."""
    cell, weight = layer.cell_size, layer.input_weight
    scale = torch.ones(4 * cell, 1, dtype=weight.dtype, device=weight.device)
    scale[2 * cell : 3 * cell] = 2.0  # the candidate's pre-activation, doubled
    return scale


def float_products(layer: LstmLayer) -> FusedProducts:
    """The fused kernel's products: in the layer's dtype, per-step weights packed where possible."""
    weights = fused_weights(layer)
    return FusedProducts(
        lambda x: nn.functional.linear(x, weights.input, weights.bias),
        step_linear(weights.recurrent),
        step_linear(weights.projection),
    )


def chunked_inputs(product: Product, time_major: torch.Tensor, lengths: list[int]) -> StepInputs:
    """The steps' input products, ``CHUNK_STEPS`` steps at a time, of the rows the chunk reads.

    One product for all T x B positions would hold a (T, B, 4H) result (for the ORIGINAL shape at
    batch 64 and a 200-token sentence, 800 MiB a direction in float32) and compute the padding
    of every shorter row. A chunk instead reads the rows still in their sentence at its first
    step (rows are sorted by decreasing length), and only the chunk being read is kept; the steps
    are read in order, forward or backward. Each chunk is unbound into its steps, so that under a
    gradient a chunk has one backward, not a zero-filled chunk-sized one per step.

    Args:
        product: (..., D_in) -> (..., 4H).
        time_major: (T, B, D_in); lengths: B ints, non-increasing.
    """
    kept: dict[str, object] = {"chunk": None}

    def step_inputs(index: int, rows: int) -> torch.Tensor:  # -> (R, 4H)
        chunk = index // CHUNK_STEPS
        if kept["chunk"] != chunk:
            start = chunk * CHUNK_STEPS
            reading = active_rows(lengths, start)  # the most rows any step of the chunk has
            values = product(time_major[start : start + CHUNK_STEPS, :reading])  # (C, R0, 4H)
            kept.update(chunk=chunk, steps=values.unbind(0))
        return kept["steps"][index % CHUNK_STEPS][:rows]

    return step_inputs


def fused_step(
    layer: LstmLayer, inputs: torch.Tensor, lengths: list[int], products: FusedProducts | None = None
) -> LayerStep:
    """The step of the fused recurrence (module docstring); inputs (B, T, D_in), B lengths.

    ``products``: the step's products (``float_products`` unless given).
    """
    if beside_another_stack():  # one torch thread per stack: the bits may change here anyway
        torch.set_num_threads(1)
    products = products or float_products(layer)
    time_major = inputs.transpose(0, 1).contiguous()  # (T, B, D_in): contiguous steps
    step_inputs = chunked_inputs(products.inputs, time_major, lengths)

    def gates(index: int, rows: int, hidden: torch.Tensor) -> torch.Tensor:
        return step_inputs(index, rows) + products.recurrent(hidden)  # (R, 4H)

    def fused_cell(gates: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        activations = torch.sigmoid(gates)  # (R, 4H), the candidate's doubled
        input_gate, forget_gate, candidate, output_gate = activations.chunk(4, dim=-1)  # 4 x (R, H)
        memory = layer.clip_memory(torch.addcmul(forget_gate * memory, input_gate, 2.0 * candidate - 1.0))
        squashed = 2.0 * torch.sigmoid(2.0 * memory) - 1.0  # tanh(memory)
        output = products.projection(output_gate * squashed)  # (R, D)
        return layer.clip_output(output), memory  # (R, D), (R, H)

    return LayerStep(gates, fused_cell)
