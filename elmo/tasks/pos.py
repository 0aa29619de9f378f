"""POS tagging (UPOS on UD English EWT) as a probe: how linearly readable is each layer?

For every layer, and for a learned scalar mix of all layers, a softmax regression is trained on
the frozen biLM's token vectors (Peters et al., 2018, Sec. 5.3 and Belinkov et al., 2017 use
this kind of probe). Only the probe learns, so the accuracy measures what the layer already holds.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import torch

from elmo.embedder import ElmoEmbedder
from elmo.layer_choice import representation_layer, representation_names
from elmo.tasks.config import PosTaskConfig
from elmo.tasks.datasets.conllu import TaggedSentence, read_conllu
from elmo.tasks.datasets.source import split_file, subsample
from elmo.tasks.features import token_features
from elmo.tasks.linear import TokenProbe, feature_scale, predict, train_probe
from elmo.tasks.metrics import accuracy

log = logging.getLogger(__name__)
UNKNOWN_TAG = -1  # a dev/test tag never seen in train: always counted wrong


class PosData(NamedTuple):
    splits: dict[str, list[TaggedSentence]]  # train, dev and (optionally) test
    tagset: list[str]  # the tags seen in train, sorted; a tag's index is its class id


def load(task: PosTaskConfig) -> PosData:
    """Read the CoNLL-U splits (train subsampled to ``max_train_sentences``)."""
    files = {"train": task.train, "dev": task.dev, "test": task.test}
    splits = {
        split: read_conllu(split_file(task.data_dir, name, task.name, split))
        for split, name in files.items()
        if name
    }
    splits["train"] = subsample(splits["train"], task.max_train_sentences, task.probe.seed)
    tagset = sorted({tag for sentence in splits["train"] for tag in sentence.tags})
    for split, sentences in splits.items():
        log.info(
            "pos %s: %d sentences, %d tokens",
            split,
            len(sentences),
            sum(len(s.tokens) for s in sentences),
        )
    return PosData(splits, tagset)


def tag_ids(sentences: list[TaggedSentence], tagset: list[str]) -> torch.Tensor:
    """Every token's class id, sentences concatenated: (N,) long; unseen tags are UNKNOWN_TAG."""
    index = {tag: i for i, tag in enumerate(tagset)}
    return torch.tensor(
        [index.get(tag, UNKNOWN_TAG) for s in sentences for tag in s.tags], dtype=torch.long
    )


def evaluate(task: PosTaskConfig, data: PosData, embedder: ElmoEmbedder, name: str) -> dict:
    """Probe accuracies of every layer and the mix: ``{"dev_accuracy": {"layer0": ..}, ..}``."""
    features, labels = {}, {}
    for split, sentences in data.splits.items():
        features[split] = token_features(embedder, [s.tokens for s in sentences], f"{name} {split}")
        labels[split] = tag_ids(sentences, data.tagset)
    scale = feature_scale(features["train"])
    eval_splits = [split for split in data.splits if split != "train"]
    scores: dict[str, dict[str, float]] = {split: {} for split in eval_splits}
    for representation in representation_names(embedder.num_layers):
        layer = representation_layer(representation, embedder.num_layers)
        torch.manual_seed(task.probe.seed)  # the same initial probe for every layer and model
        probe = TokenProbe(embedder.num_layers, embedder.dim, len(data.tagset), layer, scale)
        train_probe(
            probe, [features["train"]], labels["train"], task.probe, f"{name} {representation}"
        )
        for split in eval_splits:
            predictions = predict(probe, [features[split]]).numpy()
            scores[split][representation] = accuracy(predictions, labels[split].numpy())
        log.info(
            "pos %s %s: %s",
            name,
            representation,
            {split: round(scores[split][representation], 4) for split in eval_splits},
        )
    return {f"{split}_accuracy": values for split, values in scores.items()}
