"""How long a run is, said at its start: corpus tokens, tokens per step, and the passes it makes.

bilm-tf asked users for ``n_train_tokens`` and derived its schedule from it; a wrong figure
silently made runs much shorter or longer than meant. Here the schedule is in steps
(``trainer.max_steps``), and the log says what that amounts to over the training text, with a
warning when a decaying learning rate reaches zero long before one pass over the text ends (most
of it never seen) or only after many passes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from elmo.config import TrainConfig
from elmo.data.characters import BOS_TOKEN
from elmo.data.vocab import Vocabulary

log = logging.getLogger(__name__)

# A decaying schedule that ends before this fraction of one pass, or after this many passes, is
# worth a warning: the learning rate is zero long before or after the text runs out.
FEW_PASSES, MANY_PASSES = 0.1, 10.0


@dataclass(frozen=True)
class Budget:
    corpus_tokens: int | None  # tokens one direction predicts in one pass (words and </S>)
    tokens_per_step: int  # predicted per direction per optimizer step, all processes together
    max_steps: int

    @property
    def passes(self) -> float | None:
        """Passes over the training text that ``max_steps`` steps make (None: size unknown)."""
        if not self.corpus_tokens:
            return None
        return self.max_steps * self.tokens_per_step / self.corpus_tokens

    @property
    def steps_per_pass(self) -> int | None:
        if not self.corpus_tokens:
            return None
        return -(-self.corpus_tokens // self.tokens_per_step)


def run_budget(config: TrainConfig, vocab: Vocabulary, world_size: int, inherited: bool) -> Budget:
    """The run's budget. The corpus size comes from the vocabulary's counts when the vocabulary
    was counted on this run's training text (not inherited from ``init_from``)."""
    corpus = None
    if not inherited and vocab.counts is not None:
        counts = dict(zip(vocab.tokens, vocab.counts))
        corpus = sum(vocab.counts) - counts.get(BOS_TOKEN, 0)  # <S> is given, never predicted
    data = config.data
    return Budget(corpus, data.batch_size * data.unroll_steps * world_size, config.trainer.max_steps)


def describe(budget: Budget, schedule: str) -> tuple[str, str | None]:
    """(the log line, a warning or None) for a run of this budget and learning-rate schedule."""
    per_step = f"{budget.tokens_per_step:,} tokens per step and direction"
    if budget.passes is None:
        unknown = "the corpus size is not known: the vocabulary was not counted on this text"
        return f"training for {budget.max_steps:,} steps, {per_step} ({unknown})", None
    line = (f"training text: {budget.corpus_tokens:,} tokens to predict per direction; "
            f"{per_step}; max_steps={budget.max_steps:,} is {budget.passes:.2f} passes over the "
            f"text (one pass: {budget.steps_per_pass:,} steps)")  # fmt: skip
    if schedule == "constant":
        return line, None
    if budget.passes < FEW_PASSES:
        return line, (f"the {schedule} schedule takes the learning rate to zero after "
                      f"{budget.passes:.0%} of one pass over the training text: most of it is "
                      f"never seen. One pass is trainer.max_steps={budget.steps_per_pass:,}.")  # fmt: skip
    if budget.passes > MANY_PASSES:
        return line, (f"the {schedule} schedule reaches zero only after {budget.passes:.0f} passes "
                      f"over the training text; a small text is learnt by heart long before. "
                      f"One pass is trainer.max_steps={budget.steps_per_pass:,}.")  # fmt: skip
    return line, None


def log_budget(budget: Budget, schedule: str) -> None:
    line, warning = describe(budget, schedule)
    log.info(line)
    if warning:
        log.warning(warning)
