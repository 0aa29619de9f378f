"""Every reader of a user's text, fed what files really hold: a clear error or every token.

Hypothesis writes files of empty and blank lines, CRLF and lone CR line ends, tabs and Unicode
spaces, NUL bytes, invalid UTF-8, the spellings of the specials (``<S>``), tokens of 100,000
characters and lines of 10,000 tokens, and hands them to

* the training text's reader (``iter_lines`` -> ``sentence_stream``), the vocabulary built from
  it and the LM batches made from it (``LMBatcher``);
* the vocabulary file's reader (``Vocabulary.load``; a built one also round-trips);
* ``elmo embed``'s and ``elmo eval``'s reader (``read_sentence_lines``);
* the probe readers (CoNLL-U, CoNLL-2000, SST-2, WiC, word similarity).

The property: the reader yields the tokens a user would expect, none lost or cut (the tokens of
the training text are the whitespace split of the decoded text, in order), or it raises the
project's one error type for the file (InputFileError, or ModelFileError for a vocabulary),
naming the file; never another exception. Each of the 10 tests tries ``EXAMPLES`` inputs.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elmo.commands.inputs import read_sentence_lines
from elmo.data.characters import BOS_TOKEN, EOS_TOKEN
from elmo.data.stream import LMBatcher, iter_lines, sentence_stream
from elmo.data.vocab import SPECIAL_TOKENS, Vocabulary
from elmo.files import InputFileError, ModelFileError
from elmo.tasks.datasets.conll2000 import read_conll2000
from elmo.tasks.datasets.conllu import read_conllu
from elmo.tasks.datasets.sst2 import read_sst2
from elmo.tasks.datasets.wic import read_wic
from elmo.tasks.datasets.word_similarity import read_word_pairs

# Inputs per test: a few seconds each. ELMO_FUZZ_EXAMPLES=2000 searches longer.
EXAMPLES = int(os.environ.get("ELMO_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a 100,000-character token takes longer than the default 200 ms
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example,
                           HealthCheck.function_scoped_fixture],  # fmt: skip  (one file, rewritten)
)

HUGE_TOKEN = "x" * 100_000
HUGE_LINE = " ".join(f"w{i % 97}" for i in range(10_000))
WORDS = ["the", "bank", "river", "Мы", "我们今天", "naïve", "🙂", "a\x00b", "\x00", "<S>", "</S>",
         "<UNK>", "²", "0", "1", "-", "_", "#", "1-2", "1.1", "B-NP", "I-VP", "O", "nan", "T", "F"]  # fmt: skip
SPACES = [" ", "  ", "\t", "\xa0", "\u3000", "\x0b", "\x0c", "\x1c", "\x85", "\u2028"]
LINE_ENDS = ["\n", "\r\n", "\r"]
# Bytes that are not UTF-8: a stray continuation byte, a cut sequence, a surrogate, an overlong.
INVALID = [b"\xff", b"\x80", b"\xc3", b"\xe6\x88", b"\xed\xa0\x80", b"\xc0\xaf"]

pieces = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from(SPACES + LINE_ENDS),
    st.text(max_size=8),  # any code point but surrogates (which no UTF-8 file can hold)
)


class FileBytes(bytes):
    """A file's bytes, shown cut short in a failure report (a 100,000-character token is not
    worth printing)."""

    def __repr__(self) -> str:
        text = bytes.__repr__(self)
        return text if len(text) <= 300 else f"{text[:150]}...[{len(self)} bytes]...{text[-100:]}"

    def _repr_pretty_(self, printer, cycle) -> None:  # how hypothesis prints an example
        printer.text(repr(self))


@st.composite
def files(draw, pieces=pieces, max_pieces: int = 40) -> FileBytes:
    """A file's bytes: text made of ``pieces``, UTF-8 encoded; one time in three with a huge
    token or line among them, one in five with invalid bytes somewhere."""
    parts = draw(st.lists(pieces, max_size=max_pieces))
    huge = draw(st.sampled_from([None, None, None, None, HUGE_TOKEN, HUGE_LINE]))
    if huge is not None:
        parts.insert(draw(st.integers(0, len(parts))), huge)
    data = "".join(parts).encode("utf-8")
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(INVALID)) + data[at:]
    return FileBytes(data)


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _decoded(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _first_bad_line(data: bytes) -> int:
    """The 1-based number of the first line (lines end at b"\\n") that is not UTF-8."""
    return next(n for n, raw in enumerate(data.split(b"\n"), 1) if _decoded(raw) is None)


def _assert_names_bad_utf8(error: Exception, path: Path, data: bytes) -> None:
    assert str(error).startswith(f"{path}:{_first_bad_line(data)}: invalid UTF-8"), str(error)


# ------------------------------------------------------------------------------------------------
# The training text: lines, sentences, vocabulary, batches


def _universal_lines(text: str) -> list[str]:
    """The lines of ``text`` as Python's text files read them: CRLF, CR and LF end a line."""
    lines = re.split(r"\r\n|\r|\n", text)
    return lines[:-1] if lines[-1] == "" else lines


