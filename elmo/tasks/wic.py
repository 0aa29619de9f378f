"""Word in Context: do the target word's vectors in two sentences tell whether its sense is shared?

Two classifiers per representation (each layer and a scalar mix), as in Pilehvar and
Camacho-Collados (2019):

* a cosine threshold, tuned for accuracy on train;
* a logistic regression on ``[u * v, |u - v|, cos(u, v)]``.

Both read the same vectors: each layer standardised with the statistics of the train targets
(``linear.LayerChoice``; centring removes the offset that all of a layer's vectors share, which
otherwise dominates their cosine). For the mix, the logistic regression learns the scalar mix
weights, and the threshold classifier reads the cosine of the vectors mixed with them (a
threshold alone cannot learn a mix).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import torch

from elmo.embedder import ElmoEmbedder
from elmo.layer_choice import representation_layer, representation_names
from elmo.tasks.config import WicTaskConfig
from elmo.tasks.datasets.source import split_file, subsample
from elmo.tasks.datasets.wic import WicExample, read_wic
from elmo.tasks.features import target_features
from elmo.tasks.linear import PairProbe, feature_scale, predict, train_probe
from elmo.tasks.metrics import accuracy
from elmo.tasks.threshold import apply_threshold, tune_threshold

log = logging.getLogger(__name__)


class WicData(NamedTuple):
    train: list[WicExample]
    dev: list[WicExample]


class PairFeatures(NamedTuple):
    first: torch.Tensor  # (N, L, 2D) the target in sentence 1
    second: torch.Tensor  # (N, L, 2D) the target in sentence 2
    labels: torch.Tensor  # (N,) long, 1 = same sense


def load(task: WicTaskConfig) -> WicData:
    """Read train (subsampled to ``max_train_examples``) and dev, both with gold labels."""

    def split(data: str, gold: str, name: str) -> list[WicExample]:
        return read_wic(
            split_file(task.data_dir, data, task.name, name),
            split_file(task.data_dir, gold, task.name, f"{name} gold"),
        )

    train = subsample(
        split(task.train, task.train_gold, "train"), task.max_train_examples, task.probe.seed
    )
    dev = split(task.dev, task.dev_gold, "dev")
    log.info("wic: %d train pairs, %d dev pairs", len(train), len(dev))
    return WicData(train, dev)


def pair_features(embedder: ElmoEmbedder, examples: list[WicExample], desc: str) -> PairFeatures:
    """The target word's layers in both sentences of every pair."""
    first = target_features(
        embedder, [e.sentence1 for e in examples], [e.index1 for e in examples], desc
    )
    second = target_features(
        embedder, [e.sentence2 for e in examples], [e.index2 for e in examples], desc
    )
    return PairFeatures(first, second, torch.tensor([e.label for e in examples], dtype=torch.long))


def evaluate(task: WicTaskConfig, data: WicData, embedder: ElmoEmbedder, name: str) -> dict:
    """Dev accuracy of both classifiers for every layer and the mix (and the tuned thresholds)."""
    train = pair_features(embedder, data.train, f"{name} train")
    dev = pair_features(embedder, data.dev, f"{name} dev")
    threshold_accuracy: dict[str, float] = {}
    logreg_accuracy: dict[str, float] = {}
    thresholds: dict[str, float] = {}
    # Both words' vectors are standardised with the same statistics, those of all train targets.
    scale = feature_scale(torch.cat([train.first, train.second]))
    for representation in representation_names(embedder.num_layers):
        torch.manual_seed(task.probe.seed)
        layer = representation_layer(representation, embedder.num_layers)
        probe = PairProbe(embedder.num_layers, embedder.dim, layer, scale)
        train_probe(
            probe, [train.first, train.second], train.labels, task.probe, f"{name} {representation}"
        )
        logreg_accuracy[representation] = accuracy(
            predict(probe, [dev.first, dev.second]).numpy(), dev.labels.numpy()
        )
        with torch.no_grad():  # the layer (or the learned mix) the logistic regression read
            train_cosines = _cosines(probe, train)
            dev_cosines = _cosines(probe, dev)
        threshold = tune_threshold(train_cosines, train.labels.numpy())
        thresholds[representation] = threshold.value
        threshold_accuracy[representation] = accuracy(
            apply_threshold(dev_cosines, threshold.value), dev.labels.numpy()
        )
        log.info(
            "wic %s %s: threshold %.4f (cos >= %.3f), logreg %.4f",
            name,
            representation,
            threshold_accuracy[representation],
            threshold.value,
            logreg_accuracy[representation],
        )
    return {
        "dev_accuracy_threshold": threshold_accuracy,
        "dev_accuracy_logreg": logreg_accuracy,
        "details": {
            "cosine_thresholds": thresholds,
            "train_pairs": len(data.train),
            "dev_pairs": len(data.dev),
        },
    }


def _cosines(probe: PairProbe, features: PairFeatures):
    first, second = probe.choice(features.first), probe.choice(features.second)  # (N, 2D) each
    return torch.cosine_similarity(first, second, dim=-1).numpy()
