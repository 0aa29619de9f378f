"""Getting ELMo vectors: ``ElmoEmbedder`` for inference, ``Elmo`` as a layer of a downstream model.

    from elmo import ElmoEmbedder
    embedder = ElmoEmbedder.from_pretrained("path/to/model")      # ours or the published format
    vectors = embedder.embed_sentences(["The river bank", "The bank of America"], output="average")
"""

from __future__ import annotations

import contextlib
import itertools
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple, TypeVar

import numpy as np
import torch
from torch import nn

from elmo.config import POOLINGS
from elmo.data.characters import batch_to_ids
from elmo.data.tokenizer import Tokenizer, word_tokenizer
from elmo.kernels import RecurrenceKernel
from elmo.kernels.lanes import rows_alone
from elmo.layer_choice import LayerChoice, check_choice, select
from elmo.model import BiLM, BiLMState, overlay_rows
from elmo.modules.pooling import pool_pieces
from elmo.modules.scalar_mix import ScalarMix
from elmo.modules.sequence import remove_sentence_boundaries
from elmo.modules.token_cache import TokenVectorCache
from elmo.progress import progress as progress_bar

Sentence = str | Sequence[str]  # a whitespace-tokenized string or a list of tokens
UNITS = ("words", "pieces")
Kept = TypeVar("Kept")  # what ``stream_sentences`` keeps of a sentence's layers
# Sentences side by side one sentence at a time (``_as_lanes``): 32 ran 5-10% faster than 16 and
# held 60-75 MiB more (docs/benchmarks.md); 16 is also ``elmo embed``'s window at batch size 1.
LANES = 16


class EmbedderOutput(NamedTuple):
    layers: torch.Tensor  # (L, B, T, 2D), sentence boundaries removed; zero at padding
    mask: torch.Tensor  # (B, T) bool, True for real tokens


def tokenize(sentence: Sentence) -> list[str]:
    """A sentence as a list of tokens: strings are split on whitespace."""
    if isinstance(sentence, str):
        return sentence.split()
    tokens = list(sentence)
    for token in tokens:
        if not isinstance(token, str):
            raise TypeError(f"tokens must be str, got {type(token).__name__}: {token!r}")
    return tokens