@FUZZ
@given(data=files())
def test_the_training_text_is_every_whitespace_token_in_order(tmp_path, data):
    path = _write(tmp_path, "train.txt", data)
    text = _decoded(data)
    if text is None:
        with pytest.raises(InputFileError) as error:
            list(iter_lines(path))
        _assert_names_bad_utf8(error.value, path, data)
        return
    sentences = list(sentence_stream(iter_lines(path)))
    assert sentences == [line.split() for line in _universal_lines(text) if line.split()]
    assert [token for sentence in sentences for token in sentence] == text.split()  # none lost


@FUZZ
@given(data=files(), min_count=st.integers(1, 2))
def test_a_vocabulary_counts_every_token_and_reads_back_as_written(tmp_path, data, min_count):
    text = _decoded(data)
    if text is None:
        return  # the reader's error: the test above
    path = _write(tmp_path, "train.txt", data)
    vocab = Vocabulary.build(iter_lines(path), min_count=min_count)
    words = Counter(t for t in text.split() if t not in SPECIAL_TOKENS)
    counts = dict(zip(vocab.tokens, vocab.counts))
    kept = {w: c for w, c in words.items() if c >= min_count}
    assert {t: counts[t] for t in vocab.tokens[3:]} == kept
    assert counts["<UNK>"] == sum(words.values()) - sum(kept.values())
    assert counts[BOS_TOKEN] == counts[EOS_TOKEN] == len(list(sentence_stream(iter_lines(path))))
    vocab.save(tmp_path / "vocab.txt")
    loaded = Vocabulary.load(tmp_path / "vocab.txt")
    assert (loaded.tokens, loaded.counts) == (vocab.tokens, vocab.counts)


@FUZZ
@given(data=files(), unroll_steps=st.sampled_from([2, 5, 64]), reverse=st.booleans())
def test_the_batches_of_one_stream_hold_every_sentence_whole(tmp_path, data, unroll_steps, reverse):
    """One row (B = 1): its inputs, window after window, are every sentence framed, in order."""
    text = _decoded(data)
    path = _write(tmp_path, "train.txt", data)
    if text is None or not text.split():
        with pytest.raises(InputFileError, match=re.escape(str(path))):
            list(LMBatcher(path, Vocabulary.build([]), 1, unroll_steps, max_chars=8))
        return
    vocab = Vocabulary.build(iter_lines(path))
    batches = list(LMBatcher(path, vocab, 1, unroll_steps, max_chars=8, reverse=reverse))
    inputs = torch.cat([b.token_ids[b.mask] for b in batches]).tolist()
    targets = torch.cat([b.next_token_ids[b.mask] for b in batches]).tolist()
    expected_inputs, expected_targets = [], []
    for sentence in sentence_stream(iter_lines(path)):
        ids = vocab.encode(reversed(sentence) if reverse else sentence)
        first, last = (vocab.eos_id, vocab.bos_id) if reverse else (vocab.bos_id, vocab.eos_id)
        expected_inputs += [first, *ids]
        expected_targets += [*ids, last]
    assert inputs == expected_inputs and targets == expected_targets
    assert all((b.mask[0, 1:] <= b.mask[0, :-1]).all() for b in batches)  # real, then padding


# ------------------------------------------------------------------------------------------------
# A vocabulary file

COUNTS = ["3", "0", "²", "٣", "-1", " 7 ", "", "x", "1e3"]
vocab_lines = st.one_of(
    st.sampled_from(WORDS),
    st.builds("{}\t{}".format, st.sampled_from(WORDS), st.sampled_from(COUNTS)),
    st.sampled_from(SPACES + ["\t", "a\tb\tc", "\r"]),
    st.text(max_size=6),
).map(lambda line: line + "\n")


