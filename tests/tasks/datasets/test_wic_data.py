"""WiC: the five-field format, target indices, gold alignment, and errors naming the line."""

from __future__ import annotations

import pytest
from shared_data import shared_path

from elmo.files import InputFileError
from elmo.tasks.datasets.source import DataFormatError
from elmo.tasks.datasets.wic import read_wic

LINES = [
    "bank\tN\t4-1\tI sat on the bank .\tThe bank closed .",
    "run\tV\t0-2\tRun fast !\tThey will run the company",
]


def test_reads_pairs_and_labels(write_file):
    examples = read_wic(write_file("d.txt", LINES), write_file("g.txt", ["T", "F"]))
    first = examples[0]
    assert first.word == "bank" and first.part_of_speech == "N" and first.label == 1
    assert first.sentence1[first.index1] == "bank" and first.sentence2[first.index2] == "bank"
    assert examples[1].sentence2[examples[1].index2] == "run" and examples[1].label == 0


def test_labels_are_optional(write_file):
    assert [e.label for e in read_wic(write_file("d.txt", LINES))] == [None, None]


@pytest.mark.parametrize(
    "bad, message",
    [
        ("bank\tN\t3-1\tonly four fields", "expected 5 tab-separated fields, got 4"),
        ("bank\tN\t3\ta b c bank\tbank", "expected target indices i1-i2, got '3'"),
        ("bank\tN\t9-0\ta bank\tbank", "target index 9 is past the end of sentence 1"),
        ("", "blank line"),
    ],
)
def test_a_malformed_data_line_is_named(write_file, bad, message):
    path = write_file("d.txt", [LINES[0], bad])
    with pytest.raises(DataFormatError, match=message) as error:
        read_wic(path)
    assert str(error.value).startswith(f"{path}:2: ")


def test_bad_or_missing_gold_labels(write_file):
    data = write_file("d.txt", LINES)
    with pytest.raises(DataFormatError, match=r"g.txt:2: expected a label T or F, got 'yes'"):
        read_wic(data, write_file("g.txt", ["T", "yes"]))
    with pytest.raises(DataFormatError, match="1 labels for 2 pairs"):
        read_wic(data, write_file("g.txt", ["T"]))


def test_a_file_without_pairs_is_named(write_file):
    with pytest.raises(InputFileError, match=r"d\.txt:1: blank line"):
        read_wic(write_file("d.txt", [""]))
    with pytest.raises(InputFileError, match=r"d\.txt: the file is empty"):
        read_wic(write_file("d.txt", [], final_newline=False))


def test_the_shared_dev_split_reads_whole_and_balanced():
    root = shared_path("data", "wic")
    examples = read_wic(root / "dev" / "dev.data.txt", root / "dev" / "dev.gold.txt")
    assert len(examples) == 638 and sum(e.label for e in examples) == 319