class ElmoEmbedder:
    """Contextual vectors for tokenized sentences, from a frozen biLM.

    Args:
        bilm: the biLM (``load_bilm``, ``from_pretrained`` or ``load_published``).
        batch_size: sentences per forward pass.
        stateful: carry each batch row's LSTM state into the next batch (the reference
            behaviour of AllenNLP and bilm-tf). Off by default: a sentence's vectors then depend
            on nothing but the sentence. A biLM that carries no state (a Transformer) refuses it.
        device: where to run (default: the biLM's device).
        tokenizer: the model's tokenizer (``elmo.pretrained.load_tokenizer``); None = whitespace
            words, as the published models.
        units: with a sentencepiece model, "words" gives one vector per whitespace word, pooled
            from its pieces; "pieces" one per piece (``units_of`` lists them).
        pooling: how a word's pieces are pooled: first | last | mean (default: the tokenizer's).
        cache_size: how many token vectors (layer 0) to keep, so that the character CNN runs
            once per word type (``elmo.modules.token_cache``; exact, emptied when the weights
            change); 0 turns the cache off. The cache is the biLM's token encoder's
            (``BiLM.use_token_cache``): each embedder starts it empty.
        kernel: the recurrence kernel, by name (``elmo.kernels``): "exact" keeps every bit of
            the reference; "fused" is equal up to float rounding; "bf16" runs the larger products
            in bfloat16, for inference on CPUs with bfloat16 units (README, Exactness). None (the
            default) keeps the biLM's (``BiLM.kernel``, "exact" unless set). It sets
            ``bilm.kernel``.
        fast: deprecated; ``kernel="fused"``.
    """

    def __init__(
        self,
        bilm: BiLM,
        batch_size: int = 64,
        stateful: bool = False,
        device: str | torch.device | None = None,
        tokenizer: Tokenizer | None = None,
        units: str = "words",
        pooling: str | None = None,
        cache_size: int = 50_000,
        kernel: str | RecurrenceKernel | None = None,
        fast: bool = False,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        if units not in UNITS:
            raise ValueError(f"units must be one of {UNITS}, got {units!r}")
        self.tokenizer = tokenizer if tokenizer is not None else word_tokenizer()
        self.units = units
        self.pooling = pooling if pooling is not None else self.tokenizer.config.pooling
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if stateful and not bilm.carries_state:
            raise ValueError(
                f"stateful=True has no meaning for a {bilm.config.contextualizer} biLM: it carries "
                f"no state from one batch to the next (embed statelessly)"
            )
        self.device = torch.device(device) if device is not None else bilm.device
        self.bilm = bilm.to(self.device).eval()
        self.batch_size = batch_size
        self.stateful = stateful
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        if fast:
            warnings.warn("ElmoEmbedder(fast=True) is deprecated; use kernel='fused'",
                          DeprecationWarning, stacklevel=2)  # fmt: skip
            kernel = kernel or "fused"
        if kernel is not None:
            self.bilm.kernel = kernel
        self.bilm.use_token_cache(cache_size)
        self._state: BiLMState | None = None

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike, **kwargs) -> ElmoEmbedder:
        """From our pretrained directory (with its tokenizer), or one with the published files."""
        from elmo.pretrained import load_bilm, load_tokenizer

        kwargs.setdefault("tokenizer", load_tokenizer(model))
        return cls(load_bilm(model=model), **kwargs)

    @classmethod
    def from_published(
        cls, options_file: str | os.PathLike, weight_file: str | os.PathLike, **kwargs
    ) -> ElmoEmbedder:
        """From the published format (AllenNLP / bilm-tf ``options.json`` + ``weights.hdf5``)."""
        from elmo.pretrained import load_bilm

        return cls(load_bilm(options_file=options_file, weight_file=weight_file), **kwargs)

    @property
    def num_layers(self) -> int:
        return self.bilm.num_layers

    @property
    def token_cache(self) -> TokenVectorCache:
        """The biLM's token-vector cache (an empty one of size 0 when off), for its counts."""
        cache = self.bilm.token_cache
        return cache if cache is not None else TokenVectorCache(0)

    @property
    def dim(self) -> int:
        return self.bilm.output_dim

    def reset_state(self) -> None:
        """Forget the carried LSTM state (stateful mode)."""
        self._state = None

    def units_of(self, sentence: Sentence) -> list[str]:
        """The units a sentence's vectors belong to: its words, or pieces (``units="pieces"``)."""
        words = tokenize(sentence)
        if self.units == "words":
            return words
        return [piece for pieces in self.tokenizer.word_units(words) for piece in pieces]

    @torch.inference_mode()
    def embed_batch(self, sentences: Sequence[Sentence]) -> EmbedderOutput:
        """All layers for one batch, rows in the given order (stateful mode carries state per row).

        Sentences are whitespace words (strings are split). A sentencepiece model reads each
        word's pieces, and its vectors are pooled back to words unless ``units="pieces"``.

        Returns:
            EmbedderOutput: layers (L, B, T, 2D) and mask (B, T), T counting words (or pieces).
        """
        words = [tokenize(s) for s in sentences]
        if self.tokenizer.kind == "words":
            return self._embed_units(words)
        pieces = [self.tokenizer.word_units(sentence) for sentence in words]  # per word
        flat = [[piece for word in sentence for piece in word] for sentence in pieces]
        output = self._embed_units(flat)
        if self.units == "pieces":
            return output
        counts = [[len(word) for word in sentence] for sentence in pieces]
        return _pool_words(output, counts, self.pooling)

    def _embed_units(self, tokens: list[list[str]]) -> EmbedderOutput:
        """The biLM's layers for units the model reads directly (words, or pieces)."""
        char_ids = batch_to_ids(tokens, self.bilm.config.char_cnn.max_characters_per_token)
        char_ids = char_ids.to(self.device)  # (B, T, W)
        state = self._initial_state(len(tokens)) if self.stateful else None
        output = self.bilm(char_ids, state)
        if self.stateful:
            self._keep_state(output.state)
        layers, mask = _strip_boundaries(output.layers, output.mask)
        return EmbedderOutput(layers, mask)

    def embed_sentences(
        self,
        sentences: Sequence[Sentence],
        output: LayerChoice = "all",
        numpy: bool = False,
        progress: bool = False,
    ) -> list[torch.Tensor | np.ndarray]:
        """Vectors of many sentences, returned in input order.

        Stateless embedders batch sentences of similar length together (``stream_sentences``,
        one window over all the sentences); stateful ones keep the input order, since each batch
        row continues the row before it.

        Args:
            sentences: strings (split on whitespace) or token lists.
            output: "all" -> (L, n, 2D) per sentence; "top" -> the last layer (n, 2D);
                "average" -> the mean of the L layers (n, 2D); an int k -> layer k (n, 2D);
                a tuple of L weights -> their normalised weighted sum (n, 2D)
                (``elmo.layer_choice``).
            numpy: return numpy arrays instead of CPU tensors.
            progress: report progress on stderr (``elmo.progress``).

        Returns:
            One array per sentence, n = its number of tokens.
        """
        output = check_choice(output, self.num_layers, name="output")
        results = []
        with progress_bar(total=len(sentences), desc="embedding", unit="sentences",
                          enabled=progress) as bar:  # fmt: skip
            for layers in self.stream_sentences(sentences, on_batch=bar.update):
                vectors = select(layers, output)
                results.append(vectors.numpy() if numpy else vectors)
        return results

    def stream_sentences(
        self,
        sentences: Iterable[Sentence],
        window: int | None = None,
        on_batch: Callable[[int], object] | None = None,
        keep: Callable[[torch.Tensor], Kept] | None = None,
    ) -> Iterator[torch.Tensor | Kept]:
        """All layers (L, n, 2D) of each sentence, on the CPU, yielded in input order.

        A stateless embedder reads ``window`` batches' worth of sentences at a time and embeds
        them longest first: batches of sentences of similar length keep their rows together to
        the end, so more time steps run as one large product (``elmo.kernels``). The vectors are
        then yielded in input order; memory holds one window's. A stateful embedder embeds
        consecutive sentences, since each batch row continues the row before it.

        Whether a sentence is embedded beside one set of sentences or another changes nothing
        but float rounding (README, Exactness).

        Args:
            sentences: strings (split on whitespace) or token lists, read lazily.
            window: batches per window (>= 1); None reads all the sentences first.
            on_batch: called with each batch's number of sentences once it is embedded (a
                progress bar's ``update``): the vectors themselves come a window later.
            keep: what to hold and yield of each sentence's layers, taken as soon as its batch
                is embedded, so that a window holds only that (e.g. one layer). It is given a
                view (L, n, 2D) of the batch's CPU tensor and must return a copy. None: a copy
                of all layers.
        """
        if window is not None and window < 1:
            raise ValueError(f"window must be >= 1 batch, got {window}")
        size = None if window is None else window * self.batch_size
        tokens = (tokenize(sentence) for sentence in sentences)
        while chunk := list(itertools.islice(tokens, size)):
            yield from self._embed_window(chunk, on_batch, keep or torch.Tensor.clone)

    def _embed_window(
        self,
        tokens: list[list[str]],
        on_batch: Callable[[int], object] | None,
        keep: Callable[[torch.Tensor], Kept],
    ) -> list[Kept]:
        """All layers (L, n, 2D) of each sentence of a window, in its order (see
        ``stream_sentences``)."""
        encoded = self._encode_ahead(tokens)
        order = list(range(len(tokens)))
        if not self.stateful:
            order.sort(key=lambda i: -len(tokens[i]))  # stable: equal lengths keep their order
        as_lanes = self._as_lanes(encoded)
        group = LANES if as_lanes else self.batch_size
        results: list[Kept | None] = [None] * len(tokens)
        for start in range(0, len(order), group):
            rows = order[start : start + group]
            with rows_alone() if as_lanes else contextlib.nullcontext():
                batch = self.embed_batch([tokens[i] for i in rows])
            layers = batch.layers.cpu()  # (L, B, T, 2D)
            lengths = batch.mask.sum(dim=1).tolist()  # (B,) words, or pieces with units="pieces"
            for row, index in enumerate(rows):
                results[index] = keep(layers[:, row, : lengths[row]])  # from (L, n, 2D)
            if on_batch is not None:
                on_batch(len(rows))
        return results

    @torch.inference_mode()
    def _encode_ahead(self, tokens: list[list[str]]) -> bool:
        """Put the token vectors of a window's distinct units in the token cache, in few passes
        of the character CNN (``TokenVectorCache.encode_ahead``): the same bits as encoding them
        batch by batch, with its weights read once per pass instead of once per batch.

        Returns:
            whether every unit of the window is in the cache now, with room left for the
            sentence boundaries' two vectors (so that no unit of the window is evicted while its
            batches run).
        """
        cache = self.bilm.token_cache
        if cache is None or not cache.applies(self.bilm.char_cnn):
            return False
        units = {
            unit for sentence in tokens for word in self.tokenizer.word_units(sentence) for unit in word
        }  # the words, or their pieces
        if not units or len(units) > cache.max_entries:
            return False
        width = self.bilm.config.char_cnn.max_characters_per_token
        char_ids = batch_to_ids([sorted(units)], width)[0].to(self.device)  # (U, W)
        cache.encode_ahead(self.bilm.char_cnn, char_ids)
        return len(units) + 2 <= cache.max_entries

    def _as_lanes(self, encoded: bool) -> bool:
        """Whether a window embedded one sentence at a time runs its sentences as lanes
        (``elmo.kernels.lanes``, up to ``LANES`` side by side), each bit for bit as if alone.

        Only where nothing else in a batch depends on its other sentences: stateless, a words
        model, every token's vector already in the cache (``encoded``: the character CNN then
        runs on the same rows either way), an LSTM on the CPU with a kernel that computes rows
        as if alone (``RecurrenceKernel.rows_alone``: the exact, fused and bf16 ones).
        """
        return (
            encoded
            and self.batch_size == 1
            and not self.stateful
            and self.tokenizer.kind == "words"
            and self.device.type == "cpu"
            and self.bilm.config.contextualizer == "lstm"
            and getattr(self.bilm.kernel, "rows_alone", False)
        )

    def embed_sentence(
        self, sentence: Sentence, output: LayerChoice = "all", numpy: bool = False
    ) -> torch.Tensor | np.ndarray:
        """Vectors of one sentence (see ``embed_sentences``)."""
        return self.embed_sentences([sentence], output=output, numpy=numpy)[0]

    def _initial_state(self, batch_size: int) -> BiLMState:
        """The carried state of the first ``batch_size`` rows; rows never seen start at zero."""
        zeros = self.bilm.initial_state(batch_size)
        return zeros if self._state is None else overlay_rows(zeros, self._state)

    def _keep_state(self, final: BiLMState) -> None:
        """Store each row's final state; rows beyond this batch keep theirs."""
        self._state = final if self._state is None else overlay_rows(self._state, final)


