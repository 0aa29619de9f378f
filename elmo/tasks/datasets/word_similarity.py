"""Word-similarity benchmarks: ``word1 word2 score`` per line (tabs or spaces), ``#`` comments.

Some of the files have CRLF endings or no final newline, so lines are split on any whitespace.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

from elmo.tasks.datasets.source import DataFormatError, numbered_lines, require_some


class WordPair(NamedTuple):
    word1: str
    word2: str
    score: float  # the human similarity (or relatedness) rating


def read_word_pairs(path: str | os.PathLike) -> list[WordPair]:
    """Every rated pair of a benchmark file.

    Raises:
        DataFormatError: a line that is not two words and a number.
        InputFileError: a missing, empty or not UTF-8 file, or one without a pair.
    """
    pairs = []
    for number, line in numbered_lines(path):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 3:
            raise DataFormatError(path, number, f"expected 'word1 word2 score', got {line!r}")
        try:
            score = float(fields[2])
        except ValueError:
            raise DataFormatError(path, number, f"score {fields[2]!r} is not a number") from None
        if not math.isfinite(score):  # float() reads "nan" and "inf"; Spearman's rho cannot
            raise DataFormatError(path, number, f"score {fields[2]!r} is not a finite number")
        pairs.append(WordPair(fields[0], fields[1], score))
    return require_some(pairs, path, "word pairs")
