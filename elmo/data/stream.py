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

import glob
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
import torch

from elmo.data.characters import BOS_TOKEN, EOS_TOKEN, MAX_WORD_LENGTH, token_to_char_ids
from elmo.data.vocab import Vocabulary
from elmo.files import InputFileError, decode_line

Item = TypeVar("Item")
PathsOrGlob = str | os.PathLike | Sequence[str | os.PathLike]
# A path or glob (read with iter_lines), a callable returning the lines of one epoch, or lines.
LineSource = str | os.PathLike | Callable[[], Iterable[str]] | Iterable[str]


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
        if os.path.isdir(path):
            raise InputFileError(f"{path}: is a directory, not a text file")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"not a file: {path!r}")
    return [Path(p) for p in paths]


def iter_lines(paths_or_glob: PathsOrGlob) -> Iterator[str]:
    """Lazily yield the lines (without their newline) of one file, a glob's files, or a list.

    Missing files raise FileNotFoundError here, before any line is read; a directory, and
    invalid UTF-8 when it is read, raise InputFileError naming the file (and line).
    """
    paths = expand_paths(paths_or_glob)

    def read() -> Iterator[str]:
        for path in paths:
            try:
                with open(path, encoding="utf-8") as handle:
                    for line in handle:
                        yield line.rstrip("\n")
            except UnicodeDecodeError:
                _raise_at_invalid_utf8(path)

    return read()


def count_lines(paths_or_glob: PathsOrGlob) -> int:
    """How many lines ``iter_lines`` yields for these files (a progress bar's total).

    Counts newline bytes, a megabyte at a time: a small fraction of the time that reading the
    lines as text takes. (A file with lone ``\r`` line ends has more lines than counted.)
    """
    total = 0
    for path in expand_paths(paths_or_glob):
        last = b"\n"
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                total += chunk.count(b"\n")
                last = chunk[-1:]
        total += last != b"\n"  # a last line without its newline
    return total


def _raise_at_invalid_utf8(path: Path) -> None:
    """Raise InputFileError naming ``path``'s first line that is not UTF-8 (``decode_line``)."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            decode_line(raw, path, number)
    raise InputFileError(f"{path}: invalid UTF-8")


def open_lines(source: LineSource) -> Iterable[str]:
    """The lines of a ``LineSource``: a path or glob read lazily, a callable's lines, or itself."""
    if isinstance(source, (str, os.PathLike)):
        return iter_lines(source)
    return source() if callable(source) else source


def sentence_stream(
    lines: Iterable[str], tokenize: Callable[[str], list[str]] = str.split
) -> Iterator[list[str]]:
    """The tokens of every non-empty line (WikiText headings stay as sentences).

    ``tokenize`` gives a line's tokens: its whitespace tokens by default, or a tokenizer's units
    (``elmo.data.tokenizer.Tokenizer.units``).
    """
    for line in lines:
        tokens = tokenize(line)
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


