"""CoNLL-U (Universal Dependencies) sentences as tokens and their UPOS tags.

Each token line has 10 tab-separated fields: ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC.
Only syntactic words are kept: IDs that are integers. Multiword-token lines (``3-4``, the surface
form "don't" over the words "do" "n't") and empty nodes (``8.1``, enhanced graphs only) are
skipped, so that the tokens are exactly the words that carry a UPOS tag.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from elmo.tasks.datasets.source import DataFormatError, require_some, sentence_blocks

NUM_FIELDS = 10
FORM, UPOS = 1, 3  # column indices


class TaggedSentence(NamedTuple):
    tokens: list[str]
    tags: list[str]  # one tag per token: UPOS here, chunk tags in conll2000.py


def read_conllu(path: str | os.PathLike) -> list[TaggedSentence]:
    """Every sentence of a CoNLL-U file, as words and UPOS tags.

    Raises:
        DataFormatError: a token line without 10 fields, an ID that is not ``n``, ``n-m`` or
            ``n.k``, an empty form or tag, or word IDs that do not count 1, 2, 3, ...
        InputFileError: a missing, empty or not UTF-8 file, or one without a sentence.
    """
    sentences = [_sentence(block, path) for block in sentence_blocks(path)]
    return require_some([s for s in sentences if s.tokens], path, "sentences")


def _sentence(block: list[tuple[int, str]], path: str | os.PathLike) -> TaggedSentence:
    """One sentence's ``(line number, line)`` pairs -> its words and UPOS tags (comment lines,
    multiword tokens and empty nodes skipped)."""
    tokens: list[str] = []
    tags: list[str] = []
    for number, line in block:
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != NUM_FIELDS:
            raise DataFormatError(
                path,
                number,
                f"expected {NUM_FIELDS} tab-separated fields, got {len(fields)}: {line!r}",
            )
        if not _is_word_id(fields[0], path, number):
            continue  # a multiword token or an empty node: not a tagged word
        if int(fields[0]) != len(tokens) + 1:
            raise DataFormatError(
                path, number, f"word ID {fields[0]} out of sequence (expected {len(tokens) + 1})"
            )
        if not fields[FORM] or not fields[UPOS] or fields[UPOS] == "_":
            raise DataFormatError(path, number, f"empty word form or UPOS tag: {line!r}")
        tokens.append(fields[FORM])
        tags.append(fields[UPOS])
    return TaggedSentence(tokens, tags)


def _is_word_id(token_id: str, path: str | os.PathLike, number: int) -> bool:
    """True for a word ID (``7``), False for a multiword range (``3-4``) or empty node (``8.1``)."""
    if token_id.isdecimal():  # not isdigit: int() refuses "²"
        return True
    for separator in ("-", "."):
        parts = token_id.split(separator)
        if len(parts) == 2 and all(part.isdecimal() for part in parts):
            return False
    raise DataFormatError(path, number, f"bad token ID {token_id!r} (expected n, n-m or n.k)")
