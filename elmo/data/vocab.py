"""The word vocabulary of the language-model softmax: frequency-sorted tokens with three specials.

Ids follow descending corpus frequency (ties alphabetical), after the specials ``<S>``, ``</S>``
and ``<UNK>`` at ids 0, 1, 2. Frequency order matters: the sampled softmax draws negatives from a
log-uniform (Zipfian) distribution over ids, which only approximates the unigram distribution if
id 0 is the most frequent word.

The file format is bilm-tf's: a plain text file, one token per line, in id order. A line may
carry the token's corpus count after a tab (``token<TAB>count``); files without counts (such as
the published ones) load as well.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import torch

from elmo.data.characters import BOS_TOKEN, EOS_TOKEN
from elmo.files import ModelFileError, atomic_write, decode_line
from elmo.progress import progress as progress_bar

UNK_TOKEN = "<UNK>"
SPECIAL_TOKENS = (BOS_TOKEN, EOS_TOKEN, UNK_TOKEN)  # ids 0, 1, 2 of a built vocabulary


class Vocabulary:
    """A fixed token <-> id mapping, optionally with the corpus count of every token.

    Args:
        tokens: every token in id order, the three specials included (anywhere: published files
            put ``</S>`` first; ``build`` puts them at 0, 1, 2).
        counts: optional corpus count of each token, aligned with ``tokens``.
    """

    def __init__(self, tokens: Sequence[str], counts: Sequence[int] | None = None) -> None:
        self._tokens = list(tokens)
        self._counts = None if counts is None else [int(c) for c in counts]
        self._ids = _index_tokens(self._tokens, lambda i: f"token index {i}")
        if self._counts is not None and len(self._counts) != len(self._tokens):
            raise ValueError(f"got {len(self._counts)} counts for {len(self._tokens)} tokens")
        missing = [s for s in SPECIAL_TOKENS if s not in self._ids]
        if missing:
            raise ValueError(f"vocabulary lacks the special tokens {missing}")
        self.bos_id = self._ids[BOS_TOKEN]
        self.eos_id = self._ids[EOS_TOKEN]
        self.unk_id = self._ids[UNK_TOKEN]

    @classmethod
    def build(
        cls,
        lines: Iterable[str],
        min_count: int = 1,
        max_size: int | None = None,
        progress: bool = False,
        tokenize: Callable[[str], list[str]] = str.split,
    ) -> Vocabulary:
        """Count the whitespace tokens of a stream of lines and keep the frequent ones.

        Reads ``lines`` once, holding only the counts (memory grows with the number of types, not
        the corpus). ``<S>`` and ``</S>`` are counted once per non-empty line (they frame every
        sentence), ``<UNK>`` gets the total count of the words left out.

        Args:
            lines: the corpus, one sentence per line; e.g. ``stream.iter_lines(glob)``.
            min_count: keep words seen at least this often.
            max_size: keep at most this many tokens, the three specials included.
            progress: report progress over lines (``elmo.progress``).
            tokenize: a line's tokens (default: its whitespace tokens).
        """
        if max_size is not None and max_size < len(SPECIAL_TOKENS):
            raise ValueError(f"max_size must be >= {len(SPECIAL_TOKENS)}, got {max_size}")
        word_counts, num_sentences = count_tokens(lines, tokenize, progress)
        for special in SPECIAL_TOKENS:  # a literal "<S>" in the text is not a word of its own
            word_counts.pop(special, None)
        ranked = sorted(word_counts.items(), key=lambda item: (-item[1], item[0]))
        kept = [(w, c) for w, c in ranked if c >= min_count]
        if max_size is not None:
            kept = kept[: max_size - len(SPECIAL_TOKENS)]
        num_unknown = sum(word_counts.values()) - sum(c for _, c in kept)
        tokens = list(SPECIAL_TOKENS) + [w for w, _ in kept]
        counts = [num_sentences, num_sentences, num_unknown] + [c for _, c in kept]
        return cls(tokens, counts)

    @classmethod
    def from_inventory(
        cls,
        inventory: Sequence[str],
        lines: Iterable[str],
        tokenize: Callable[[str], list[str]],
        progress: bool = False,
    ) -> Vocabulary:
        """The specials and exactly the tokens of ``inventory`` (a subword model's pieces).

        Every piece stays, seen or not, so a text never meets ``<UNK>`` where the tokenizer only
        makes inventory pieces. Ids follow the pieces' frequency in ``lines`` (ties and unseen
        pieces in inventory order), as ``build``'s do; ``<UNK>`` counts the tokens outside it.

        Args:
            inventory: every piece, without the specials.
            lines: the corpus, read once to count the pieces.
            tokenize: a line's pieces.
            progress: report progress over lines (``elmo.progress``).
        """
        counts, num_sentences = count_tokens(lines, tokenize, progress)
        pieces = [p for p in dict.fromkeys(inventory) if p not in SPECIAL_TOKENS]
        # A piece spelled like a special (only from text full of "<S>") is read as the special.
        order = sorted(range(len(pieces)), key=lambda i: (-counts.get(pieces[i], 0), i))
        kept = [pieces[i] for i in order]
        num_unknown = sum(counts.values()) - sum(counts.get(p, 0) for p in kept)
        tokens = list(SPECIAL_TOKENS) + kept
        specials = [num_sentences, num_sentences, num_unknown]
        return cls(tokens, specials + [counts.get(p, 0) for p in kept])

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """Read a vocabulary file: one ``token`` or ``token<TAB>count`` per line, in id order.

        Raises:
            ModelFileError: a line that is not UTF-8 or not a token (and count), a repeated
                token, or a missing special, naming the file and the line.
        """
        try:
            return cls._read(path)
        except ModelFileError:
            raise
        except ValueError as error:  # the message names the file and line
            raise ModelFileError(str(error)) from None

    @classmethod
    def _read(cls, path: str | os.PathLike) -> Vocabulary:
        tokens: list[str] = []
        counts: list[int | None] = []
        with open(path, "rb") as handle:
            for lineno, raw in enumerate(handle, start=1):
                token, count = _parse_line(decode_line(raw, path, lineno), f"{path}:{lineno}")
                tokens.append(token)
                counts.append(count)
        _index_tokens(tokens, lambda i: f"{path}:{i + 1}")
        with_count = [c is not None for c in counts]
        if any(with_count) and not all(with_count):
            lineno = with_count.index(not with_count[0]) + 1
            raise ValueError(f"{path}:{lineno}: some lines have a count and some do not")
        try:
            return cls(tokens, counts if all(with_count) and counts else None)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None

    def save(self, path: str | os.PathLike) -> None:
        """Write the file ``load`` reads (with counts when this vocabulary has them), atomically:
        a reader, or a rerun after a crash, never finds half a vocabulary."""
        with atomic_write(path, "w") as handle:
            for i, token in enumerate(self._tokens):
                suffix = "" if self._counts is None else f"\t{self._counts[i]}"
                handle.write(f"{token}{suffix}\n")

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._ids

    @property
    def tokens(self) -> list[str]:
        """All tokens in id order (a copy)."""
        return list(self._tokens)

    @property
    def counts(self) -> list[int] | None:
        """Corpus counts in id order (a copy), or None when the vocabulary has none."""
        return None if self._counts is None else list(self._counts)

    def token_to_id(self, token: str) -> int:
        """The id of ``token``; the ``<UNK>`` id for tokens not in the vocabulary."""
        return self._ids.get(token, self.unk_id)

    def id_to_token(self, token_id: int) -> str:
        """The token with id ``token_id``."""
        if not 0 <= token_id < len(self._tokens):
            raise IndexError(f"token id {token_id} is outside the vocabulary [0, {len(self)})")
        return self._tokens[token_id]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Ids of a token sequence (unknown tokens -> ``<UNK>`` id)."""
        get, unk = self._ids.get, self.unk_id
        return [get(token, unk) for token in tokens]

    def decode(self, token_ids: Iterable[int]) -> list[str]:
        """Tokens of an id sequence."""
        return [self.id_to_token(int(i)) for i in token_ids]

    def unigram_log_probs(self, smoothing: float = 0.0) -> torch.Tensor:
        """(V,) float log unigram probabilities from the counts, add-``smoothing`` smoothed.

        Tokens with count 0 get -inf unless ``smoothing`` > 0.
        """
        if self._counts is None:
            raise ValueError("this vocabulary has no counts (load a file with token<TAB>count)")
        counts = torch.tensor(self._counts, dtype=torch.float64) + smoothing  # (V,)
        total = counts.sum()
        if total <= 0:
            raise ValueError("all counts are zero; cannot form unigram probabilities")
        return (counts.log() - math.log(total)).float()