def target_log_probs(vocab: Vocabulary, smoothing: float = 1.0) -> torch.Tensor:
    """(V,) float log unigram distribution of the targets the two streams give the shared softmax.

    Each direction predicts every word of a sentence once and the boundary it ends at once: the
    forward LM ``</S>``, the backward one ``<S>`` (the boundary a direction starts from is never
    a target). The objective weighs the directions equally and one softmax serves both, so its
    best unigram is the pooled one: a word counts its corpus count, each boundary half the number
    of sentences. ``vocab.counts`` has both boundaries once per sentence (``Vocabulary.build``);
    the counts are add-``smoothing`` smoothed so that no token, ``<UNK>`` included, is -inf.

    Raises:
        ValueError: the vocabulary has no counts (a file without ``token<TAB>count`` lines).
    """
    if vocab.counts is None:
        raise ValueError(
            "the vocabulary has no counts (a file of tokens without token<TAB>count lines), so it "
            "gives no unigram frequencies"
        )
    counts = torch.tensor(vocab.counts, dtype=torch.float64)  # (V,)
    counts[[vocab.bos_id, vocab.eos_id]] /= 2
    counts += smoothing
    return (counts.log() - counts.sum().log()).float()


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
        token_cache_size: token types whose ids are cached (bounds the memory).
        tokenize: a line's tokens; default its whitespace tokens (``Tokenizer.units`` for pieces).
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
        token_cache_size: int = 200_000,
        tokenize: Callable[[str], list[str]] = str.split,
    ) -> None:
        for name, value in [("batch_size", batch_size), ("unroll_steps", unroll_steps)]:
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        if shuffle_buffer < 0 or seed < 0:
            raise ValueError(f"shuffle_buffer and seed must be >= 0, got {shuffle_buffer}, {seed}")
        self.vocab = vocab
        self.settings = {
            "batch_size": batch_size,
            "unroll_steps": unroll_steps,
            "max_chars": max_chars,
            "reverse": reverse,
            "rank": rank,
            "world_size": world_size,
            "shuffle_buffer": shuffle_buffer,
            "seed": seed,
        }
        self._lines = lines
        self._tokenize = tokenize
        self._one_shot_opened = False
        self._table = _TokenTable(vocab, max_chars, token_cache_size)
        self._start_epoch(0)

    @property
    def epoch(self) -> int:
        """The epoch the next batch belongs to (0-based)."""
        return self._epoch

    def __iter__(self) -> Iterator[Batch]:
        if self._sentences is None:
            self._sentences = self._open_sentences()
        while True:
            fresh = self._sentences_read == 0
            batch = self._next_batch()
            if not batch.mask.any():
                if fresh:  # a whole epoch without one sentence
                    raise InputFileError(
                        f"{self._describe_source()}: no sentences to train on (the text is "
                        f"empty or every line is blank)"
                    )
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
        return {
            "epoch": self._epoch,
            "sentences_read": self._sentences_read,
            "rows": rows,
            "settings": dict(self.settings),
        }

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
        self._rows = [
            None if tokens is None else self._make_row(tokens) for tokens in state["rows"]
        ]

    def _start_epoch(self, epoch: int) -> None:
        self._epoch = epoch
        self._sentences_read = 0  # sentences handed to rows this epoch
        self._sentences: Iterator[list[str]] | None = None  # opened lazily by __iter__
        self._rows: list[_Row | None] = [None] * self.settings["batch_size"]

    def _open_sentences(self) -> Iterator[list[str]]:
        """This rank's sentences of the current epoch, after the ones already handed out."""
        s = self.settings
        sentences = itertools.islice(
            sentence_stream(self._open_lines(), self._tokenize), s["rank"], None, s["world_size"]
        )
        if s["shuffle_buffer"]:
            sentences = shuffle_blocks(sentences, s["shuffle_buffer"], s["seed"], self._epoch)
        # Resuming replays the stream up to where the state was taken.
        return itertools.islice(sentences, self._sentences_read, None)

    def _describe_source(self) -> str:
        source = self._lines
        if isinstance(source, (str, os.PathLike)):
            return os.fspath(source)
        return "the training text"

    def _open_lines(self) -> Iterable[str]:
        source = self._lines
        if isinstance(source, (str, os.PathLike)) or callable(source):
            return open_lines(source)
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
        segments: list[tuple[_Row, int, int]] = []  # (row, start, end) of the inputs, row-major
        filled = np.array([self._fill_row(b, T, segments) for b in range(B)])  # (B,)
        # Every row is filled from position 0, so its real positions are a prefix and
        # assigning through the mask lays the segments out in order.
        mask = np.arange(T)[None, :] < filled[:, None]  # (B, T)
        token_ids = np.zeros((B, T), dtype=np.int64)
        next_token_ids = np.zeros((B, T), dtype=np.int64)
        char_ids = np.zeros((B, T, W), dtype=np.int64)
        if segments:
            token_ids[mask] = np.concatenate([r.token_ids[a:z] for r, a, z in segments])
            next_token_ids[mask] = np.concatenate(
                [r.token_ids[a + 1 : z + 1] for r, a, z in segments]
            )
            char_ids[mask] = np.concatenate([r.char_ids[a:z] for r, a, z in segments])  # (n, W)
        return Batch(
            torch.from_numpy(token_ids),
            torch.from_numpy(char_ids),
            torch.from_numpy(next_token_ids),
            torch.from_numpy(mask),
        )

    def _fill_row(self, b: int, T: int, segments: list[tuple[_Row, int, int]]) -> int:
        """Append row b's next (up to) T inputs to ``segments``; return how many there are.

        Fewer than T only once the corpus is exhausted: the rest of the row is padding.
        """
        position = 0
        while position < T:
            row = self._rows[b]
            if row is None or row.num_inputs_left < 1:
                sentence = next(self._sentences, None)
                if sentence is None:
                    break
                self._sentences_read += 1
                row = self._rows[b] = self._make_row(
                    frame_sentence(sentence, self.settings["reverse"])
                )
            n = min(row.num_inputs_left, T - position)
            segments.append((row, row.offset, row.offset + n))
            row.offset += n
            position += n
        return position

    def _make_row(self, tokens: list[str]) -> _Row:
        """Ids of an already framed (and maybe reversed) sentence."""
        token_ids, char_ids = self._table.lookup(tokens)  # (n,), (n, W)
        return _Row(tokens, token_ids, char_ids)


class _TokenTable:
    """Vocabulary and character ids of recently seen token types: a cache of bounded size.

    One dict lookup per token gives a table row; a sentence's ids are then two array gathers.
    When ``capacity`` types are stored the table starts afresh, so memory stays bounded.
    """

    def __init__(self, vocab: Vocabulary, max_chars: int, capacity: int) -> None:
        self.vocab, self.max_chars, self.capacity = vocab, max_chars, max(capacity, 1)
        self._rows: dict[str, int] = {}
        self._token_ids = np.zeros(1024, dtype=np.int64)  # (types,)
        self._char_ids = np.zeros((1024, max_chars), dtype=np.int16)  # (types, W); ids < 262

    def lookup(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(n,) int64 vocabulary ids and (n, W) int64 character ids of ``tokens``."""
        if len(self._rows) + len(tokens) > self.capacity:
            self._rows.clear()
        if len(tokens) > self.capacity:  # too long to cache: encode directly
            chars = [token_to_char_ids(t, self.max_chars) for t in tokens]
            return np.array(self.vocab.encode(tokens), dtype=np.int64), np.array(chars, np.int64)
        rows = self._rows
        try:
            indices = [rows[t] for t in tokens]
        except KeyError:
            indices = [rows[t] if t in rows else self._add(t) for t in tokens]
        indices = np.array(indices, dtype=np.int64)
        return self._token_ids[indices], self._char_ids[indices].astype(np.int64)

    def _add(self, token: str) -> int:
        row = self._rows[token] = len(self._rows)
        if row == len(self._token_ids):  # grow by doubling
            self._token_ids = np.resize(self._token_ids, 2 * row)
            self._char_ids = np.resize(self._char_ids, (2 * row, self.max_chars))
        self._token_ids[row] = self.vocab.token_to_id(token)
        self._char_ids[row] = token_to_char_ids(token, self.max_chars)
        return row
