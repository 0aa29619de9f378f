"""The biLM: one character encoder feeding a forward and a backward LSTM stack.

The published ELMo (Peters et al., 2018, Sec. 3.1 and 3.4): a character CNN gives a
context-independent vector per token; a forward LM and a backward LM, each a stack of LSTMs with
projection, read the sentence in opposite directions. The three ELMo layers are the token layer
(duplicated to 2D so all layers have one size) and the N LSTM layers, each ``[forward | backward]``.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, NamedTuple, Optional, TypeVar

import torch
from torch import nn

from elmo.config import BiLMConfig
from elmo.data.characters import boundary_char_ids
from elmo.modules.char_cnn import CharCNN
from elmo.modules.lstm import LstmStack, LstmState, StackOutput, one_thread_per_stack
from elmo.modules.sequence import add_sentence_boundaries, lengths_from_mask

T = TypeVar("T")


class BiLMState(NamedTuple):
    """Recurrent state of both directions, for stateful use across batches."""

    forward: LstmState
    backward: LstmState


class BiLMOutput(NamedTuple):
    layers: torch.Tensor  # (L, B, T + 2, 2D), L = 1 + number of LSTM layers; zero at padding
    mask: torch.Tensor  # (B, T + 2) bool, True for <S>, the tokens and </S>
    state: BiLMState  # each row's final state: forward after </S>, backward after <S>


class BiLM(nn.Module):
    """The ELMo bidirectional language model.

    Args:
        config: the model's sizes. ``config.vocab_size > 0`` adds the softmax shared by both
            directions (needed to train or score text, not to embed).
    """

    def __init__(self, config: BiLMConfig) -> None:
        super().__init__()
        self.config = config.validate()
        dim = config.lstm.projection_dim
        self.char_cnn = CharCNN(config.char_cnn, output_dim=dim)
        self.forward_lstm = LstmStack(config.lstm, input_dim=dim, dropout=config.dropout)
        self.backward_lstm = LstmStack(config.lstm, input_dim=dim, dropout=config.dropout)
        self.softmax = _build_softmax(config) if config.vocab_size > 0 else None
        bos, eos = boundary_char_ids(config.char_cnn.max_characters_per_token)
        self.register_buffer("bos_char_ids", bos, persistent=False)  # (W,)
        self.register_buffer("eos_char_ids", eos, persistent=False)  # (W,)

    @property
    def output_dim(self) -> int:
        """2D: the size of every ELMo layer."""
        return 2 * self.config.lstm.projection_dim

    @property
    def num_layers(self) -> int:
        """L: the token layer plus the LSTM layers."""
        return 1 + self.config.lstm.num_layers

    def forward(
        self, char_ids: torch.Tensor, state: Optional[BiLMState] = None, fast: bool = False
    ) -> BiLMOutput:
        """Contextual layers of a batch of sentences.

        Args:
            char_ids: (B, T, W) character ids from ``batch_to_ids`` (no sentence boundaries: they
                are added here); padding tokens are all 0 and come after the real ones.
            state: initial LSTM state of every row (zeros when None, i.e. stateless).
            fast: the LSTMs' fast recurrence (see ``contextualize``).

        Returns:
            BiLMOutput with layers (L, B, T + 2, 2D), mask (B, T + 2) and the final state.
        """
        char_ids, mask = self.frame(char_ids)  # (B, T+2, W), (B, T+2)
        tokens = self.char_cnn(char_ids)  # (B, T+2, D)
        return self.contextualize(tokens, mask, state, fast)

    def frame(self, char_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Check a batch's shape and add ``<S>`` and ``</S>`` to each sentence.

        Args:
            char_ids: (B, T, W) character ids from ``batch_to_ids``.

        Returns:
            char ids (B, T + 2, W) and mask (B, T + 2) bool, True for real tokens.
        """
        if char_ids.dim() != 3 or char_ids.shape[-1] != self.config.char_cnn.max_characters_per_token:
            raise ValueError(
                f"char_ids must be (B, T, {self.config.char_cnn.max_characters_per_token}), "
                f"got {tuple(char_ids.shape)}"
            )
        mask = (char_ids > 0).any(dim=-1)  # (B, T)
        return add_sentence_boundaries(char_ids, mask, self.bos_char_ids, self.eos_char_ids)

    def contextualize(
        self,
        tokens: torch.Tensor,
        mask: torch.Tensor,
        state: Optional[BiLMState] = None,
        fast: bool = False,
    ) -> BiLMOutput:
        """Run both LSTM stacks over token vectors that already include the boundaries.

        For inference on a CPU with two or more torch threads, the backward stack runs on a
        side thread while the forward one runs (``concurrent_directions``); the bits are the same.

        Args:
            tokens: (B, T, D) token vectors; mask: (B, T) bool, real tokens first in each row.
            state: each row's initial state, or None for zeros.
            fast: the LSTMs' fast recurrence: equal to the default up to float rounding, which
                is not enough on chaotic weights (README, Exactness).

        Returns:
            BiLMOutput (layers (L, B, T, 2D)).
        """
        tokens = tokens * mask.unsqueeze(-1).to(tokens.dtype)  # zero the padding positions
        run_backward = functools.partial(
            run_sorted, self.backward_lstm, tokens, mask,
            None if state is None else state.backward, reverse=True, fast=fast,
        )  # fmt: skip
        concurrent = self._concurrent(tokens)
        pending = _on_side_thread(_one_thread(run_backward)) if concurrent else None
        run_forward = functools.partial(
            run_sorted, self.forward_lstm, tokens, mask,
            None if state is None else state.forward, fast=fast,
        )  # fmt: skip
        forward = _one_thread(run_forward)() if concurrent else run_forward()
        backward = pending() if pending is not None else run_backward()
        layers = [torch.cat([tokens, tokens], dim=-1)]  # (B, T, 2D)
        for forward_layer, backward_layer in zip(forward.layers, backward.layers):
            layers.append(torch.cat([forward_layer, backward_layer], dim=-1))  # (B, T, 2D)
        return BiLMOutput(torch.stack(layers), mask, BiLMState(forward.state, backward.state))

    # Inference on a CPU with several threads runs the backward stack on a second Python thread
    # while the forward one runs (torch releases the GIL in its ops): the many small per-step
    # products of either stack leave cores idle that the other can use. Each stack then runs
    # its steps of 16 rows or more on one torch thread (``one_thread_per_stack``), so that the
    # two do not contend for both cores. Same bits either way; False runs them one after the other.
    concurrent_directions = True

    def _concurrent(self, tokens: torch.Tensor) -> bool:
        return (
            self.concurrent_directions
            and tokens.device.type == "cpu"
            and not torch.is_grad_enabled()
            and not self.training  # dropout masks must be drawn in a fixed order
            and torch.get_num_threads() > 1
        )

    def language_model(
        self,
        char_ids: torch.Tensor,
        mask: torch.Tensor,
        state: Optional[LstmState] = None,
        backward: bool = False,
        fast: bool = False,
    ) -> StackOutput:
        """One direction over a window of a training stream (no boundaries are added).

        The backward LM's windows hold reversed text already (``elmo.data.stream``), so both
        stacks read their window left to right here.

        Args:
            char_ids: (B, T, W) character ids; mask: (B, T) bool, real tokens first.
            state: the state each row ended the previous window with (None: zeros).
            backward: use the backward stack.
            fast: the LSTMs' fast recurrence (equal up to float rounding).

        Returns:
            StackOutput: every layer (B, T, D) and each row's final state.
        """
        tokens = self.char_cnn(char_ids)  # (B, T, D)
        stack = self.backward_lstm if backward else self.forward_lstm
        return run_sorted(stack, tokens, mask, state, fast=fast)

    def initial_state(self, batch_size: int) -> BiLMState:
        """Zero state for ``batch_size`` rows."""
        reference = self.char_cnn.projection.weight
        return BiLMState(
            self.forward_lstm.initial_state(batch_size, reference),
            self.backward_lstm.initial_state(batch_size, reference),
        )


