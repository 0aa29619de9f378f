"""Where a run's model starts: random weights, or an existing model's (``init_from``, fine-tuning).

Fine-tuning keeps the source's architecture, and its tokenizer and vocabulary when it has them
(our pretrained directory): its softmax is over its units. A published model (options.json +
weights.hdf5) has neither a vocabulary nor a softmax, so the run builds a vocabulary from its
training text and a new softmax over it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import NamedTuple

from elmo.config import BiLMConfig, TokenizerConfig
from elmo.data.stream import target_log_probs
from elmo.data.tokenizer import Tokenizer
from elmo.data.vocab import Vocabulary
from elmo.model import BiLM
from elmo.pretrained import load_bilm, load_tokenizer, load_vocabulary

log = logging.getLogger(__name__)


class InheritedUnits(NamedTuple):
    """The tokenizer and vocabulary a fine-tuning run takes over from its source model."""

    tokenizer: Tokenizer
    vocab: Vocabulary


def inherited_units(init_from: str | None, settings: TokenizerConfig) -> InheritedUnits | None:
    """``init_from``'s tokenizer and vocabulary; None without init_from or when it has no vocabulary.

    Args:
        init_from: the model directory the run starts from, if any.
        settings: the run's tokenizer settings; their ``kind`` must be the source's.

    Raises:
        ValueError: the source reads other units than ``settings.kind``.
    """
    if not init_from:
        return None
    vocab = load_vocabulary(init_from)
    if vocab is None:
        return None
    tokenizer = load_tokenizer(init_from)
    if tokenizer.kind != settings.kind:
        raise ValueError(
            f"{init_from} reads {tokenizer.kind} but tokenizer.kind is {settings.kind!r}; "
            f"fine-tuning keeps the model's tokenizer (its softmax is over its units)"
        )
    return InheritedUnits(tokenizer, vocab)


def build_model(config: BiLMConfig, vocab: Vocabulary, init_from: str | None = None) -> BiLM:
    """A fresh BiLM, or one initialised from ``init_from``, with a softmax over ``vocab``.

    A softmax made here (not taken over from ``init_from``) starts as ``config.softmax.init_bias``
    says; a resumed run then loads its checkpoint over all of it.

    Args:
        config: the run's model config; with ``init_from`` only its softmax and dropout are used
            (the architecture is the source's).
        vocab: the run's vocabulary (V words; its counts for ``init_bias=unigram``).
        init_from: a model directory (ours or the published format) to start from.

    Raises:
        ValueError: the source's softmax has another size than V, or its weights do not fit.
    """
    vocab_size = len(vocab)
    if not init_from:
        model = BiLM(dataclasses.replace(config, vocab_size=vocab_size).validate())
        _init_softmax_bias(model, vocab)
        return model
    source = load_bilm(model=init_from)
    # The architecture is the source's; the softmax and the training dropout are this run's.
    model_config = dataclasses.replace(
        source.config, vocab_size=vocab_size, softmax=config.softmax, dropout=config.dropout
    ).validate()
    model = BiLM(model_config)
    if source.softmax is not None and source.config.vocab_size != vocab_size:
        raise ValueError(
            f"{init_from}: its softmax has {source.config.vocab_size} words but the "
            f"vocabulary has {vocab_size}"
        )
    if source.softmax is None:  # e.g. a published model: the softmax is new, this run's
        _init_softmax_bias(model, vocab)
    missing, unexpected = model.load_state_dict(source.state_dict(), strict=False)
    if unexpected or any(not key.startswith("softmax.") for key in missing):
        raise ValueError(
            f"{init_from}: weights do not fit: missing {missing}, unexpected {unexpected}"
        )
    log.info("initialised from %s%s", init_from, " (new softmax)" if source.softmax is None else "")
    return model


def _init_softmax_bias(model: BiLM, vocab: Vocabulary) -> None:
    """Start a new softmax's biases as ``model.config.softmax.init_bias`` says (zero: as built).

    ``unigram`` with a vocabulary without counts (a plain token list given as ``data.vocab``, a
    published model's vocabulary taken over by ``init_from``) warns and leaves them at zero: it
    is the default recipe's choice, and a run that worked before must not fail for it.
    """
    if model.config.softmax.init_bias != "unigram":
        return
    if vocab.counts is None:
        log.warning("softmax biases start at zero: init_bias=unigram needs token counts and the "
                    "vocabulary has none (its file has no token<TAB>count lines); give counts, or "
                    "set model.softmax.init_bias=zero to silence this")  # fmt: skip
        return
    model.softmax.init_unigram_bias(target_log_probs(vocab))
    log.info("softmax biases start at the log unigram frequencies of the training targets")
