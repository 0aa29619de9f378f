"""SST-2 as in GLUE: a header ``sentence <TAB> label``, then a tokenized sentence and 0/1 a line.

The text is lower-cased and PTB-tokenized already, so tokens are the whitespace split (GLUE's
trailing space before the tab disappears with it).
"""

from __future__ import annotations

import os
from typing import NamedTuple

from elmo.tasks.datasets.source import DataFormatError, numbered_lines, require_some

HEADER = ["sentence", "label"]


class SentimentExample(NamedTuple):
    tokens: list[str]
    label: int  # 1 positive, 0 negative


def read_sst2(path: str | os.PathLike) -> list[SentimentExample]:
    """The labelled sentences of an SST-2 train or dev file.

    Raises:
        InputFileError: a missing header, a blank line, a line without exactly one tab, an empty
            sentence or a label other than 0/1 (``DataFormatError``, naming file and line); no
            example at all.
    """
    examples = []
    for number, line in numbered_lines(path):
        fields = line.split("\t")
        if number == 1:
            if [field.strip() for field in fields] != HEADER:
                raise DataFormatError(
                    path, number, f"expected the header 'sentence<TAB>label', got {line!r}"
                )
            continue
        if not line.strip():
            raise DataFormatError(path, number, "blank line (each line is 'sentence<TAB>label')")
        if len(fields) != 2:
            raise DataFormatError(path, number, f"expected 'sentence<TAB>label', got {line!r}")
        tokens, label = fields[0].split(), fields[1].strip()
        if label not in ("0", "1"):
            raise DataFormatError(path, number, f"label must be 0 or 1, got {label!r}")
        if not tokens:
            raise DataFormatError(path, number, "empty sentence")
        examples.append(SentimentExample(tokens, int(label)))
    return require_some(examples, path, "examples after the header")
