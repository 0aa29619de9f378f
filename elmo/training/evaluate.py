"""Exact perplexity of a biLM on a text, forward and backward, with the full softmax.

Per unit (``ppl``: per word for the ``words`` tokenizer, per piece for sentencepiece) and per
whitespace word (``word_ppl``), which compares across tokenizations; docs/perplexity.md defines
both.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import torch

from elmo.data.stream import LineSource, LMBatcher, open_lines
from elmo.data.tokenizer import Tokenizer, word_tokenizer
from elmo.data.vocab import Vocabulary
from elmo.model import BiLM
from elmo.progress import progress as progress_bar


class Perplexity(NamedTuple):
    forward_ppl: float  # exp(mean NLL) of the forward LM
    backward_ppl: float  # exp(mean NLL) of the backward LM
    ppl: float  # geometric mean of the two: exp of the mean of their mean NLLs
    tokens: int  # predicted units per direction (every word or piece, and </S>, of every sentence)
    # exp of the two directions' total NLL over 2 * words: per whitespace word, whatever the units;
    # None when only the first max_batches windows were scored
    word_ppl: float | None = None
    words: int | None = None  # whitespace words plus one sentence end per sentence

    def as_dict(self) -> dict:
        return {"forward_ppl": self.forward_ppl, "backward_ppl": self.backward_ppl,
                "ppl": self.ppl, "tokens": self.tokens,
                "word_ppl": self.word_ppl, "words": self.words}  # fmt: skip


def perplexity(total_nll: float, tokens: int) -> float:
    """exp(total NLL / tokens); raises ValueError when nothing was scored."""
    if tokens <= 0:
        raise ValueError("no tokens were scored: the text is empty")
    return math.exp(total_nll / tokens)


def count_words(lines: Iterable[str], tokenizer: Tokenizer) -> int:
    """The per-word perplexity's denominator: the whitespace words of every non-empty line, plus
    one sentence end per such line (the prediction of ``</S>``, or ``<S>`` backwards)."""
    total = 0
    for line in lines:
        words = tokenizer.words(line)
        total += len(words) + 1 if words else 0
    return total


class TextCount(NamedTuple):
    units: int  # predicted units per direction: every unit and one sentence end per sentence
    words: int  # count_words


def count_text(lines: Iterable[str], tokenizer: Tokenizer) -> TextCount:
    """What scoring ``lines`` will predict per direction, and ``count_words``, in one pass."""
    units = words = 0
    for line in lines:
        line_units = tokenizer.units(line)
        units += len(line_units) + 1 if line_units else 0
        line_words = tokenizer.words(line)
        words += len(line_words) + 1 if line_words else 0
    return TextCount(units, words)


@torch.no_grad()
def evaluate_perplexity(
    bilm: BiLM,
    lines: LineSource,
    vocab: Vocabulary,
    batch_size: int = 32,
    unroll_steps: int = 20,
    max_batches: int | None = None,
    progress: bool = False,
    tokenizer: Tokenizer | None = None,
    desc: str = "perplexity",
) -> Perplexity:
    """Perplexity of ``bilm`` on ``lines`` (one sentence per line), exact full softmax.

    Each direction reads the text as B continuous streams with the LSTM state carried across
    windows, as in training, starting from zero state. Whatever softmax the model was trained
    with, the score is the full distribution's (``Softmax.nll``).

    Args:
        lines: a path / glob, or a callable returning the lines (read once per direction).
        max_batches: score only the first N windows of each direction (a quick estimate).
        progress: report progress (``elmo.progress``: a bar on a terminal, else log lines), in
            units scored in both directions; without ``max_batches`` the text is counted first,
            so that the total is known.
        tokenizer: the model's tokenizer (None: whitespace words, the published format).
        desc: what the progress says is being done ("scoring test").
    """
    if bilm.softmax is None:
        raise ValueError("this model has no softmax (vocab_size 0): it cannot score text")
    was_training = bilm.training
    bilm.eval()
    device = bilm.device
    tokenizer = tokenizer if tokenizer is not None else word_tokenizer()
    # A pass over the text (fast next to scoring it) gives the bar its total and the words.
    counted = count_text(open_lines(lines), tokenizer) if progress and max_batches is None else None
    bar = progress_bar(total=2 * counted.units if counted else None, desc=desc, unit="tokens",
                       enabled=progress, leave=False)  # fmt: skip
    totals = []
    complete = True
    try:
        for backward in (False, True):
            batcher = LMBatcher(
                lines, vocab, batch_size, unroll_steps,
                max_chars=bilm.config.char_cnn.max_characters_per_token, reverse=backward,
                tokenize=tokenizer.units,
            )  # fmt: skip
            bar.set_postfix(direction="backward" if backward else "forward")
            nll, count, state = 0.0, 0, None
            for index, batch in enumerate(batcher):
                if max_batches is not None and index >= max_batches:
                    complete = False
                    break
                mask = batch.mask.to(device)
                output = bilm.language_model(batch.char_ids.to(device), mask, state, backward)
                state = output.state
                hidden = output.layers[-1][mask].float()  # (N, D)
                nll += float(bilm.softmax.nll(hidden, batch.next_token_ids.to(device)[mask]).sum())
                count += int(mask.sum())
                bar.update(int(mask.sum()))
            totals.append((nll, count))
    finally:
        bar.close()
        bilm.train(was_training)
    (forward_nll, tokens), (backward_nll, _) = totals
    if tokens <= 0:
        raise ValueError("no tokens were scored: the text is empty")
    words = None
    if complete:
        words = counted.words if counted else count_words(open_lines(lines), tokenizer)
    return Perplexity(
        perplexity(forward_nll, tokens),
        perplexity(totals[1][0], totals[1][1]),
        math.exp(0.5 * (forward_nll / tokens + backward_nll / totals[1][1])),
        tokens,
        perplexity(forward_nll + backward_nll, 2 * words) if words else None,
        words,
    )

