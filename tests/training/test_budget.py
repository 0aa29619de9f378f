"""elmo/training/budget.py: the run's length said in tokens and passes, and the schedule warnings."""

from __future__ import annotations

import logging

import pytest

from elmo.config import TrainConfig
from elmo.data.vocab import Vocabulary
from elmo.training.budget import Budget, describe, log_budget, run_budget


def vocab_of(lines: list[str]) -> Vocabulary:
    return Vocabulary.build(lines)


def test_corpus_tokens_are_words_and_sentence_ends():
    vocab = vocab_of(["a b c", "", "b c"])  # 5 words, 2 sentences: 7 predictions per direction
    config = TrainConfig()
    config.data.batch_size, config.data.unroll_steps, config.trainer.max_steps = 2, 3, 7
    budget = run_budget(config, vocab, world_size=1, inherited=False)
    assert (budget.corpus_tokens, budget.tokens_per_step) == (7, 6)
    assert budget.passes == pytest.approx(6.0)
    assert budget.steps_per_pass == 2


def test_world_size_multiplies_the_tokens_per_step():
    config = TrainConfig()
    budget = run_budget(config, vocab_of(["a"]), world_size=4, inherited=False)
    assert budget.tokens_per_step == 4 * config.data.batch_size * config.data.unroll_steps


def test_an_inherited_vocabulary_says_nothing_of_this_text():
    budget = run_budget(TrainConfig(), vocab_of(["a b"]), world_size=1, inherited=True)
    assert budget.passes is None
    line, warning = describe(budget, "cosine")
    assert "not known" in line and warning is None


def test_wikitext2_sized_runs_are_described():
    # WikiText-2 train: 2,075,677 predictions per direction; 32 x 20 tokens per step.
    line, warning = describe(Budget(2_075_677, 640, 4000), "cosine")
    assert "2,075,677 tokens" in line and "1.23 passes" in line and "3,244 steps" in line
    assert warning is None


@pytest.mark.parametrize("max_steps, words", [(100, "after 3% of one pass"), (40_000, "only after 12 passes")])
def test_a_decaying_schedule_far_from_the_end_of_the_text_warns(max_steps, words):
    _, warning = describe(Budget(2_075_677, 640, max_steps), "linear")
    assert words in warning and "trainer.max_steps=3,244" in warning


def test_a_constant_rate_never_warns():
    assert describe(Budget(2_075_677, 640, 100), "constant")[1] is None


def test_log_budget_logs_the_line_and_the_warning(caplog):
    with caplog.at_level(logging.INFO, logger="elmo.training.budget"):
        log_budget(Budget(1000, 10, 1), "cosine")
    levels = [record.levelname for record in caplog.records]
    assert levels == ["INFO", "WARNING"]
