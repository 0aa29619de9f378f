"""Perplexity per unit and per whitespace word: one function for words and for pieces."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from progress_log import log_every_update, progress_lines
from sentencepiece_text import corpus_lines, small_tokenizer

from elmo.data.tokenizer import word_tokenizer
from elmo.data.vocab import Vocabulary
from elmo.model import BiLM
from elmo.training.evaluate import count_words, evaluate_perplexity

TEXT = corpus_lines()[::7] + ["", "Мы гуляли ."]  # a blank line is no sentence


def _model(tiny_config, vocab: Vocabulary) -> BiLM:
    torch.manual_seed(0)
    return BiLM(dataclasses.replace(tiny_config, vocab_size=len(vocab))).eval()


def test_per_word_perplexity_of_words_and_of_pieces(tiny_config):
    words = sum(len(line.split()) + 1 for line in TEXT if line.split())
    word_vocab = Vocabulary.build(TEXT)
    by_word = evaluate_perplexity(_model(tiny_config, word_vocab), lambda: TEXT, word_vocab, 4, 5)
    assert by_word.words == by_word.tokens == words
    assert by_word.word_ppl == pytest.approx(by_word.ppl, rel=1e-9)  # words are the units

    tokenizer = small_tokenizer()
    piece_vocab = Vocabulary.from_inventory(tokenizer.inventory, TEXT, tokenizer.units)
    by_piece = evaluate_perplexity(_model(tiny_config, piece_vocab), lambda: TEXT, piece_vocab,
                                   4, 5, tokenizer=tokenizer)  # fmt: skip
    assert by_piece.words == words  # the same denominator as the words model's
    assert by_piece.tokens > words  # more pieces than words
    # Both are the same total NLL: per piece over the pieces, per word over the words.
    assert math.log(by_piece.word_ppl) == pytest.approx(
        math.log(by_piece.ppl) * by_piece.tokens / words, rel=1e-9
    )
    assert by_piece.as_dict()["word_ppl"] == by_piece.word_ppl


def test_a_partial_pass_has_no_per_word_perplexity(tiny_config):
    vocab = Vocabulary.build(TEXT)
    model = _model(tiny_config, vocab)
    result = evaluate_perplexity(model, lambda: TEXT, vocab, 2, 3, max_batches=1)
    assert result.word_ppl is None and result.words is None


def test_progress_counts_both_directions_against_the_total(tiny_config, monkeypatch, caplog):
    log_every_update(monkeypatch, caplog)
    vocab = Vocabulary.build(TEXT)
    model = _model(tiny_config, vocab)
    result = evaluate_perplexity(model, lambda: TEXT, vocab, 4, 5, progress=True, desc="scoring")
    lines = progress_lines(caplog, "scoring: ")
    total = f"{2 * result.tokens:,}"
    assert lines[0].startswith("scoring: ") and f"/{total} tokens (" in lines[0]
    assert lines[-1].startswith(f"scoring: {total}/{total} tokens (100%)")
    assert "direction=forward" in lines[0] and "direction=backward" in lines[-1]
    assert result.words == count_words(TEXT, word_tokenizer())  # from the same pass

    caplog.clear()
    quick = evaluate_perplexity(model, lambda: TEXT, vocab, 2, 3, max_batches=2, progress=True,
                                desc="quick")  # fmt: skip
    last = progress_lines(caplog, "quick: ")[-1]
    assert last.startswith(f"quick: {2 * quick.tokens} tokens, ")  # no total: not counted first


def test_count_words():
    assert count_words(["a b", "", "  ", "c"], small_tokenizer()) == 3 + 2
