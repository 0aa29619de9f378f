"""The contextualiser seam: token vectors in, contextual layers out, for one direction.

A biLM builds one contextualiser per direction (``elmo.model.BiLM``); both read the same token
vectors. The LSTM stack of the published ELMo (``elmo.modules.lstm.LstmStack``) is one, a
Transformer as in Peters, Neumann, Zettlemoyer and Yih (2018, "Dissecting Contextual Word
Embeddings"; ``elmo.modules.transformer.TransformerStack``) another; a further kind (a gated
CNN) plugs in by subclassing ``Contextualizer`` and adding a line to ``CONTEXTUALIZERS``.

The state a contextualiser carries between calls (stateful use) is its own: a NamedTuple of
tensors whose dimension 1 is the batch row, so that callers can select, overlay and save rows
without knowing what the tensors mean (``elmo.model.overlay_rows``, ``state_to_tensors``). A
stateless kind (``carries_state = False``) returns None for it and refuses a state it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn


class ContextualizerOutput(NamedTuple):
    layers: list[torch.Tensor]  # N x (B, T, D): every layer's outputs, zero at padding
    state: Any  # each row's state after its last real token (see the module docstring)


class Contextualizer(nn.Module):
    """One direction's contextual layers over token vectors.

    ``kernel``: the recurrence kernel (``elmo.kernels``) that runs a recurrent contextualiser's
    steps, set by the biLM; None runs the reference loop. Non-recurrent kinds ignore it.
    """

    kernel: Any = None
    carries_state = False  # True: its state can carry a row's context from one call to the next

    @property
    def num_layers(self) -> int:
        """N: the contextual layers (the biLM adds the token layer)."""
        raise NotImplementedError

    @property
    def output_dim(self) -> int:
        """D: the size of each layer's output vectors (the token vectors' size too)."""
        raise NotImplementedError

    def forward(
        self, tokens: torch.Tensor, mask: torch.Tensor, state: Any = None, reverse: bool = False
    ) -> ContextualizerOutput:
        """Contextual layers of a batch.

        Args:
            tokens: (B, T, D) token vectors, zero at padding; mask: (B, T) bool, True for real
                tokens, which come first in each row.
            state: each row's state from the previous call (None: a fresh start).
            reverse: read each row from its last real token to its first (the backward LM on
                text in reading order; a training stream that holds reversed text reads it
                with ``reverse=False``).

        Returns:
            ContextualizerOutput: N layers (B, T, D) and each row's final state.
        """
        raise NotImplementedError

    def layer_parameters(self, index: int) -> list[nn.Parameter]:
        """The parameters that produce contextual layer ``index`` (0-based) of this direction."""
        raise NotImplementedError

    def initial_state(self, batch_size: int, reference: torch.Tensor) -> Any:
        """The fresh state of ``batch_size`` rows, on ``reference``'s device and dtype."""
        raise NotImplementedError

    def state_from_tensors(self, tensors: list[torch.Tensor]) -> Any:
        """The state saved as a plain list of tensors (``elmo.model.state_to_tensors``)."""
        raise NotImplementedError


def _lstm(config: Any, input_dim: int) -> Contextualizer:
    from elmo.modules.lstm import LstmStack

    return LstmStack(config.lstm, input_dim=input_dim, dropout=config.dropout)


def _transformer(config: Any, input_dim: int) -> Contextualizer:
    from elmo.modules.transformer import TransformerStack

    return TransformerStack(config.transformer, input_dim=input_dim)


# kind -> builder(BiLMConfig, input_dim D) -> one direction's contextualiser. The kind's sizes
# are the BiLMConfig field of the same name (``BiLMConfig.token_dim`` reads its output_dim).
CONTEXTUALIZERS: dict[str, Callable[[Any, int], Contextualizer]] = {
    "lstm": _lstm,
    "transformer": _transformer,
}


def build_contextualizer(kind: str, config: Any, input_dim: int) -> Contextualizer:
    """One direction's contextualiser of the given kind, for a BiLMConfig."""
    if kind not in CONTEXTUALIZERS:
        raise ValueError(f"unknown contextualizer {kind!r}; expected one of {sorted(CONTEXTUALIZERS)}")
    return CONTEXTUALIZERS[kind](config, input_dim)
