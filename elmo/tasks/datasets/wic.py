"""Word in Context (Pilehvar and Camacho-Collados, 2019): one target word in two sentences.

``X.data.txt``: ``word <TAB> N|V <TAB> i1-i2 <TAB> sentence1 <TAB> sentence2``, where i1 and i2
are the 0-based positions of the target in the whitespace-tokenized sentences. ``X.gold.txt``:
``T`` (same sense) or ``F``, one per line, aligned with the data file. Test gold is not public,
so the gold file is optional.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from elmo.tasks.datasets.source import DataFormatError, numbered_lines, require_some

LABELS = {"T": 1, "F": 0}


class WicExample(NamedTuple):
    word: str  # the target's lemma
    part_of_speech: str  # N or V
    sentence1: list[str]
    sentence2: list[str]
    index1: int  # position of the target in sentence1
    index2: int  # position of the target in sentence2
    label: int | None  # 1 same sense, 0 different, None without a gold file


def read_wic(
    data_path: str | os.PathLike, gold_path: str | os.PathLike | None = None
) -> list[WicExample]:
    """The pairs of a WiC split, with labels when ``gold_path`` is given.

    Raises:
        DataFormatError: a line without 5 fields, bad indices, an index past the sentence's end,
            a gold label other than T/F, or gold and data files of different lengths.
        InputFileError: a missing, empty or not UTF-8 file.
    """
    examples = [_parse(line, data_path, number) for number, line in numbered_lines(data_path)]
    require_some(examples, data_path, "pairs")
    if gold_path is None:
        return examples
    labels = []
    for number, line in numbered_lines(gold_path):
        if line.strip() not in LABELS:
            raise DataFormatError(gold_path, number, f"expected a label T or F, got {line!r}")
        labels.append(LABELS[line.strip()])
    if len(labels) != len(examples):
        raise DataFormatError(
            gold_path, len(labels), f"{len(labels)} labels for {len(examples)} pairs in {data_path}"
        )
    return [example._replace(label=label) for example, label in zip(examples, labels)]


def _parse(line: str, path: str | os.PathLike, number: int) -> WicExample:
    if not line.strip():
        raise DataFormatError(path, number, "blank line (each line is a pair: 5 tab-separated fields)")
    fields = line.split("\t")
    if len(fields) != 5:
        raise DataFormatError(
            path, number, f"expected 5 tab-separated fields, got {len(fields)}: {line!r}"
        )
    word, part_of_speech, indices, text1, text2 = fields
    parts = indices.split("-")
    if len(parts) != 2 or not all(part.isdecimal() for part in parts):
        raise DataFormatError(path, number, f"expected target indices i1-i2, got {indices!r}")
    index1, index2 = int(parts[0]), int(parts[1])
    sentence1, sentence2 = text1.split(), text2.split()
    for index, sentence, which in ((index1, sentence1, 1), (index2, sentence2, 2)):
        if index >= len(sentence):
            raise DataFormatError(
                path,
                number,
                f"target index {index} is past the end of sentence {which} "
                f"({len(sentence)} tokens)",
            )
    return WicExample(word, part_of_speech, sentence1, sentence2, index1, index2, None)
