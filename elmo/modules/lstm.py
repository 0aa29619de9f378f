"""One direction of ELMo's contextual encoder: stacked LSTMs with projection and clipping.

Each layer is an LSTM whose memory cell is clipped and whose output is projected down to D and
clipped (Sak et al., 2014, "LSTM with recurrent projection layer"), as in bilm-tf's
``LSTMCell(num_proj=D, cell_clip, proj_clip)``. Per step t, for the rows still inside their
sentence:

    i, f, g, o = split(W_x x_t + W_h h_{t-1} + b)           (gates: input, forget, cell, output)
    c_t = clip(sigmoid(i) * tanh(g) + sigmoid(f + 1) * c_{t-1})
    h_t = clip(W_p (sigmoid(o) * tanh(c_t)))

From the second layer on, a residual connection adds the layer's input to its output. One class
serves both language models: the backward one reads each sentence from its last real token to
its first (``reverse=True``).

Exactness. Rows are sorted by decreasing length and each step computes only the rows still
inside their sentence, so no work is spent on padding: this is also the arithmetic of AllenNLP's
reference implementation, step for step. It matters: with the clips active the recurrence is
chaotic enough that a 1e-7 rounding difference grows to 1e-2 within 50 steps, so only the same
order of operations reproduces the reference outputs. The loop below is that order, with plain
``linear`` products. How it runs fast (prepacked weights, one GEMM for many steps' inputs,
thread placement) is a recurrence kernel's business (``elmo.kernels``): a kernel hands the loop
its own ``LayerStep``, and the exact kernel keeps every bit of this one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from elmo.config import LSTMConfig
from elmo.modules.contextualizer import Contextualizer, ContextualizerOutput
from elmo.modules.sequence import lengths_from_mask


class LstmState(NamedTuple):
    """Recurrent state of one stack: the projected output and the memory cell of every layer."""

    hidden: torch.Tensor  # (N, B, D), N = number of layers
    memory: torch.Tensor  # (N, B, H)


class LayerStep(NamedTuple):
    """How one layer computes a time step; the loop in ``LstmLayer.forward`` calls these.

    ``gates(t, R, hidden)``: the (R, 4H) pre-activations of position t's first R rows, bias
    included, from their previous output ``hidden`` (R, D). It is called first in each step.
    ``cell(gates, memory)``: (R, 4H) pre-activations and the (R, H) memory -> the step's output
    (R, D) and memory (R, H).
    """

    gates: Callable[[int, int, torch.Tensor], torch.Tensor]
    cell: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def active_rows(lengths: list[int], index: int) -> int:
    """How many rows (sorted by decreasing length) have a real token at position ``index``."""
    count = len(lengths)
    while count > 0 and lengths[count - 1] <= index:
        count -= 1
    return count


class LstmLayer(nn.Module):
    """An LSTM with a clipped memory cell and a projected, clipped hidden state.

    Gates are stored in the order input, forget, cell candidate, output. The forget bias (+1) is
    not folded into ``bias``; it is added at run time, as TensorFlow's LSTMCell does, so the
    published weights round-trip bit for bit.

    Args:
        input_dim: size of each input vector.
        config: sizes and clip values.
    """

    def __init__(self, input_dim: int, config: LSTMConfig) -> None:
        super().__init__()
        hidden, cell = config.projection_dim, config.cell_size
        self.cell_size = cell
        self.cell_clip = config.cell_clip
        self.projection_clip = config.projection_clip
        self.input_weight = nn.Parameter(torch.empty(4 * cell, input_dim))  # (4H, D_in)
        self.recurrent_weight = nn.Parameter(torch.empty(4 * cell, hidden))  # (4H, D)
        self.bias = nn.Parameter(torch.zeros(4 * cell))  # (4H,)
        self.projection_weight = nn.Parameter(torch.empty(hidden, cell))  # (D, H)
        offset = torch.zeros(4 * cell)
        offset[cell : 2 * cell] = config.forget_bias
        self.register_buffer("forget_offset", offset, persistent=False)  # (4H,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Uniform in +-1/sqrt(H), PyTorch's LSTM default; bilm-tf used a similar uniform init.
        bound = self.cell_size**-0.5
        for weight in (self.input_weight, self.recurrent_weight, self.projection_weight):
            nn.init.uniform_(weight, -bound, bound)
        nn.init.zeros_(self.bias)

    def gate_bias(self) -> torch.Tensor:
        """(4H,) the bias of the pre-activations: ``bias`` plus the forget-gate offset."""
        return self.bias + self.forget_offset

    def forward(
        self,
        inputs: torch.Tensor,
        lengths: list[int],
        state: tuple[torch.Tensor, torch.Tensor],
        reverse: bool = False,
        step: LayerStep | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Run over each row's real tokens, left to right or (``reverse``) right to left.

        Args:
            inputs: (B, T, D_in), rows sorted by decreasing length, real tokens first.
            lengths: B ints, non-increasing.
            state: initial (hidden (B, D), memory (B, H)).
            reverse: read from each row's last real token back to its first.
            step: how a step computes its products (a kernel's); None: ``reference_step``.

        Returns:
            outputs (B, T, D), zero at padding, and each row's state after its last step.
        """
        step = step if step is not None else self.reference_step(inputs)
        hidden, memory = state
        batch, steps = inputs.shape[:2]
        outputs: list[torch.Tensor | None] = [None] * steps
        for index in range(steps - 1, -1, -1) if reverse else range(steps):
            rows = active_rows(lengths, index)
            gates = step.gates(index, rows, hidden[:rows])  # (R, 4H)
            new_hidden, new_memory = step.cell(gates, memory[:rows])  # (R, D), (R, H)
            outputs[index], hidden, memory = carry(new_hidden, new_memory, hidden, memory)
        if steps == 0:
            return inputs.new_zeros(batch, 0, hidden.shape[-1]), (hidden, memory)
        return torch.stack(outputs, dim=1), (hidden, memory)  # (B, T, D)

    def reference_step(self, inputs: torch.Tensor) -> LayerStep:
        """The reference order of operations, with plain ``linear`` products (inputs (B, T, D_in))."""
        bias = self.gate_bias()  # (4H,)

        def gates(index: int, rows: int, hidden: torch.Tensor) -> torch.Tensor:
            step_input = nn.functional.linear(inputs[:rows, index], self.input_weight)  # (R, 4H)
            return step_input + nn.functional.linear(hidden, self.recurrent_weight, bias)

        def project(output: torch.Tensor) -> torch.Tensor:
            return nn.functional.linear(output, self.projection_weight)  # (R, H) -> (R, D)

        return LayerStep(gates, functools.partial(self.cell, project=project))

    def cell(
        self, gates: torch.Tensor, memory: torch.Tensor, project: Callable
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step's gate arithmetic: (R, 4H) pre-activations -> output (R, D), memory (R, H).

        ``project``: (R, H) -> (R, D), the projection weight's product."""
        input_gate, forget_gate, candidate, output_gate = gates.chunk(4, dim=-1)  # 4 x (R, H)
        memory = torch.sigmoid(input_gate) * torch.tanh(candidate) + torch.sigmoid(forget_gate) * memory
        memory = self.clip_memory(memory)
        return self.clip_output(project(torch.sigmoid(output_gate) * torch.tanh(memory))), memory

    def clip_memory(self, memory: torch.Tensor) -> torch.Tensor:
        """The memory cell clipped to [-cell_clip, cell_clip] (unchanged without a clip)."""
        return memory if self.cell_clip is None else memory.clamp(-self.cell_clip, self.cell_clip)

    def clip_output(self, hidden: torch.Tensor) -> torch.Tensor:
        """The projected output clipped to [-projection_clip, projection_clip]."""
        clip = self.projection_clip
        return hidden if clip is None else hidden.clamp(-clip, clip)


def carry(
    new_hidden: torch.Tensor, new_memory: torch.Tensor, hidden: torch.Tensor, memory: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step's output and the state after it, when only the first R of B rows ran the step.

    Args:
        new_hidden: (R, D) and new_memory: (R, H), the rows still inside their sentence.
        hidden: (B, D) and memory: (B, H), the state before the step.

    Returns:
        output (B, D), zero for rows past their sentence; hidden (B, D) and memory (B, H), where
        those rows keep their state.
    """
    rows, batch = new_hidden.shape[0], hidden.shape[0]
    if rows == batch:
        return new_hidden, new_hidden, new_memory
    output = torch.cat([new_hidden, new_hidden.new_zeros(batch - rows, new_hidden.shape[1])])
    return output, torch.cat([new_hidden, hidden[rows:]]), torch.cat([new_memory, memory[rows:]])


class LstmStack(Contextualizer):
    """N stacked ``LstmLayer``s with residual connections from the second layer on.

    The LSTM contextualiser, built twice in a biLM: once for the forward LM and once for the
    backward LM. ``kernel`` (an ``elmo.kernels`` kernel, set by the biLM) runs each layer; None
    runs the reference loop.

    Args:
        config: layer count, sizes, clips, skip connections.
        input_dim: size of the token vectors fed to the first layer.
        dropout: dropout on each layer's input, in training mode only (bilm-tf's
            DropoutWrapper(input_keep_prob)).
    """

    carries_state = True  # stateful use: a row's (hidden, memory) continues into the next call

    def __init__(self, config: LSTMConfig, input_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.config = config
        dims = [input_dim] + [config.projection_dim] * (config.num_layers - 1)
        self.layers = nn.ModuleList(LstmLayer(dim, config) for dim in dims)
        self.dropout = nn.Dropout(dropout)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def output_dim(self) -> int:
        return self.config.projection_dim

    def layer_parameters(self, index: int) -> list[nn.Parameter]:
        return list(self.layers[index].parameters())

    def initial_state(self, batch_size: int, reference: torch.Tensor) -> LstmState:
        """Zero state for ``batch_size`` rows, on ``reference``'s device and dtype."""
        n, d, h = len(self.layers), self.config.projection_dim, self.config.cell_size
        return LstmState(
            reference.new_zeros(n, batch_size, d), reference.new_zeros(n, batch_size, h)
        )

    def state_from_tensors(self, tensors: list[torch.Tensor]) -> LstmState:
        return LstmState(*tensors)

    def forward(
        self,
        tokens: torch.Tensor,
        mask: torch.Tensor,
        state: LstmState | None = None,
        reverse: bool = False,
    ) -> ContextualizerOutput:
        """Run all layers over rows in any order (sorted by length inside, then restored).

        Args:
            tokens: (B, T, D) token vectors; mask: (B, T) bool, real tokens first in each row.
            state: each row's initial state (zeros when None).
            reverse: read each row from its last real token to its first.

        Returns:
            every layer's outputs N x (B, T, D), zero at padding (residuals included), and each
            row's final state, rows in the input order.
        """
        batch, steps = mask.shape
        # torch's descending sort, as in the reference implementation (it decides the GEMM shapes).
        sorted_lengths, order = lengths_from_mask(mask).sort(0, descending=True)
        restore = torch.empty_like(order)
        restore[order] = torch.arange(batch, device=order.device)
        lengths = sorted_lengths.tolist()
        longest = lengths[0] if lengths else 0
        if state is None:
            state = self.initial_state(batch, tokens)
        elif state.hidden.shape[1] != batch:
            raise ValueError(
                f"the state holds {state.hidden.shape[1]} rows but the batch has {batch}; pass the "
                f"state returned for a batch of the same size (or None for zeros)"
            )
        layer_input = tokens.index_select(0, order)[:, :longest]  # (B, T', D)
        state = _select_rows(state, order)
        outputs, hiddens, memories = [], [], []
        for index, layer in enumerate(self.layers):
            layer_state = (state.hidden[index], state.memory[index])
            layer_inputs = self.dropout(layer_input)
            if self.kernel is None:
                output, (hidden, memory) = layer(layer_inputs, lengths, layer_state, reverse)
            else:
                output, (hidden, memory) = self.kernel.run_layer(
                    layer, layer_inputs, lengths, layer_state, reverse
                )
            if index > 0 and self.config.use_skip_connections:
                output = output + layer_input  # residual; zero at padding like both terms
            outputs.append(output)
            hiddens.append(hidden)
            memories.append(memory)
            layer_input = output
        layers = [
            nn.functional.pad(output.index_select(0, restore), (0, 0, 0, steps - longest))
            for output in outputs
        ]  # N x (B, T, D)
        final = LstmState(torch.stack(hiddens), torch.stack(memories))
        return ContextualizerOutput(layers, _select_rows(final, restore))


def _select_rows(state: LstmState, rows: torch.Tensor) -> LstmState:
    """The state of the given batch rows: (N, B, .) -> (N, len(rows), .)."""
    return LstmState(state.hidden.index_select(1, rows), state.memory.index_select(1, rows))
