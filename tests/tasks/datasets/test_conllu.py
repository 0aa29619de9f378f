"""CoNLL-U: words and UPOS tags; multiword tokens and empty nodes skipped; bad lines named."""

from __future__ import annotations

import pytest
from shared_data import shared_path

from elmo.files import InputFileError
from elmo.tasks.datasets.conllu import read_conllu
from elmo.tasks.datasets.source import DataFormatError


def _line(token_id: str, form: str, upos: str) -> str:
    return "\t".join([token_id, form, form.lower(), upos, "_", "_", "0", "root", "_", "_"])  # noqa: FLY002


def test_reads_words_and_tags_skipping_multiword_tokens_and_empty_nodes(write_file):
    path = write_file(
        "a.conllu",
        [
            "# sent_id = 1",
            "# text = I don't know",
            _line("1", "I", "PRON"),
            _line("2-3", "don't", "_"),
            _line("2", "do", "AUX"),
            _line("3", "n't", "PART"),
            _line("3.1", "know", "VERB"),
            _line("4", "know", "VERB"),
            "",
            _line("1", "Yes", "INTJ"),
        ],
        final_newline=False,  # the last sentence has no closing blank line
    )
    sentences = read_conllu(path)
    assert [s.tokens for s in sentences] == [["I", "do", "n't", "know"], ["Yes"]]
    assert [s.tags for s in sentences] == [["PRON", "AUX", "PART", "VERB"], ["INTJ"]]


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("1\tonly\tthree", "expected 10 tab-separated fields, got 3"),
        (_line("x", "word", "NOUN"), "bad token ID 'x'"),
        (_line("5", "word", "NOUN"), "word ID 5 out of sequence"),
        (_line("2", "word", "_"), "empty word form or UPOS tag"),
    ],
)
def test_a_malformed_line_is_named_by_file_and_line(write_file, bad_line, message):
    path = write_file("bad.conllu", ["# c", _line("1", "The", "DET"), bad_line])
    with pytest.raises(DataFormatError, match=message) as error:
        read_conllu(path)
    assert str(error.value).startswith(f"{path}:3: ")
    assert error.value.line_number == 3


def test_a_file_without_sentences_is_named(write_file):
    with pytest.raises(InputFileError, match=r"c\.conllu: no sentences in the file"):
        read_conllu(write_file("c.conllu", ["# sent_id = 1", "# text = nothing", ""]))


def test_the_shared_ewt_dev_file_has_the_readme_counts():
    path = shared_path("data", "ud-english-ewt", "en_ewt-ud-dev.conllu")
    sentences = read_conllu(path)
    assert len(sentences) == 2001
    assert sum(len(s.tokens) for s in sentences) == 25147  # "syntactic words" in its README
