"""One direction of ELMo's contextual encoder: stacked LSTMs with projection and clipping.

Each layer is an LSTM whose cell is clipped and whose hidden state is projected down to D
(Sak et al., 2014), as in bilm-tf. From the second layer on, a residual connection adds the
layer's input to its output. One class serves both language models: the backward one reads each
sentence from its last real token to its first (``reverse=True``).

Exactness note. Rows must come sorted by decreasing length, and each time step computes only the
rows still inside their sentence (so no work is spent on padding). This is also precisely the
arithmetic of AllenNLP's reference implementation, step for step. It matters: with the clips
active the recurrence is chaotic enough that a 1e-7 rounding difference (a GEMM of another shape,
one bias folded differently) grows to 1e-2 within 50 steps, so only the same order of operations
reproduces the reference outputs to 1e-5. The one liberty taken: the input projections of the
positions with at least 16 real rows come from one GEMM over all of them (``hoisted_inputs``),
since there a row's bits do not depend on how many rows share its GEMM (``rows_are_independent``
checks this on the machine at hand).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional

import torch
from torch import nn

from elmo.config import LSTMConfig


class LstmState(NamedTuple):
    """Recurrent state of one stack: the projected output and the memory cell of every layer."""

    hidden: torch.Tensor  # (N, B, D), N = number of layers
    memory: torch.Tensor  # (N, B, H)


class StackOutput(NamedTuple):
    layers: List[torch.Tensor]  # N x (B, T, D); zero at padding positions
    state: LstmState  # each row's state after its last step (its last token, or first if reversed)


def active_rows(lengths: List[int], index: int) -> int:
    """How many rows (sorted by decreasing length) have a real token at position ``index``."""
    count = len(lengths)
    while count > 0 and lengths[count - 1] <= index:
        count -= 1
    return count


# MKL picks its GEMM kernel from the row count a weight is packed for; packed for at least 16
# rows, a product has the same bits as ``linear``'s for any number of rows (below: not so).
PACK_ROWS = 64


def step_linear(weight: torch.Tensor) -> Callable:
    """``x, bias=None -> linear(x, weight, bias)`` for a layer's per-step products.

    When no gradient is needed on a CPU with MKL, the weight is packed once into MKL's GEMM
    layout, so the T per-step GEMMs do not each repack it. The result is bit-identical to
    ``linear``: checked on torch 2.13 for 1 to 100 rows, weights from 16 x 5 to 16384 x 512, with
    and without bias, with 1 and 2 threads (tests/modules/test_lstm.py, and the fixture tests).

    Args:
        weight: (out, in).
    """
    if _can_prepack(weight):
        packed = torch.ops.mkl._mkl_reorder_linear_weight(weight, PACK_ROWS)
        return lambda x, bias=None: torch.ops.mkl._mkl_linear(x, packed, weight, bias, PACK_ROWS)
    return lambda x, bias=None: nn.functional.linear(x, weight, bias)


# From this many real rows up, a time step's input projection is read from one GEMM over all
# such steps (``hoisted_inputs``) instead of a GEMM of its own. A row of an MKL GEMM has the same
# bits whatever the number of rows beside it from 4 rows up on 1 thread and from 2 up on 2 threads
# (scripts/bench_gemm_rows.py); 16 leaves a margin, and ``rows_are_independent`` checks it.
HOIST_MIN_ROWS = 16

_INDEPENDENT: Dict[tuple, bool] = {}


def rows_are_independent(weight: torch.Tensor) -> bool:
    """Whether ``linear`` gives each row the same bits in a GEMM of any number (>= 16) of rows.

    True on CPU with MKL (and the row kernels of most BLAS); GPU libraries often pick another
    kernel, or split the sum, by the row count. Checked once per weight shape, dtype, device and
    thread count, on random data of that shape.
    """
    key = (tuple(weight.shape), weight.dtype, weight.device.type, torch.get_num_threads())
    if key not in _INDEPENDENT:
        generator = torch.Generator().manual_seed(0)
        out_dim, in_dim = weight.shape
        options = {"generator": generator, "dtype": weight.dtype}
        x = torch.randn(320, in_dim, **options).to(weight.device)  # (320, in)
        probe = (torch.randn(out_dim, in_dim, **options) * in_dim**-0.5).to(weight.device)
        with torch.no_grad():
            together = nn.functional.linear(x, probe)  # (320, out)
            _INDEPENDENT[key] = all(
                torch.equal(nn.functional.linear(x[start:end], probe), together[start:end])
                for start, end in ((0, HOIST_MIN_ROWS), (100, 117), (150, 214), (240, 320))
            )
    return _INDEPENDENT[key]


_ONE_THREAD: Dict[tuple, bool] = {}
_CALLER_THREADS = threading.local()  # .count: set inside ``one_thread_per_stack``


def same_bits_on_one_thread(weight: torch.Tensor) -> bool:
    """Whether ``linear`` with >= 16 rows gives the same bits on 1 thread as on the current count.

    True with MKL on CPU, where only some products of 5-11 rows round by thread count. Checked
    once per weight shape, dtype and thread count, on random data of that shape.
    """
    threads = torch.get_num_threads()
    key = (tuple(weight.shape), weight.dtype, threads)
    if key not in _ONE_THREAD:
        generator = torch.Generator().manual_seed(1)
        out_dim, in_dim = weight.shape
        x = torch.randn(80, in_dim, generator=generator, dtype=weight.dtype)  # (80, in)
        probe = torch.randn(out_dim, in_dim, generator=generator, dtype=weight.dtype) * in_dim**-0.5
        bias = torch.randn(out_dim, generator=generator, dtype=weight.dtype)
        with torch.no_grad():
            products = [step_linear(probe)(x[:rows], bias) for rows in (16, 17, 64, 80)]
            torch.set_num_threads(1)
            try:
                alone = [step_linear(probe)(x[:rows], bias) for rows in (16, 17, 64, 80)]
            finally:
                torch.set_num_threads(threads)
        _ONE_THREAD[key] = all(torch.equal(a, b) for a, b in zip(products, alone))
    return _ONE_THREAD[key]


@contextlib.contextmanager
def one_thread_per_stack() -> Iterator[None]:
    """Within this (per Python thread): the exact recurrence runs on one torch thread.

    For a stack that runs beside another one (``BiLM.concurrent_directions``): two stacks on one
    thread each keep two cores busy without the two sharing each core. Steps with fewer than
    HOIST_MIN_ROWS rows keep the caller's thread count, since some products of 5-11 rows round
    by thread count; from 16 rows up the bits are the same (``same_bits_on_one_thread``), and
    the gate arithmetic splits its work between threads at multiples of 32 elements when the
    cell size is a multiple of 64, so its bits do not change either.
    """
    outer = getattr(_CALLER_THREADS, "count", None)
    _CALLER_THREADS.count = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(_CALLER_THREADS.count)
        _CALLER_THREADS.count = outer


def hoisted_inputs(
    inputs: torch.Tensor, lengths: List[int], weight: torch.Tensor
) -> tuple[torch.Tensor, List[int]]:
    """The input projections of every position with >= HOIST_MIN_ROWS real rows, as one GEMM.

    Positions 0 .. S-1 have that many rows (rows are sorted by decreasing length). Their real
    rows are gathered time-major, so that position t's rows are one contiguous block.

    Args:
        inputs: (B, T, D_in); lengths: B ints, non-increasing; weight: (4H, D_in).

    Returns:
        projected (N, 4H), N = the real rows of positions 0 .. S-1, and S + 1 offsets:
        position t's rows are ``projected[offsets[t] : offsets[t + 1]]``.
    """
    steps = lengths[HOIST_MIN_ROWS - 1] if len(lengths) >= HOIST_MIN_ROWS else 0
    rows = [active_rows(lengths, index) for index in range(steps)]
    offsets = [0]
    for count in rows:
        offsets.append(offsets[-1] + count)
    if steps == 0:
        return inputs.new_zeros(0, weight.shape[0]), offsets
    counts = torch.tensor(rows, device=inputs.device)  # (S,)
    real = torch.arange(inputs.shape[0], device=inputs.device) < counts[:, None]  # (S, B)
    packed = inputs[:, :steps].transpose(0, 1)[real]  # (N, D_in), time-major
    return nn.functional.linear(packed, weight), offsets  # (N, 4H)


def _can_prepack(weight: torch.Tensor) -> bool:
    return (
        weight.device.type == "cpu"
        and weight.dtype == torch.float32
        and not (torch.is_grad_enabled() and weight.requires_grad)
        and torch.backends.mkl.is_available()
        and hasattr(torch.ops.mkl, "_mkl_reorder_linear_weight")
    )


def _carry(
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


class LstmLayer(nn.Module):
    """An LSTM with a clipped memory cell and a projected, clipped hidden state.

    Gates are stored in the order input, forget, cell candidate, output. The forget bias (+1) is
    not folded into ``bias``; it is added at run time, as TensorFlow's LSTMCell does, so the
    published weights round-trip bit for bit.

    Args:
        input_dim: size of each input vector.
        config: sizes and clip values.
    """

    # The exact recurrence reads the input projections of positions with >= HOIST_MIN_ROWS real
    # rows from one GEMM (``hoisted_inputs``) where that keeps every bit; False = one GEMM per
    # step, the reference's literal loop (the tests' oracle).
    hoist_inputs = True

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

    def forward(
        self,
        inputs: torch.Tensor,
        lengths: List[int],
        state: tuple[torch.Tensor, torch.Tensor],
        reverse: bool = False,
        fast: bool = False,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Run over each row's real tokens, left to right or (``reverse``) right to left.

        Args:
            inputs: (B, T, D_in), rows sorted by decreasing length, real tokens first.
            lengths: B ints, non-increasing.
            state: initial (hidden (B, D), memory (B, H)).
            reverse: read from each row's last real token back to its first.
            fast: the fast recurrence (``_forward_fast``): equal up to float rounding, not bit
                for bit, to the reference order of operations.

        Returns:
            outputs (B, T, D), zero at padding, and each row's state after its last step.
        """
        if fast:
            return self._forward_fast(inputs, lengths, state, reverse)
        hidden, memory = state
        batch, steps = inputs.shape[:2]
        bias = self.bias + self.forget_offset  # (4H,)
        input_linear, recurrent_linear, project = (
            step_linear(w) for w in (self.input_weight, self.recurrent_weight, self.projection_weight)
        )
        caller_threads = self._caller_threads()  # None: keep the thread count as it is
        if caller_threads is not None:
            torch.set_num_threads(1 if batch >= HOIST_MIN_ROWS else caller_threads)
        projected, offsets = inputs.new_zeros(0), [0]
        if self.hoist_inputs and rows_are_independent(self.input_weight):
            projected, offsets = hoisted_inputs(inputs, lengths, self.input_weight)  # (N, 4H)
        outputs: List[Optional[torch.Tensor]] = [None] * steps
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        for index in order:
            rows = active_rows(lengths, index)
            if caller_threads is not None:
                threads = 1 if rows >= HOIST_MIN_ROWS else caller_threads
                if threads != torch.get_num_threads():  # rows only fall (reversed: only rise)
                    torch.set_num_threads(threads)
            if index + 1 < len(offsets):  # hoisted: the same bits as the step's own GEMM
                step_input = projected[offsets[index] : offsets[index + 1]]  # (rows, 4H)
            else:
                step_input = input_linear(inputs[:rows, index])  # (rows, 4H)
            gates = step_input + recurrent_linear(hidden[:rows], bias)
            new_hidden, new_memory = self._cell(gates, memory[:rows], project)  # (rows, 4H) in
            outputs[index], hidden, memory = _carry(new_hidden, new_memory, hidden, memory)
        if steps == 0:
            return inputs.new_zeros(batch, 0, hidden.shape[-1]), (hidden, memory)
        return torch.stack(outputs, dim=1), (hidden, memory)  # (B, T, D)

    def _caller_threads(self) -> Optional[int]:
        """Inside ``one_thread_per_stack`` where that keeps every bit: the caller's thread count."""
        caller = getattr(_CALLER_THREADS, "count", None)
        if caller is None or caller == 1 or self.cell_size % 64 != 0:
            return None
        weights = (self.input_weight, self.recurrent_weight, self.projection_weight)
        if not all(same_bits_on_one_thread(weight) for weight in weights):
            return None
        return caller

    def _forward_fast(
        self,
        inputs: torch.Tensor,
        lengths: List[int],
        state: tuple[torch.Tensor, torch.Tensor],
        reverse: bool,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``forward`` with less work per step; same arguments and results up to rounding.

        * The input projections of all time steps are one GEMM, with the bias folded in, instead
          of one small GEMM per step: it runs near the machine's matmul peak.
        * tanh is computed as ``2 * sigmoid(2x) - 1``, and the candidate's rows of the weights
          are doubled (exact: a power of two) so that one sigmoid covers all four gates. On CPU
          torch's tanh is several times slower than its sigmoid.
        * The per-step recurrent and projection products use ``step_linear`` (prepacked weights
          when no gradient is needed), as the exact path does.
        """
        hidden, memory = state
        batch, steps = inputs.shape[:2]
        cell = self.cell_size
        scale = torch.ones(4 * cell, 1, dtype=inputs.dtype, device=inputs.device)  # (4H, 1)
        scale[2 * cell : 3 * cell] = 2.0  # the candidate's pre-activation, doubled
        bias = (self.bias + self.forget_offset) * scale[:, 0]  # (4H,)
        time_major = inputs.transpose(0, 1).contiguous()  # (T, B, D_in): contiguous steps
        projected = nn.functional.linear(time_major, self.input_weight * scale, bias)  # (T, B, 4H)
        recurrent_weight = self.recurrent_weight * scale  # (4H, D)
        recurrent = step_linear(recurrent_weight)
        project = step_linear(self.projection_weight)
        outputs: List[Optional[torch.Tensor]] = [None] * steps
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        for index in order:
            rows = active_rows(lengths, index)
            gates = projected[index, :rows] + recurrent(hidden[:rows])  # (rows, 4H)
            new_hidden, new_memory = self._fast_cell(torch.sigmoid(gates), memory[:rows], project)
            outputs[index], hidden, memory = _carry(new_hidden, new_memory, hidden, memory)
        if steps == 0:
            return inputs.new_zeros(batch, 0, hidden.shape[-1]), (hidden, memory)
        return torch.stack(outputs, dim=1), (hidden, memory)  # (B, T, D)

    def _fast_cell(
        self, activations: torch.Tensor, memory: torch.Tensor, project: Callable
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """sigmoid of the (R, 4H) pre-activations (candidate doubled) -> hidden (R, D), memory (R, H)."""
        input_gate, forget_gate, candidate, output_gate = activations.chunk(4, dim=-1)  # 4 x (R, H)
        memory = torch.addcmul(forget_gate * memory, input_gate, 2.0 * candidate - 1.0)  # tanh(g)
        if self.cell_clip is not None:
            memory = memory.clamp(-self.cell_clip, self.cell_clip)
        squashed = 2.0 * torch.sigmoid(2.0 * memory) - 1.0  # tanh(memory)
        hidden = project(output_gate * squashed)  # (R, D)
        if self.projection_clip is not None:
            hidden = hidden.clamp(-self.projection_clip, self.projection_clip)
        return hidden, memory

    def _cell(
        self, gates: torch.Tensor, memory: torch.Tensor, project: Callable
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step's gate arithmetic: (R, 4H) pre-activations -> hidden (R, D), memory (R, H).

        ``project`` applies the projection weight (``step_linear``)."""
        input_gate, forget_gate, candidate, output_gate = gates.chunk(4, dim=-1)  # 4 x (R, H)
        memory = torch.sigmoid(input_gate) * torch.tanh(candidate) + torch.sigmoid(forget_gate) * memory
        if self.cell_clip is not None:
            memory = memory.clamp(-self.cell_clip, self.cell_clip)
        hidden = project(torch.sigmoid(output_gate) * torch.tanh(memory))  # (R, D)
        if self.projection_clip is not None:
            hidden = hidden.clamp(-self.projection_clip, self.projection_clip)
        return hidden, memory


class LstmStack(nn.Module):
    """N stacked ``LstmLayer``s with residual connections from the second layer on.

    Built twice in a biLM: once for the forward LM and once for the backward LM.

    Args:
        config: layer count, sizes, clips, skip connections.
        input_dim: size of the token vectors fed to the first layer.
        dropout: dropout on each layer's input, in training mode only (bilm-tf's
            DropoutWrapper(input_keep_prob)).
    """

    def __init__(self, config: LSTMConfig, input_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.config = config
        dims = [input_dim] + [config.projection_dim] * (config.num_layers - 1)
        self.layers = nn.ModuleList(LstmLayer(dim, config) for dim in dims)
        self.dropout = nn.Dropout(dropout)

    def initial_state(self, batch_size: int, reference: torch.Tensor) -> LstmState:
        """Zero state for ``batch_size`` rows, on ``reference``'s device and dtype."""
        n, d, h = len(self.layers), self.config.projection_dim, self.config.cell_size
        return LstmState(
            reference.new_zeros(n, batch_size, d), reference.new_zeros(n, batch_size, h)
        )

    def forward(
        self,
        inputs: torch.Tensor,
        lengths: List[int],
        state: Optional[LstmState] = None,
        reverse: bool = False,
        fast: bool = False,
    ) -> StackOutput:
        """Run all layers.

        Args:
            inputs: (B, T, D) token vectors, rows sorted by decreasing length, real tokens first.
            lengths: B ints, non-increasing.
            state: initial state (zeros when None).
            reverse: read each row from its last real token to its first.
            fast: use the layers' fast recurrence (exact up to rounding, see LstmLayer).

        Returns:
            every layer's outputs (B, T, D) (residuals included) and the final state.
        """
        if state is None:
            state = self.initial_state(inputs.shape[0], inputs)
        layer_input = inputs
        outputs, hiddens, memories = [], [], []
        for index, layer in enumerate(self.layers):
            output, (hidden, memory) = layer(
                self.dropout(layer_input), lengths, (state.hidden[index], state.memory[index]),
                reverse, fast,
            )  # fmt: skip
            if index > 0 and self.config.use_skip_connections:
                output = output + layer_input  # residual; zero at padding like both terms
            outputs.append(output)
            hiddens.append(hidden)
            memories.append(memory)
            layer_input = output
        return StackOutput(outputs, LstmState(torch.stack(hiddens), torch.stack(memories)))
