"""Word-pair files: tabs or spaces, CRLF endings, comments; a bad line is named."""

from __future__ import annotations

import pytest
from shared_data import shared_path

from elmo.files import InputFileError
from elmo.tasks.datasets.source import DataFormatError
from elmo.tasks.datasets.word_similarity import WordPair, read_word_pairs


def test_reads_pairs_with_comments_crlf_and_no_final_newline(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_bytes(b"# a comment\r\nold\tnew\t1.5\r\n\r\ncat dog 7\r\nsun\tmoon\t9.25")
    assert read_word_pairs(path) == [
        WordPair("old", "new", 1.5),
        WordPair("cat", "dog", 7.0),
        WordPair("sun", "moon", 9.25),
    ]


@pytest.mark.parametrize(
    "bad, message", [("cat\tdog", "expected 'word1 word2 score'"), ("a b high", "is not a number"),
     ("a b nan", "'nan' is not a finite number"), ("a b -inf", "'-inf' is not a finite number")]
)
def test_a_malformed_line_is_named(write_file, bad, message):
    path = write_file("pairs.txt", ["a\tb\t1", bad])
    with pytest.raises(DataFormatError, match=message) as error:
        read_word_pairs(path)
    assert str(error.value).startswith(f"{path}:2: ")


def test_a_file_of_comments_alone_is_named(write_file):
    with pytest.raises(InputFileError, match=r"pairs\.txt: no word pairs in the file"):
        read_word_pairs(write_file("pairs.txt", ["# word1 word2 score", ""]))


def test_every_shared_benchmark_reads_with_its_readme_count():
    root = shared_path("data", "word-similarity")
    counts = {
        "faruqui/EN-WS-353-ALL.txt": 353,
        "faruqui/EN-SIMLEX-999.txt": 999,
        "faruqui/EN-MEN-TR-3k.txt": 3000,
        "faruqui/EN-RW-STANFORD.txt": 2034,
        "faruqui/EN-SimVerb-3500.txt": 3500,
        "gensim/wordsim353.tsv": 353,
    }
    for name, count in counts.items():
        assert len(read_word_pairs(root / name)) == count, name
