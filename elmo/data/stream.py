"""Streaming language-model batches, made the way bilm-tf trained the published ELMo models.

Each of the B rows of a batch is its own endless stream of sentences. A sentence is framed as
``<S> w1 ... wn </S>`` (the backward LM reads ``</S> wn ... w1 <S>``, the sentence reversed) and a
batch is the next window of T positions of every row. A position's target is the token that
follows it within its sentence: the inputs of one sentence are its tokens but the last and the
targets its tokens but the first, so the step from ``</S>`` to the next ``<S>`` is never trained
(bilm-tf's ``_get_batch`` does the same). Whenever a row runs out, it takes the next sentence from
one shared sentence stream, rows in order 0..B-1, so batches are deterministic. Because rows are
continuous, a trainer can carry each row's LSTM state from one batch to the next.

The corpus is read lazily, line by line: memory holds one batch, B partly read sentences, an
optional shuffle block and a bounded cache of character ids, whatever the corpus size.
"""

from __future__ import annotations

import functools
import glob
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional, Sequence, TypeVar, Union

import numpy as np
import torch

from elmo.data.characters import BOS_TOKEN, EOS_TOKEN, MAX_WORD_LENGTH, token_to_char_ids
from elmo.data.vocab import Vocabulary

Item = TypeVar("Item")
PathsOrGlob = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]
# A path or glob (read with iter_lines), a callable returning the lines of one epoch, or lines.
LineSource = Union[str, os.PathLike, Callable[[], Iterable[str]], Iterable[str]]


class Batch(NamedTuple):
    """One window of T positions of B sentence streams; padding positions are all 0."""

    token_ids: torch.Tensor  # (B, T) long: vocabulary ids of the input tokens
    char_ids: torch.Tensor  # (B, T, W) long: character ids of the input tokens
    next_token_ids: torch.Tensor  # (B, T) long: vocabulary id of the token to predict
    mask: torch.Tensor  # (B, T) bool: True for real tokens, False for padding


def expand_paths(paths_or_glob: PathsOrGlob) -> list[Path]:
    """The files named by one path, one glob pattern (sorted matches), or a list of paths."""
    if isinstance(paths_or_glob, (str, os.PathLike)):
        pattern = os.fspath(paths_or_glob)
        if any(c in pattern for c in "*?["):
            paths = sorted(glob.glob(pattern))
            if not paths:
                raise FileNotFoundError(f"no file matches the pattern {pattern!r}")
        else:
            paths = [pattern]
    else:
        paths = [os.fspath(p) for p in paths_or_glob]
        if not paths:
            raise ValueError("expected at least one path, got an empty list")
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"not a file: {path!r}")
    return [Path(p) for p in paths]


def iter_lines(paths_or_glob: PathsOrGlob) -> Iterator[str]:
    """Lazily yield the lines (without their newline) of one file, a glob's files, or a list.

    Missing files raise FileNotFoundError here, before any line is read.
    """
    paths = expand_paths(paths_or_glob)

    def read() -> Iterator[str]:
        for path in paths:
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    yield line.rstrip("\n")

    return read()


def sentence_stream(lines: Iterable[str]) -> Iterator[list[str]]:
    """The whitespace tokens of every non-empty line (WikiText headings stay as sentences)."""
    for line in lines:
        tokens = line.split()
        if tokens:
            yield tokens


def shuffle_blocks(
    items: Iterable[Item], block_size: int, seed: int, epoch: int = 0
) -> Iterator[Item]:
    """Shuffle ``items`` within consecutive blocks of ``block_size``; the last may be shorter.

    The order depends only on (seed, epoch, block index), so it is reproducible and can be
    replayed to resume. Like bilm-tf's shuffling within each shard file, it mixes nearby
    sentences while holding only one block in memory.
    """
    iterator = iter(items)
    for block_index in itertools.count():
        block = list(itertools.islice(iterator, block_size))
        if not block:
            return
        order = np.random.default_rng([seed, epoch, block_index]).permutation(len(block))
        yield from (block[i] for i in order)