@FUZZ
@given(specials=st.booleans(), data=files(pieces=vocab_lines, max_pieces=12))
def test_a_vocabulary_file_loads_one_token_a_line_or_names_the_file(tmp_path, specials, data):
    if specials:
        data = FileBytes(b"<S>\n</S>\n<UNK>\n" + data)
    path = _write(tmp_path, "vocab.txt", data)
    try:
        vocab = Vocabulary.load(path)
    except ModelFileError as error:
        assert str(error).startswith(f"{path}"), str(error)
        return
    assert len(vocab) == len(data.split(b"\n")) - data.endswith(b"\n")  # a token a line
    assert all(token == token.strip() and token for token in vocab.tokens)


# ------------------------------------------------------------------------------------------------
# elmo embed and elmo eval


@FUZZ
@given(data=files(), allow_blank=st.booleans())
def test_the_sentences_of_elmo_embed_are_the_files_lines(tmp_path, data, allow_blank):
    path = _write(tmp_path, "in.txt", data)
    text = _decoded(data)
    lines = None if text is None else text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line
    ok = bool(text and text.strip(" \t\n\r\x0b\x0c")) and (allow_blank or all(map(str.split, lines)))
    if not ok:
        with pytest.raises(InputFileError) as error:
            read_sentence_lines(path, allow_blank=allow_blank)
        assert str(error.value).startswith(f"{path}:"), str(error.value)
        if text is None:
            _assert_names_bad_utf8(error.value, path, data)
        return
    sentences = read_sentence_lines(path, allow_blank=allow_blank)
    assert sentences == [line.strip() for line in lines]  # one sentence a line, none cut
    assert " ".join(sentences).split() == text.split()


# ------------------------------------------------------------------------------------------------
# The probe readers: records, or InputFileError naming the file (DataFormatError is one)


def _records(separator: str, *columns):
    """Lines of one field from each of ``columns`` (now and then one field more or fewer), with
    blank, comment and header lines among them, and any line end."""
    word = st.one_of(st.sampled_from(WORDS), st.text(max_size=4))
    fields = st.tuples(*[st.one_of(st.sampled_from(c), word) for c in columns]).map(list)
    fields = st.one_of(fields, fields.map(lambda f: f[:-1]), fields.map(lambda f: [*f, "x"]))
    other = st.sampled_from(["", " ", "# comment", "sentence\tlabel"])
    line = st.one_of(fields.map(separator.join), other)
    return st.builds(str.__add__, line, st.sampled_from(LINE_ENDS))


IDS = ["1", "2", "3", "1-2", "2.1", "0", "²", "٣", "1-²", "x-1", ""]
TAGS = ["NOUN", "VERB", "_", "", "O", "B-NP", "I-VP", "B-", "X-NP", "I"]
PROBE_READERS = {
    "conllu": (read_conllu, _records("\t", IDS, WORDS, WORDS, TAGS, *[["_"]] * 6)),
    "conll2000": (read_conll2000, _records(" ", WORDS, TAGS, TAGS)),
    "sst2": (read_sst2, _records("\t", ["a b", " ", "", "x\x00y"], ["0", "1", "2", "²", " 1", ""])),
    "wic": (read_wic, _records("\t", WORDS, ["N", "V"], ["0-0", "1-2", "²-0", "0-²", "-1", "0-1-2"],
                               ["a b c", "", "x"], ["a", "b c d"])),
    "word similarity": (read_word_pairs, _records(" ", WORDS, WORDS, ["1.5", "nan", "inf", "x",
                                                                        "²", "1_0", "-3", ""])),
}  # fmt: skip


@pytest.mark.parametrize("name", PROBE_READERS)
def test_a_probe_reader_reads_records_or_names_the_file(tmp_path, name):
    reader, lines = PROBE_READERS[name]

    @FUZZ
    @given(data=files(pieces=lines, max_pieces=10))
    def check(data):
        path = _write(tmp_path, "task.txt", data)
        try:
            records = reader(path)
        except InputFileError as error:
            assert str(error).startswith(str(path)), str(error)
            return
        assert isinstance(records, list)

    check()

