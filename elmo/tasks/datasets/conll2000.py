"""CoNLL-2000 chunking files: sentences as words and their IOB2 chunk tags.

One token per line, ``word POS chunk-tag`` separated by single spaces, a blank line after each
sentence. The chunk tag is ``O`` (outside every chunk) or ``B-TYPE`` / ``I-TYPE`` (beginning /
inside of a chunk of TYPE: NP, VP, PP, ...). The POS column (Brill tagger output) is read and
checked but not kept: the probe's input is the words alone.
"""

from __future__ import annotations

import os

from elmo.tasks.datasets.conllu import TaggedSentence
from elmo.tasks.datasets.source import DataFormatError, require_some, sentence_blocks

NUM_FIELDS = 3  # word, POS tag, chunk tag
OUTSIDE = "O"
PREFIXES = ("B", "I")  # IOB2: B- begins a chunk, I- continues it


def read_conll2000(path: str | os.PathLike) -> list[TaggedSentence]:
    """Every sentence of a CoNLL-2000 file, as words and chunk tags.

    Raises:
        DataFormatError: a token line without exactly 3 space-separated fields, or a chunk tag
            that is neither ``O`` nor ``B-TYPE`` / ``I-TYPE``, naming file and line.
        InputFileError: a missing, empty or not UTF-8 file, or one without a sentence.
    """
    sentences = [_sentence(block, path) for block in sentence_blocks(path)]
    return require_some(sentences, path, "sentences")


def _sentence(block: list[tuple[int, str]], path: str | os.PathLike) -> TaggedSentence:
    """One sentence's ``(line number, line)`` pairs -> its words and chunk tags."""
    tokens: list[str] = []
    tags: list[str] = []
    for number, line in block:
        fields = line.split(" ")
        if len(fields) != NUM_FIELDS or not all(fields):
            raise DataFormatError(
                path, number, f"expected 'word POS chunk-tag' (3 fields), got {line!r}"
            )
        word, _, tag = fields
        if not is_chunk_tag(tag):
            raise DataFormatError(
                path, number, f"chunk tag must be O, B-TYPE or I-TYPE, got {tag!r}"
            )
        tokens.append(word)
        tags.append(tag)
    return TaggedSentence(tokens, tags)


def is_chunk_tag(tag: str) -> bool:
    """True for ``O``, ``B-TYPE`` and ``I-TYPE`` (TYPE not empty)."""
    if tag == OUTSIDE:
        return True
    prefix, dash, kind = tag.partition("-")
    return prefix in PREFIXES and dash == "-" and bool(kind)