def frame_sentence(tokens: Sequence[str], reverse: bool) -> list[str]:
    """``<S> tokens </S>``, or for the backward LM the reversed ``</S> reversed(tokens) <S>``."""
    if reverse:
        return [EOS_TOKEN, *reversed(tokens), BOS_TOKEN]
    return [BOS_TOKEN, *tokens, EOS_TOKEN]


@dataclass
class _Row:
    """A row's current framed sentence; ``tokens[offset]`` is the row's next input."""

    tokens: list[str]
    token_ids: np.ndarray  # (n,) int64
    char_ids: np.ndarray  # (n, W) int64
    offset: int = 0

    @property
    def num_inputs_left(self) -> int:
        return len(self.tokens) - self.offset - 1  # the last token is only ever a target


class LMBatcher:
    """Fixed-size windows over B continuous sentence streams, resumable mid-epoch.

    Iterating yields one epoch of ``Batch`` from the current position; the last windows are
    padded and the epoch ends after the last window holding any real token. The next iteration
    starts the next epoch from the beginning of the corpus.

    Args:
        lines: the corpus, one sentence per line: a path or glob (read lazily with
            ``iter_lines``), a callable returning one epoch's lines, or an iterable of lines (a
            one-shot iterator allows one epoch and no resuming).
        vocab: maps tokens to the ids of ``token_ids`` / ``next_token_ids``.
        batch_size: B, independent sentence streams.
        unroll_steps: T, positions per window.
        max_chars: W, character slots per token.
        reverse: make batches for the backward LM (every sentence reversed).
        rank, world_size: this process reads the non-empty lines i with i % world_size == rank.
            (Counting non-empty lines keeps the split even on WikiText, where every other line is
            blank.)
        shuffle_buffer: shuffle sentences within blocks of this many (this rank's) sentences,
            reshuffled every epoch; 0 keeps corpus order.
        seed: seed of the shuffling (a non-negative int).
        char_cache_size: token types whose character ids are cached (bounds the memory).
    """

    def __init__(
        self,
        lines: LineSource,
        vocab: Vocabulary,
        batch_size: int,
        unroll_steps: int,
        max_chars: int = MAX_WORD_LENGTH,
        reverse: bool = False,
        rank: int = 0,
        world_size: int = 1,
        shuffle_buffer: int = 0,
        seed: int = 0,
        char_cache_size: int = 200_000,
    ) -> None:
        for name, value in [("batch_size", batch_size), ("unroll_steps", unroll_steps)]:
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        if shuffle_buffer < 0 or seed < 0:
            raise ValueError(f"shuffle_buffer and seed must be >= 0, got {shuffle_buffer}, {seed}")
        self.vocab = vocab
        self.settings = dict(
            batch_size=batch_size, unroll_steps=unroll_steps, max_chars=max_chars,
            reverse=reverse, rank=rank, world_size=world_size,
            shuffle_buffer=shuffle_buffer, seed=seed,
        )  # fmt: skip
        self._lines = lines
        self._one_shot_opened = False
        self._token_chars = functools.lru_cache(maxsize=char_cache_size)(self._compute_chars)
        self._start_epoch(0)

    @property
    def epoch(self) -> int:
        """The epoch the next batch belongs to (0-based)."""
        return self._epoch

    def __iter__(self) -> Iterator[Batch]:
        if self._sentences is None:
            self._sentences = self._open_sentences()
        while True:
            batch = self._next_batch()
            if not batch.mask.any():
                self._start_epoch(self._epoch + 1)
                return
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """Where the batcher is: resuming from this yields exactly the batches still to come.

        Holds the epoch, the number of sentences this rank has handed out this epoch, and each
        row's unread rest of its current sentence (tokens, so the state does not depend on the
        vocabulary).
        """
        rows = [None if r is None else r.tokens[r.offset :] for r in self._rows]
        return dict(
            epoch=self._epoch, sentences_read=self._sentences_read, rows=rows,
            settings=dict(self.settings),
        )  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a ``state_dict()`` taken with the same settings and corpus."""
        for key, value in self.settings.items():
            if state["settings"].get(key) != value:
                raise ValueError(
                    f"batcher state has {key}={state['settings'].get(key)!r}, "
                    f"this batcher has {key}={value!r}"
                )
        self._start_epoch(int(state["epoch"]))
        self._sentences_read = int(state["sentences_read"])
        self._rows = [None if tokens is None else self._make_row(tokens) for tokens in state["rows"]]

    def _start_epoch(self, epoch: int) -> None:
        self._epoch = epoch
        self._sentences_read = 0  # sentences handed to rows this epoch
        self._sentences: Optional[Iterator[list[str]]] = None  # opened lazily by __iter__
        self._rows: list[Optional[_Row]] = [None] * self.settings["batch_size"]

    def _open_sentences(self) -> Iterator[list[str]]:
        """This rank's sentences of the current epoch, after the ones already handed out."""
        s = self.settings
        sentences = itertools.islice(
            sentence_stream(self._open_lines()), s["rank"], None, s["world_size"]
        )
        if s["shuffle_buffer"]:
            sentences = shuffle_blocks(sentences, s["shuffle_buffer"], s["seed"], self._epoch)
        # Resuming replays the stream up to where the state was taken.
        return itertools.islice(sentences, self._sentences_read, None)

    def _open_lines(self) -> Iterable[str]:
        source = self._lines
        if isinstance(source, (str, os.PathLike)):
            return iter_lines(source)
        if callable(source):
            return source()
        if iter(source) is source:  # a generator or other one-shot iterator
            if self._one_shot_opened:
                raise ValueError(
                    "cannot restart a one-shot iterator of lines for a new epoch or a resume; "
                    "pass a path, a glob or a callable returning the lines instead"
                )
            self._one_shot_opened = True
        return source

    def _next_batch(self) -> Batch:
        s = self.settings
        B, T, W = s["batch_size"], s["unroll_steps"], s["max_chars"]
        token_ids = np.zeros((B, T), dtype=np.int64)
        char_ids = np.zeros((B, T, W), dtype=np.int64)
        next_token_ids = np.zeros((B, T), dtype=np.int64)
        mask = np.zeros((B, T), dtype=bool)
        for b in range(B):
            self._fill_row(b, token_ids[b], char_ids[b], next_token_ids[b], mask[b])
        return Batch(
            torch.from_numpy(token_ids),
            torch.from_numpy(char_ids),
            torch.from_numpy(next_token_ids),
            torch.from_numpy(mask),
        )

    def _fill_row(
        self,
        b: int,
        token_ids: np.ndarray,
        char_ids: np.ndarray,
        next_token_ids: np.ndarray,
        mask: np.ndarray,
    ) -> None:
        """Write row b's next T positions (views (T,), (T, W), (T,), (T,)) from its stream."""
        T = len(token_ids)
        position = 0
        while position < T:
            row = self._rows[b]
            if row is None or row.num_inputs_left < 1:
                sentence = next(self._sentences, None)
                if sentence is None:  # corpus exhausted: the rest of the row stays padding
                    return
                self._sentences_read += 1
                row = self._rows[b] = self._make_row(frame_sentence(sentence, self.settings["reverse"]))
            n = min(row.num_inputs_left, T - position)
            start, end = row.offset, row.offset + n
            token_ids[position : position + n] = row.token_ids[start:end]
            char_ids[position : position + n] = row.char_ids[start:end]
            next_token_ids[position : position + n] = row.token_ids[start + 1 : end + 1]
            mask[position : position + n] = True
            row.offset = end
            position += n

    def _make_row(self, tokens: list[str]) -> _Row:
        """Ids of an already framed (and maybe reversed) sentence."""
        token_ids = np.array(self.vocab.encode(tokens), dtype=np.int64)  # (n,)
        if tokens:
            char_ids = np.stack([self._token_chars(t) for t in tokens])  # (n, W)
        else:
            char_ids = np.zeros((0, self.settings["max_chars"]), dtype=np.int64)
        return _Row(list(tokens), token_ids, char_ids)

    def _compute_chars(self, token: str) -> np.ndarray:
        chars = np.array(token_to_char_ids(token, self.settings["max_chars"]), dtype=np.int64)
        chars.flags.writeable = False  # shared through the cache
        return chars
