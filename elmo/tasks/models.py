"""The biLMs a probe run compares: the model under test and its baselines, by name."""

from __future__ import annotations

import logging

import torch

from elmo.data.tokenizer import Tokenizer
from elmo.model import BiLM
from elmo.pretrained import load_bilm, load_tokenizer
from elmo.tasks.config import ProbeConfig

log = logging.getLogger(__name__)

MAIN = "model"  # the name of the model under test in results


def random_like(bilm: BiLM, seed: int) -> BiLM:
    """A biLM of ``bilm``'s shape with freshly initialised (seeded) weights, in eval mode.

    The baseline for "how much of the probe's score is the architecture, not the training": a
    random character CNN and random LSTMs still give token-specific, context-mixing features.
    """
    with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
        torch.manual_seed(seed)
        return BiLM(bilm.config).eval()


def load_models(config: ProbeConfig) -> dict[str, BiLM]:
    """``{"model": ..., "random": ..., "published": ...}``, the baselines as configured.

    Raises:
        FileNotFoundError: a model directory that does not exist or holds neither format.
    """
    bilm = load_bilm(model=config.model)
    log.info("model %s: %d layers of size %d", config.model, bilm.num_layers, bilm.output_dim)
    models = {MAIN: bilm}
    if config.baselines.random:
        models["random"] = random_like(bilm, config.baselines.random_seed)
    if config.baselines.published:
        models["published"] = load_bilm(model=config.baselines.published)
    return models


def load_tokenizers(config: ProbeConfig) -> dict[str, Tokenizer]:
    """Each model's tokenizer, by the names of ``load_models`` (the random baseline reads the
    model's units). A sentencepiece model's word vectors are pooled from its pieces."""
    tokenizer = load_tokenizer(config.model)
    tokenizers = {MAIN: tokenizer}
    if config.baselines.random:
        tokenizers["random"] = tokenizer
    if config.baselines.published:
        tokenizers["published"] = load_tokenizer(config.baselines.published)
    return tokenizers
