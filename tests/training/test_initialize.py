"""Tests for elmo.training.initialize: where a run's model starts (build_model's softmax biases)."""

from __future__ import annotations

import dataclasses
import logging
import math
import random

import pytest
import torch

from elmo.config import BiLMConfig, SoftmaxConfig
from elmo.data.stream import target_log_probs
from elmo.data.vocab import Vocabulary
from elmo.model import BiLM
from elmo.pretrained import save_pretrained
from elmo.training.evaluate import evaluate_perplexity
from elmo.training.initialize import build_model


def zipf_text(num_sentences: int = 150, num_words: int = 40, seed: int = 0) -> list[str]:
    """Sentences of words w0..w39 drawn with Zipfian frequencies (far from uniform)."""
    rng = random.Random(seed)
    words, weights = [f"w{i}" for i in range(num_words)], [1 / (i + 1) for i in range(num_words)]
    return [" ".join(rng.choices(words, weights, k=rng.randint(3, 12))) for _ in range(num_sentences)]


TEXT = zipf_text()
VOCAB = Vocabulary.build(TEXT, max_size=35)  # the rarest words are <UNK>


def with_softmax(config: BiLMConfig, **softmax) -> BiLMConfig:
    return dataclasses.replace(config, softmax=SoftmaxConfig(**softmax))


def built(config: BiLMConfig, vocab: Vocabulary = VOCAB, init_from: str | None = None) -> BiLM:
    torch.manual_seed(0)
    return build_model(config, vocab, init_from)


def states_differ(a: BiLM, b: BiLM) -> list[str]:
    state = b.state_dict()
    assert a.state_dict().keys() == state.keys()
    return [k for k, v in a.state_dict().items() if not torch.equal(v, state[k])]


@pytest.mark.parametrize("kind", ["full", "sampled", "adaptive"])
def test_the_default_start_is_the_model_as_built_bit_for_bit(tiny_config, kind):
    config = with_softmax(tiny_config, kind=kind, num_samples=5, cutoffs=[10])
    assert config.softmax.init_bias == "zero"
    torch.manual_seed(0)  # build_model before the option: BiLM of the run's vocabulary size
    before = BiLM(dataclasses.replace(config, vocab_size=len(VOCAB)))
    assert states_differ(built(config), before) == []
    assert states_differ(built(with_softmax(config, kind=kind, num_samples=5, cutoffs=[10],
                                            init_bias="zero")), before) == []  # fmt: skip


def test_the_unigram_start_changes_only_the_softmax_bias(tiny_config):
    zero, unigram = built(tiny_config), built(with_softmax(tiny_config, init_bias="unigram"))
    assert states_differ(zero, unigram) == ["softmax.bias"]
    assert torch.equal(unigram.softmax.bias, target_log_probs(VOCAB))


@pytest.mark.parametrize("kind", ["full", "adaptive"])
def test_a_fresh_softmax_predicts_the_unigram_distribution_from_a_zero_state(tiny_config, kind):
    model = built(with_softmax(tiny_config, kind=kind, cutoffs=[10], init_bias="unigram"))
    log_probs = model.softmax.log_probs(torch.zeros(3, tiny_config.token_dim))  # (3, V)
    assert torch.allclose(log_probs, target_log_probs(VOCAB).expand(3, -1), atol=1e-6)


def test_a_fresh_model_scores_about_the_unigram_cross_entropy(tiny_config):
    """Its hidden states are small and its weights random: the biases make the distribution."""
    targets, model = target_log_probs(VOCAB, smoothing=0.0), target_log_probs(VOCAB)
    unigram_nll = -(targets.exp() * model).sum().item()  # the add-one unigram on the text
    nll = {}
    for init_bias in ("zero", "unigram"):
        bilm = built(with_softmax(tiny_config, init_bias=init_bias)).eval()
        nll[init_bias] = math.log(evaluate_perplexity(bilm, lambda: TEXT, VOCAB, 8, 10).ppl)
    assert nll["unigram"] == pytest.approx(unigram_nll, abs=0.02)
    assert nll["zero"] == pytest.approx(math.log(len(VOCAB)), abs=0.02)  # uniform: log V
    assert nll["zero"] - nll["unigram"] > 0.3


def test_unigram_without_counts_warns_and_starts_at_zero(tiny_config, caplog):
    # The default recipe asks for unigram; a vocabulary without counts (a plain token list, a
    # published model's) must not make a run that worked before fail.
    no_counts = Vocabulary(VOCAB.tokens)
    with caplog.at_level(logging.WARNING, logger="elmo.training.initialize"):
        model = built(with_softmax(tiny_config, init_bias="unigram"), no_counts)
    assert "softmax biases start at zero" in caplog.text and "init_bias=zero" in caplog.text
    assert torch.count_nonzero(model.softmax.bias) == 0


def test_a_bad_init_bias_is_a_clear_error(tiny_config):
    with pytest.raises(ValueError, match="softmax.init_bias must be zero or unigram, got 'uniform'"):
        built(with_softmax(tiny_config, init_bias="uniform"))


def test_init_from_keeps_its_softmax_and_starts_a_new_one(tiny_config, tmp_path):
    unigram = with_softmax(tiny_config, init_bias="unigram")
    source = built(dataclasses.replace(tiny_config, vocab_size=len(VOCAB)))
    save_pretrained(source, tmp_path / "lm", VOCAB)
    tuned = built(unigram, init_from=str(tmp_path / "lm"))
    assert states_differ(tuned, source) == []  # the source's softmax wins, zero bias and all
    save_pretrained(BiLM(tiny_config), tmp_path / "encoder")  # no softmax: the run makes one
    tuned = built(unigram, init_from=str(tmp_path / "encoder"))
    assert torch.equal(tuned.softmax.bias, target_log_probs(VOCAB))
