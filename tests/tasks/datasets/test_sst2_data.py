"""SST-2: header, GLUE's trailing space before the tab, 0/1 labels; a bad line is named."""

from __future__ import annotations

import pytest
from shared_data import shared_path

from elmo.files import InputFileError
from elmo.tasks.datasets.source import DataFormatError
from elmo.tasks.datasets.sst2 import SentimentExample, read_sst2


def test_reads_tokens_and_labels(write_file):
    path = write_file("t.tsv", ["sentence\tlabel", "a fine film \t1", "dull \t0"])
    assert read_sst2(path) == [
        SentimentExample(["a", "fine", "film"], 1),
        SentimentExample(["dull"], 0),
    ]


@pytest.mark.parametrize(
    "lines, line_number, message",
    [
        (["index\tsentence", "0\tfine"], 1, "expected the header"),
        (["sentence\tlabel", "good\t1", "no label here"], 3, "expected 'sentence<TAB>label'"),
        (["sentence\tlabel", "good\t2"], 2, "label must be 0 or 1, got '2'"),
        (["sentence\tlabel", " \t1"], 2, "empty sentence"),
        (["sentence\tlabel", "good\t1", "", "bad\t0"], 3, "blank line"),
        (["sentence\tlabel", "good\t1", "  "], 3, "blank line"),
    ],
)
def test_a_malformed_line_is_named(write_file, lines, line_number, message):
    path = write_file("t.tsv", lines)
    with pytest.raises(DataFormatError, match=message) as error:
        read_sst2(path)
    assert str(error.value).startswith(f"{path}:{line_number}: ")


def test_a_header_alone_or_an_empty_file_is_named(write_file, tmp_path):
    with pytest.raises(InputFileError, match=r"t\.tsv: no examples after the header"):
        read_sst2(write_file("t.tsv", ["sentence\tlabel"]))
    (tmp_path / "e.tsv").write_bytes(b"")
    with pytest.raises(InputFileError, match=r"e\.tsv: the file is empty"):
        read_sst2(tmp_path / "e.tsv")


def test_the_shared_dev_file_has_the_readme_counts():
    examples = read_sst2(shared_path("data", "sst2", "dev.tsv"))
    assert len(examples) == 872 and sum(e.label for e in examples) == 444
