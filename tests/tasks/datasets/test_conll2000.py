"""CoNLL-2000: words and IOB2 chunk tags per sentence; bad lines named by file and line."""

from __future__ import annotations

import pytest
from shared_data import shared_path

from elmo.files import InputFileError
from elmo.tasks.datasets.conll2000 import is_chunk_tag, read_conll2000
from elmo.tasks.datasets.source import DataFormatError


def test_reads_words_and_chunk_tags(write_file):
    path = write_file(
        "a.txt",
        ["Confidence NN B-NP", "in IN B-PP", "the DT B-NP", "pound NN I-NP", "", "", "Yes UH O"],
        final_newline=False,  # the last sentence has no closing blank line
    )
    sentences = read_conll2000(path)
    assert [s.tokens for s in sentences] == [["Confidence", "in", "the", "pound"], ["Yes"]]
    assert [s.tags for s in sentences] == [["B-NP", "B-PP", "B-NP", "I-NP"], ["O"]]


def test_the_tag_scheme():
    assert all(is_chunk_tag(tag) for tag in ("O", "B-NP", "I-VP", "B-LST"))
    assert not any(is_chunk_tag(tag) for tag in ("", "B", "B-", "X-NP", "o", "E-NP", "NP"))


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("pound NN", r"expected 'word POS chunk-tag' \(3 fields\), got 'pound NN'"),
        ("pound NN I-NP extra", "3 fields"),
        ("pound\tNN\tI-NP", "3 fields"),  # tabs: the format separates with single spaces
        ("pound  NN I-NP", "3 fields"),  # an empty field
        ("pound NN X-NP", "chunk tag must be O, B-TYPE or I-TYPE, got 'X-NP'"),
        ("pound NN B-", "got 'B-'"),
    ],
)
def test_a_malformed_line_is_named_by_file_and_line(write_file, bad_line, message):
    path = write_file("bad.txt", ["the DT B-NP", "", bad_line])
    with pytest.raises(DataFormatError, match=message) as error:
        read_conll2000(path)
    assert str(error.value).startswith(f"{path}:3: ") and "\n" not in str(error.value)
    assert error.value.line_number == 3
    assert isinstance(error.value, InputFileError)  # the one error type of a bad input file


def test_invalid_utf8_is_named_by_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"the DT B-NP\ncaf\xe9 NN I-NP\n")
    with pytest.raises(InputFileError, match=r"bad\.txt:2: invalid UTF-8 \(byte 0xe9 at column 4\)"):
        read_conll2000(path)


def test_the_shared_files_have_the_readme_counts():
    for name, sentences, tokens in [("train.txt", 8936, 211727), ("test.txt", 2012, 47377)]:
        read = read_conll2000(shared_path("data", "conll2000", name))
        assert (len(read), sum(len(s.tokens) for s in read)) == (sentences, tokens)


def test_a_file_of_blank_lines_is_named_not_read_as_no_sentences(write_file):
    path = write_file("blank.txt", ["", "  ", ""])
    with pytest.raises(InputFileError, match=r"blank\.txt"):
        read_conll2000(path)
