"""The tiny biLM really learns language: after a few hundred steps on WikiText-2 its validation
perplexity is far below that of the unigram model estimated from the same training text.

The unigram baseline is computed here, independently of the model code, over exactly the tokens
the biLM predicts: every word of every non-empty validation line and one sentence boundary
(``</S>`` forward, ``<S>`` backward, equally frequent), with the run's vocabulary (words outside
it count as ``<UNK>``). Its probabilities are the training counts of those tokens.

Slow (minutes on one thread): run with ``pytest -m slow``.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from shared_data import shared_path
from train_runs import train

from elmo.data.stream import iter_lines
from elmo.data.vocab import Vocabulary

pytestmark = pytest.mark.slow


def unigram_perplexity(vocab: Vocabulary, lines) -> tuple[float, int]:
    """(perplexity, tokens) of the vocabulary's training counts as a unigram LM of ``lines``."""
    counts = vocab.counts
    # The predicted tokens are the words and one boundary per sentence: leave <S> out (forward).
    total = sum(counts) - counts[vocab.bos_id]
    nll, tokens = 0.0, 0
    for line in lines:
        words = line.split()
        if not words:
            continue
        for token_id in [*vocab.encode(words), vocab.eos_id]:
            nll -= math.log(counts[token_id] / total)
            tokens += 1
    return math.exp(nll / tokens), tokens


def test_tiny_bilm_beats_the_unigram_model_on_wikitext2(tmp_path: Path):
    train_text = shared_path("data", "wikitext-2", "wiki.train.tokens")
    valid_text = shared_path("data", "wikitext-2", "wiki.valid.tokens")
    run = tmp_path / "run"

    metrics = train(
        run,
        [
            f"data.train={train_text}",
            f"data.valid={valid_text}",
            "data.test=null",
            "data.vocab_max_size=10000",  # a full softmax over 10k words: quick on one thread
            "data.batch_size=32",
            "data.unroll_steps=20",
            "model=tiny",
            "model.softmax.kind=full",
            "trainer=cpu",
            "trainer.num_threads=1",
            "trainer.optimizer=adam",
            "trainer.lr=0.01",
            "trainer.max_steps=600",
            "trainer.eval_every=0",
            "trainer.eval_max_batches=1",  # the loop's own last evaluation: a glance only
            "trainer.checkpoint_every=600",
            "trainer.log_every=50",
            "export_published=false",
        ],
        timeout=600,
    )

    vocab = Vocabulary.load(run / "vocab.txt")
    baseline, tokens = unigram_perplexity(vocab, iter_lines(valid_text))
    valid = metrics["valid"]
    assert valid["tokens"] == tokens  # both scored the same predicted tokens
    assert 300 < baseline < 1000  # sanity: WikiText-2 with a 10k vocabulary is about 530
    assert valid["forward_ppl"] < 0.7 * baseline, (valid, baseline)
    assert valid["backward_ppl"] < 0.7 * baseline, (valid, baseline)
