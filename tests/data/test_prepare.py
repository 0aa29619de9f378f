"""Tests for elmo.data.prepare: a run's units are made once, by the main process, between barriers."""

from __future__ import annotations

import re

import pytest
from progress_log import log_every_update, progress_lines
from sentencepiece_text import corpus_lines

from elmo.config import DataConfig, TokenizerConfig
from elmo.data.prepare import prepare_tokenizer, prepare_vocabulary
from elmo.data.tokenizer import PieceTokenizer, Tokenizer
from elmo.data.vocab import Vocabulary
from elmo.files import ModelFileError


class Barrier:
    """Counts its calls; ``between`` runs at the second one (what the main process did before)."""

    def __init__(self, between=None) -> None:
        self.calls, self.between = 0, between

    def __call__(self) -> None:
        self.calls += 1
        if self.calls == 2 and self.between is not None:
            self.between()


def _text(tmp_path) -> str:
    path = tmp_path / "train.txt"
    path.write_text("the bank of the river\nthe river flows\n", encoding="utf-8")
    return str(path)


def test_words_need_no_file_and_no_barrier(tmp_path):
    barrier = Barrier()
    tokenizer = prepare_tokenizer(
        TokenizerConfig(), _text(tmp_path), tmp_path / "sp", True, barrier
    )

    assert type(tokenizer) is Tokenizer and barrier.calls == 0
    assert not (tmp_path / "sp").exists()


def test_sentencepiece_is_trained_once_and_read_back(tmp_path):
    train = tmp_path / "train.txt"
    train.write_text("\n".join(corpus_lines()) + "\n", encoding="utf-8")
    settings = TokenizerConfig(kind="sentencepiece", vocab_size=360, character_coverage=1.0)
    saved, barrier = tmp_path / "sp.model", Barrier()

    first = prepare_tokenizer(settings, str(train), saved, True, barrier)
    stamp = saved.stat().st_mtime_ns
    again = prepare_tokenizer(settings, str(train), saved, True, barrier)  # resuming

    assert isinstance(first, PieceTokenizer) and barrier.calls == 4  # two per call
    assert saved.stat().st_mtime_ns == stamp  # not trained again
    assert again.units("the river crossed") == first.units("the river crossed")


def test_vocabulary_is_built_saved_and_read_back_when_resuming(tmp_path):
    text, saved, barrier = _text(tmp_path), tmp_path / "vocab.txt", Barrier()

    built = prepare_vocabulary(
        DataConfig(), text, saved, Tokenizer(TokenizerConfig()), True, barrier
    )
    assert "river" in built and saved.is_file() and barrier.calls == 2
    saved.write_text(saved.read_text() + "extra\t1\n")  # what a resumed run finds is what it reads
    resumed = prepare_vocabulary(
        DataConfig(), text, saved, Tokenizer(TokenizerConfig()), True, barrier
    )
    assert "extra" in resumed and barrier.calls == 3  # only the barrier before looking


def test_an_inherited_vocabulary_wins_over_the_training_text(tmp_path):
    inherited = Vocabulary(["<S>", "</S>", "<UNK>", "sun", "moon"])
    saved = tmp_path / "vocab.txt"

    vocab = prepare_vocabulary(DataConfig(), _text(tmp_path), saved, Tokenizer(TokenizerConfig()),
                               True, Barrier(), inherited=inherited, inherited_from="src")  # fmt: skip

    assert vocab.tokens == inherited.tokens and Vocabulary.load(saved).tokens == inherited.tokens


def test_other_processes_read_what_the_main_one_wrote(tmp_path):
    saved = tmp_path / "vocab.txt"
    written = Vocabulary(["<S>", "</S>", "<UNK>", "sun"])
    barrier = Barrier(between=lambda: written.save(saved))  # the main process, meanwhile

    vocab = prepare_vocabulary(DataConfig(), _text(tmp_path), saved, Tokenizer(TokenizerConfig()),
                               False, barrier)  # fmt: skip

    assert vocab.tokens == written.tokens and barrier.calls == 2


def test_a_torn_vocabulary_is_rebuilt_when_nothing_depends_on_it(tmp_path):
    text, saved = _text(tmp_path), tmp_path / "vocab.txt"
    built = prepare_vocabulary(DataConfig(), text, saved, Tokenizer(TokenizerConfig()), True, Barrier())
    whole = saved.read_text()
    saved.write_text(whole[: len(whole) // 2])  # cut mid-line, as a write killed in place would
    again = prepare_vocabulary(DataConfig(), text, saved, Tokenizer(TokenizerConfig()), True,
                               Barrier(), reuse=False)  # fmt: skip
    assert again.tokens == built.tokens and saved.read_text() == whole


def test_a_torn_vocabulary_a_resume_needs_is_an_error_saying_what_to_delete(tmp_path):
    text, saved = _text(tmp_path), tmp_path / "vocab.txt"
    prepare_vocabulary(DataConfig(), text, saved, Tokenizer(TokenizerConfig()), True, Barrier())
    saved.write_text(saved.read_text().rsplit("\t", 1)[0] + "\t")  # cut inside the last count
    with pytest.raises(ModelFileError, match=rf"vocab\.txt:\d+: .*; delete {re.escape(str(saved))} to build"):
        prepare_vocabulary(DataConfig(), text, saved, Tokenizer(TokenizerConfig()), True, Barrier())


def test_the_passes_over_the_training_text_report_progress(tmp_path, monkeypatch, caplog):
    log_every_update(monkeypatch, caplog)
    train = tmp_path / "train.txt"
    train.write_text("\n".join(corpus_lines()) + "\n", encoding="utf-8")
    lines = len(corpus_lines())
    words = prepare_vocabulary(DataConfig(), str(train), tmp_path / "vocab.txt", Tokenizer(
        TokenizerConfig()), True, Barrier())  # fmt: skip
    assert len(words) > 3
    assert progress_lines(caplog, "counting the words")[-1].startswith(
        f"counting the words: {lines}/{lines} lines (100%)"
    )
    settings = TokenizerConfig(kind="sentencepiece", vocab_size=360, character_coverage=1.0)
    pieces = prepare_tokenizer(settings, str(train), tmp_path / "sp.model", True, Barrier())
    assert progress_lines(caplog, "reading the text for sentencepiece")[-1].startswith(
        f"reading the text for sentencepiece: {lines}/{lines} lines (100%)"
    )
    assert progress_lines(caplog, "training the sentencepiece model: done in ")
    prepare_vocabulary(DataConfig(), str(train), tmp_path / "pieces.txt", pieces, True, Barrier())
    assert progress_lines(caplog, "counting the pieces")[-1].startswith(
        f"counting the pieces: {lines}/{lines} lines (100%)"
    )