def run_sorted(
    stack: LstmStack,
    inputs: torch.Tensor,
    mask: torch.Tensor,
    state: Optional[LstmState] = None,
    reverse: bool = False,
    fast: bool = False,
) -> StackOutput:
    """Run a stack on rows in any order: sort them by decreasing length, run, restore the order.

    Args:
        inputs: (B, T, D); mask: (B, T) bool, real tokens first; state: per row, or None.
        reverse, fast: as in ``LstmStack.forward``.

    Returns:
        StackOutput with layers (B, T, D) and state rows in the input order.
    """
    batch, steps = mask.shape
    # torch's descending sort, as in the reference implementation (it decides the GEMM shapes).
    sorted_lengths, order = lengths_from_mask(mask).sort(0, descending=True)
    restore = torch.empty_like(order)
    restore[order] = torch.arange(batch, device=order.device)
    lengths = sorted_lengths.tolist()
    longest = lengths[0] if lengths else 0
    sorted_inputs = inputs.index_select(0, order)[:, :longest]  # (B, T', D)
    if state is None:
        state = stack.initial_state(batch, inputs)
    elif state.hidden.shape[1] != batch:
        raise ValueError(
            f"the state holds {state.hidden.shape[1]} rows but the batch has {batch}; pass the "
            f"state returned for a batch of the same size (or None for zeros)"
        )
    output = stack(sorted_inputs, lengths, _select_rows(state, order), reverse=reverse, fast=fast)
    layers = [
        nn.functional.pad(layer.index_select(0, restore), (0, 0, 0, steps - longest))
        for layer in output.layers
    ]  # N x (B, T, D)
    return StackOutput(layers, _select_rows(output.state, restore))


_POOL: Optional[tuple[int, ThreadPoolExecutor]] = None  # (the process id, its pool)


def _one_thread(function: Callable[[], T]) -> Callable[[], T]:
    """``function`` inside ``one_thread_per_stack`` (one thread per stack, where bit-exact)."""

    def run() -> T:
        with one_thread_per_stack():
            return function()

    return run


def _on_side_thread(function: Callable[[], T]) -> Callable[[], T]:
    """Start ``function`` on the side thread, in the caller's grad mode; -> wait for its result."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():  # a forked child has no copy of the thread
        _POOL = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="elmo-backward"))
    inference = torch.is_inference_mode_enabled()

    def in_callers_mode() -> T:
        with torch.inference_mode(inference), torch.no_grad():
            return function()

    return _POOL[1].submit(in_callers_mode).result


def _select_rows(state: LstmState, rows: torch.Tensor) -> LstmState:
    """The state of the given batch rows: (N, B, .) -> (N, len(rows), .)."""
    return LstmState(state.hidden.index_select(1, rows), state.memory.index_select(1, rows))


def _build_softmax(config: BiLMConfig) -> nn.Module:
    from elmo.modules.softmax import build_softmax  # the softmax is only needed for LM training

    options = {"sampled": {"num_samples": min(config.softmax.num_samples, config.vocab_size)},
               "adaptive": {"cutoffs": list(config.softmax.cutoffs)}}.get(config.softmax.kind, {})
    return build_softmax(config.softmax.kind, config.lstm.projection_dim, config.vocab_size, **options)
