"""The biLM: a token encoder, one contextualiser per direction, and a shared softmax.

The published ELMo (Peters et al., 2018, Sec. 3.1 and 3.4): a character CNN gives a
context-independent vector per token; a forward LM and a backward LM, each a stack of LSTMs with
projection, read the sentence in opposite directions, and share the softmax that predicts the
next (previous) token. The ELMo layers are the token layer (duplicated to 2D so all layers have
one size) and the N contextual layers, each ``[forward | backward]``.

The parts, each behind a seam of its own (docs/architecture.md):

* the token encoder, ``CharCNN``, with an optional cache of token vectors (``use_token_cache``);
* the contextualiser, built once per direction (``elmo.modules.contextualizer``): the LSTM stack
  of the published models, or a Transformer (``config.contextualizer``);
* the recurrence kernel that runs an LSTM (``kernel``, ``elmo.kernels``);
* the softmax (``elmo.modules.softmax``).

Callers see ``forward`` (embedding), ``language_model`` (one direction, for training and
scoring) and the state helpers; nothing outside this module knows the stages in between.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from elmo.config import BiLMConfig
from elmo.data.characters import boundary_char_ids
from elmo.kernels import DEFAULT_KERNEL, RecurrenceKernel, get_kernel
from elmo.modules.char_cnn import CharCNN
from elmo.modules.contextualizer import Contextualizer, ContextualizerOutput, build_contextualizer
from elmo.modules.sequence import add_sentence_boundaries
from elmo.modules.token_cache import TokenVectorCache


class BiLMState(NamedTuple):
    """Recurrent state of both directions, for stateful use across batches (opaque to callers:
    each direction's is a NamedTuple of tensors whose dimension 1 is the batch row)."""

    forward: Any
    backward: Any


class BiLMOutput(NamedTuple):
    layers: torch.Tensor  # (L, B, T + 2, 2D), L = 1 + contextual layers; zero at padding
    mask: torch.Tensor  # (B, T + 2) bool, True for <S>, the tokens and </S>
    state: BiLMState  # each row's final state: forward after </S>, backward after <S>


class BiLM(nn.Module):
    """The ELMo bidirectional language model.

    Args:
        config: the model's sizes. ``config.vocab_size > 0`` adds the softmax shared by both
            directions (needed to train or score text, not to embed).
        kernel: the recurrence kernel's name (``elmo.kernels.KERNELS``) or a kernel; "exact",
            the default, keeps every bit of the reference implementation.
    """

    def __init__(self, config: BiLMConfig, kernel: str | RecurrenceKernel = DEFAULT_KERNEL) -> None:
        super().__init__()
        self.config = config.validate()
        dim = config.token_dim
        self.char_cnn = CharCNN(config.char_cnn, output_dim=dim)
        # The attribute names are the checkpoint format's: "forward_<kind>", as in every LSTM
        # checkpoint's "forward_lstm.layers.0.input_weight" (and the published weights' map).
        kind = config.contextualizer
        self._direction_names = (f"forward_{kind}", f"backward_{kind}")
        for name in self._direction_names:
            self.add_module(name, build_contextualizer(kind, config, input_dim=dim))
        self.softmax = _build_softmax(config) if config.vocab_size > 0 else None
        bos, eos = boundary_char_ids(config.char_cnn.max_characters_per_token)
        self.register_buffer("bos_char_ids", bos, persistent=False)  # (W,)
        self.register_buffer("eos_char_ids", eos, persistent=False)  # (W,)
        self.kernel = kernel

    @property
    def kernel(self) -> RecurrenceKernel:
        """The recurrence kernel both directions run on; set it by name or as a kernel."""
        return self._kernel

    @kernel.setter
    def kernel(self, kernel: str | RecurrenceKernel) -> None:
        self._kernel = get_kernel(kernel)
        for direction in self.directions:
            direction.kernel = self._kernel

    @property
    def directions(self) -> tuple[Contextualizer, Contextualizer]:
        """The forward and the backward contextualiser."""
        forward, backward = self._direction_names
        return getattr(self, forward), getattr(self, backward)

    @property
    def carries_state(self) -> bool:
        """Whether stateful use means anything: the contextualiser carries a row's context from
        one call to the next (the LSTM; a Transformer does not)."""
        return self.directions[0].carries_state

    @property
    def output_dim(self) -> int:
        """2D: the size of every ELMo layer."""
        return 2 * self.config.token_dim

    @property
    def num_layers(self) -> int:
        """L: the token layer plus the contextual layers."""
        return 1 + self.directions[0].num_layers

    @property
    def device(self) -> torch.device:
        """Where the weights are."""
        return self.char_cnn.projection.weight.device

    def layer_parameters(self) -> list[list[nn.Parameter]]:
        """The parameters behind each ELMo layer: L lists, the token encoder's first, then each
        contextual layer's in both directions (the softmax is in none: no ELMo layer uses it)."""
        groups = [list(self.char_cnn.parameters())]
        for index in range(self.num_layers - 1):
            groups.append([p for d in self.directions for p in d.layer_parameters(index)])
        return groups

    @property
    def token_cache(self) -> TokenVectorCache | None:
        """The token encoder's cache of token vectors (None: off)."""
        return self.char_cnn.token_cache

    def use_token_cache(self, max_entries: int) -> TokenVectorCache | None:
        """Give the token encoder a new, empty cache of ``max_entries`` token vectors (0: none).

        Exact: a token's vector depends on its characters alone (``elmo.modules.token_cache``),
        and the cache is bypassed whenever a gradient could flow.
        """
        self.char_cnn.token_cache = TokenVectorCache(max_entries) if max_entries > 0 else None
        return self.char_cnn.token_cache

    def forward(self, char_ids: torch.Tensor, state: BiLMState | None = None) -> BiLMOutput:
        """Contextual layers of a batch of sentences.

        Args:
            char_ids: (B, T, W) character ids from ``batch_to_ids`` (no sentence boundaries: they
                are added here); padding tokens are all 0 and come after the real ones.
            state: each row's initial state (None: zeros, i.e. stateless).

        Returns:
            BiLMOutput with layers (L, B, T + 2, 2D), mask (B, T + 2) and the final state.
        """
        char_ids, mask = self._frame(char_ids)  # (B, T+2, W), (B, T+2)
        tokens = self.char_cnn(char_ids)  # (B, T+2, D)
        tokens = tokens * mask.unsqueeze(-1).to(tokens.dtype)  # zero the padding positions
        forward_direction, backward_direction = self.directions
        forward, backward = self.kernel.run_directions(
            lambda: forward_direction(tokens, mask, None if state is None else state.forward),
            lambda: backward_direction(
                tokens, mask, None if state is None else state.backward, reverse=True
            ),
            tokens,
            self.training,
        )
        layers = [torch.cat([tokens, tokens], dim=-1)]  # (B, T+2, 2D)
        for forward_layer, backward_layer in zip(forward.layers, backward.layers):
            layers.append(torch.cat([forward_layer, backward_layer], dim=-1))  # (B, T+2, 2D)
        return BiLMOutput(torch.stack(layers), mask, BiLMState(forward.state, backward.state))

    def _frame(self, char_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Check a batch's shape; (B, T, W) -> ids (B, T + 2, W) with ``<S>``/``</S>``, mask (B, T + 2)."""
        width = self.config.char_cnn.max_characters_per_token
        if char_ids.dim() != 3 or char_ids.shape[-1] != width:
            raise ValueError(f"char_ids must be (B, T, {width}), got {tuple(char_ids.shape)}")
        mask = (char_ids > 0).any(dim=-1)  # (B, T)
        return add_sentence_boundaries(char_ids, mask, self.bos_char_ids, self.eos_char_ids)

    def language_model(
        self,
        char_ids: torch.Tensor,
        mask: torch.Tensor,
        state: Any = None,
        backward: bool = False,
    ) -> ContextualizerOutput:
        """One direction over a window of a training stream (no boundaries are added).

        The backward LM's windows hold reversed text already (``elmo.data.stream``), so both
        directions read their window left to right here.

        Args:
            char_ids: (B, T, W) character ids; mask: (B, T) bool, real tokens first.
            state: the state each row ended the previous window with (None: zeros).
            backward: use the backward direction.

        Returns:
            ContextualizerOutput: every layer (B, T, D) and each row's final state.
        """
        tokens = self.char_cnn(char_ids)  # (B, T, D)
        return self.directions[1 if backward else 0](tokens, mask, state)

    def language_models(
        self,
        char_ids: tuple[torch.Tensor, torch.Tensor],
        masks: tuple[torch.Tensor, torch.Tensor],
        states: tuple[Any, Any] = (None, None),
    ) -> tuple[ContextualizerOutput, ContextualizerOutput]:
        """``language_model`` of both directions, each over its own stream's window, with one
        token-encoder pass over the tokens of both windows.

        The streams hold different text, but a fifth or so of the distinct tokens of a window
        of one are also in the other's (function words, punctuation), and the encoder runs once
        per distinct token: a training step of the published small shape took 6-20% less time
        (docs/benchmarks.md).

        Args:
            char_ids: the forward and the backward window, (B, T, W) each.
            masks: their (B, T) bool masks; states: each direction's state (None: zeros).

        Returns:
            The forward and the backward direction's ContextualizerOutput.
        """
        forward_ids, backward_ids = char_ids
        if forward_ids.shape[1:] == backward_ids.shape[1:]:  # same (T, W): one encoder batch
            both = self.char_cnn(torch.cat([forward_ids, backward_ids]))  # (B_f + B_b, T, D)
            tokens = both.split([len(forward_ids), len(backward_ids)])
        else:
            tokens = (self.char_cnn(forward_ids), self.char_cnn(backward_ids))
        return tuple(  # type: ignore[return-value]
            direction(direction_tokens, mask, state)
            for direction, direction_tokens, mask, state in zip(self.directions, tokens, masks, states)
        )

    def initial_state(self, batch_size: int) -> BiLMState:
        """Zero state for ``batch_size`` rows (each direction's None for a stateless kind)."""
        reference = self.char_cnn.projection.weight  # the device and dtype of the state
        return BiLMState(*(d.initial_state(batch_size, reference) for d in self.directions))

    def state_from_tensors(
        self, tensors: list[torch.Tensor] | None, device: torch.device | str | None = None
    ) -> Any:
        """One direction's state saved by ``state_to_tensors`` (None stays None), on ``device``."""
        if tensors is None:
            return None
        return self.directions[0].state_from_tensors([t.to(device) for t in tensors])


def state_to_tensors(state: Any) -> list[torch.Tensor] | None:
    """One direction's state as a plain list of CPU tensors (what ``torch.load(weights_only=True)``
    reads back; it refuses to unpickle NamedTuple classes)."""
    return None if state is None else [t.cpu() for t in state]


def detach_state(state: Any) -> Any:
    """The state cut from the graph (truncated backpropagation between windows)."""
    return None if state is None else type(state)(*(t.detach() for t in state))


def overlay_rows(base: Any, top: Any) -> Any:
    """``base`` with its first rows replaced by ``top``'s (as many as both have), per tensor.

    Works on a direction's state or on a BiLMState (each tensor's dimension 1 is the batch row).
    """
    if isinstance(base, BiLMState):
        return BiLMState(*(overlay_rows(b, t) for b, t in zip(base, top)))
    merged = []
    for kept, new in zip(base, top):
        rows = min(kept.shape[1], new.shape[1])
        tensor = kept.clone()
        tensor[:, :rows] = new[:, :rows]
        merged.append(tensor)
    return type(base)(*merged)


def _build_softmax(config: BiLMConfig) -> nn.Module:
    from elmo.modules.softmax import build_softmax  # the softmax is only needed for LM training

    # The adaptive softmax has biases only for the unigram start (torch's has none); the others
    # always have one.
    adaptive = {"cutoffs": list(config.softmax.cutoffs),
                "bias": config.softmax.init_bias == "unigram"}
    options = {"sampled": {"num_samples": min(config.softmax.num_samples, config.vocab_size)},
               "adaptive": adaptive}.get(config.softmax.kind, {})
    return build_softmax(config.softmax.kind, config.token_dim, config.vocab_size, **options)