def _pool_words(
    output: EmbedderOutput, pieces_per_word: list[list[int]], pooling: str
) -> EmbedderOutput:
    """Piece vectors (L, B, P, 2D) -> word vectors (L, B, N, 2D), N = the most words in a row."""
    layers = output.layers
    longest = max((len(counts) for counts in pieces_per_word), default=0)
    words = layers.new_zeros(layers.shape[0], layers.shape[1], longest, layers.shape[3])
    mask = torch.zeros(layers.shape[1], longest, dtype=torch.bool, device=layers.device)  # (B, N)
    for row, counts in enumerate(pieces_per_word):
        n = len(counts)
        if n:
            words[:, row, :n] = pool_pieces(layers[:, row, : sum(counts)], counts, pooling)
            mask[row, :n] = True
    return EmbedderOutput(words, mask)


def _strip_boundaries(layers: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, B, T + 2, 2D) and (B, T + 2) -> (L, B, T, 2D) and (B, T), without <S> and </S>."""
    stripped, mask = remove_sentence_boundaries(layers.permute(1, 2, 0, 3), mask)  # (B, T, L, 2D)
    return stripped.permute(2, 0, 1, 3), mask


class ElmoOutput(NamedTuple):
    representations: list[torch.Tensor]  # num_output_representations x (B, T, 2D) (T + 2 if kept)
    mask: torch.Tensor  # (B, T) bool, True for real tokens (T + 2 with boundaries kept)
    layers: torch.Tensor  # (L, B, T, 2D) the unmixed biLM layers


class Elmo(nn.Module):
    """ELMo as a layer of a downstream model: biLM layers -> learned scalar mixes -> dropout.

    Peters et al. (2018), Eq. 1: ``ELMo_k = gamma * sum_j s_j h_kj``. A task may want several
    mixes (e.g. one at the input and one at the output of its encoder).

    Args:
        bilm: the pretrained biLM.
        num_output_representations: how many independent scalar mixes.
        dropout: dropout on each mixed representation (training mode).
        do_layer_norm: layer-normalise each biLM layer (over real tokens) before mixing.
        keep_sentence_boundaries: keep the ``<S>``/``</S>`` positions in the output.
        requires_grad: fine-tune the biLM's weights too (otherwise it is frozen, no graph kept).
        scalar_mix_parameters: fixed mix weights (pre-softmax); the mix is then not learned.
        kernel: the recurrence kernel by name (``elmo.kernels``; None keeps the biLM's). It sets
            ``bilm.kernel``.

    The biLM always runs in eval mode (no biLM dropout), frozen or not.
    """

    def __init__(
        self,
        bilm: BiLM,
        num_output_representations: int = 1,
        dropout: float = 0.5,
        do_layer_norm: bool = False,
        keep_sentence_boundaries: bool = False,
        requires_grad: bool = False,
        scalar_mix_parameters: Sequence[float] | None = None,
        kernel: str | RecurrenceKernel | None = None,
    ) -> None:
        super().__init__()
        if num_output_representations < 1:
            raise ValueError(f"num_output_representations must be >= 1, got {num_output_representations}")
        self.bilm = bilm
        if kernel is not None:
            bilm.kernel = kernel
        if requires_grad and not bilm.kernel.trains:
            raise ValueError(
                f"kernel {bilm.kernel.name!r} is for inference, and requires_grad=True fine-tunes the "
                "biLM: use kernel='exact' (the default) or 'fused'"
            )
        self.requires_grad = requires_grad
        self.bilm.requires_grad_(requires_grad)
        self.keep_sentence_boundaries = keep_sentence_boundaries
        self.dropout = nn.Dropout(dropout)
        self.scalar_mixes = nn.ModuleList(
            ScalarMix(
                bilm.num_layers,
                do_layer_norm=do_layer_norm,
                initial_scalar_parameters=scalar_mix_parameters,
                trainable=scalar_mix_parameters is None,
            )
            for _ in range(num_output_representations)
        )

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike, **kwargs) -> Elmo:
        from elmo.pretrained import load_bilm

        return cls(load_bilm(model=model), **kwargs)

    @classmethod
    def from_published(cls, options_file, weight_file, **kwargs) -> Elmo:
        from elmo.pretrained import load_bilm

        return cls(load_bilm(options_file=options_file, weight_file=weight_file), **kwargs)

    def train(self, mode: bool = True) -> Elmo:
        super().train(mode)
        self.bilm.eval()  # see the class docstring
        return self

    def forward(self, char_ids: torch.Tensor) -> ElmoOutput:
        """Mixed ELMo representations.

        Args:
            char_ids: (B, T, W) from ``batch_to_ids``.

        Returns:
            ElmoOutput: representations (B, T, 2D) each, mask (B, T) bool (T + 2 with the
            boundaries kept), and the raw layers (L, B, T, 2D).
        """
        self.bilm.eval()
        with torch.set_grad_enabled(self.requires_grad and torch.is_grad_enabled()):
            output = self.bilm(char_ids)
        layers, mask = output.layers, output.mask  # (L, B, T+2, 2D), (B, T+2)
        if not self.keep_sentence_boundaries:
            layers, mask = _strip_boundaries(layers, mask)  # (L, B, T, 2D), (B, T)
        representations = [self.dropout(mix(list(layers), mask)) for mix in self.scalar_mixes]
        return ElmoOutput(representations, mask, layers)