def count_tokens(
    lines: Iterable[str], tokenize: Callable[[str], list[str]] = str.split, progress: bool = False
) -> tuple[Counter[str], int]:
    """(count of every token, number of non-empty sentences) of a stream of lines."""
    if progress:
        lines = progress_bar(lines, desc="counting tokens", unit="lines")
    counts: Counter[str] = Counter()
    num_sentences = 0
    for line in lines:
        tokens = tokenize(line)
        num_sentences += bool(tokens)
        counts.update(tokens)
    return counts, num_sentences


def _parse_line(line: str, where: str) -> tuple[str, int | None]:
    """``token`` or ``token<TAB>count`` of one vocabulary file line."""
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) > 2:
        raise ValueError(f"{where}: expected 'token' or 'token<TAB>count', got {line!r}")
    token = fields[0].strip()  # bilm-tf strips each line, too
    if not token:
        raise ValueError(f"{where}: empty token")
    if len(fields) == 1:
        return token, None
    count = fields[1].strip()
    if not count.isdecimal():  # not isdigit: int() refuses digits such as "²"
        raise ValueError(f"{where}: count must be a non-negative integer, got {count!r}")
    return token, int(count)


def _index_tokens(tokens: Sequence[str], where: Callable[[int], str]) -> dict[str, int]:
    """token -> id; raises ValueError (located by ``where(index)``) on empty or repeated tokens."""
    ids: dict[str, int] = {}
    for i, token in enumerate(tokens):
        if not isinstance(token, str) or not token:
            raise ValueError(f"{where(i)}: tokens must be non-empty strings, got {token!r}")
        if token in ids:
            raise ValueError(
                f"{where(i)}: duplicate token {token!r} (first at {where(ids[token])})"
            )
        ids[token] = i
    return ids
