"""Per-token tagging probes (POS, chunking): how linearly readable is each layer?

For every ELMo layer (the token layer and each contextual layer, however many the biLM has) and
for a learned scalar mix of all of them, a softmax regression is trained on the frozen biLM's
token vectors (Peters et al., 2018, Sec. 5.3 and Belinkov et al., 2017 use this kind of probe).
Only the probe learns, so a score measures what the layer already holds. A task supplies its
sentences and its scores (``pos.py``: token accuracy; ``chunk.py``: span F1 and accuracy).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from elmo.embedder import ElmoEmbedder
from elmo.layer_choice import representation_layer, representation_names
from elmo.tasks.config import ProbeTrainingConfig
from elmo.tasks.datasets.conllu import TaggedSentence
from elmo.tasks.features import token_features
from elmo.tasks.linear import TokenProbe, feature_scale, predict, train_probe

log = logging.getLogger(__name__)
UNKNOWN_TAG = -1  # a dev/test tag never seen in train: always counted wrong

# (predicted tags, gold tags), one list per sentence -> a score
TagScore = Callable[[list[list[str]], list[list[str]]], float]


class TaggingData(NamedTuple):
    splits: dict[str, list[TaggedSentence]]  # train, dev and (optionally) test
    tagset: list[str]  # the tags seen in train, sorted; a tag's index is its class id


def tagging_data(task: str, splits: dict[str, list[TaggedSentence]]) -> TaggingData:
    """The splits with the train tagset; logs each split's size under the task's name."""
    for split, sentences in splits.items():
        if not sentences:
            raise ValueError(f"{task}: the {split} split has no sentences")
        log.info(
            "%s %s: %d sentences, %d tokens",
            task,
            split,
            len(sentences),
            sum(len(s.tokens) for s in sentences),
        )
    tagset = sorted({tag for sentence in splits["train"] for tag in sentence.tags})
    return TaggingData(splits, tagset)


def tag_ids(sentences: Sequence[TaggedSentence], tagset: Sequence[str]) -> torch.Tensor:
    """Every token's class id, sentences concatenated: (N,) long; unseen tags are UNKNOWN_TAG."""
    index = {tag: i for i, tag in enumerate(tagset)}
    return torch.tensor(
        [index.get(tag, UNKNOWN_TAG) for s in sentences for tag in s.tags], dtype=torch.long
    )


def tags_per_sentence(
    predictions: torch.Tensor, sentences: Sequence[TaggedSentence], tagset: Sequence[str]
) -> list[list[str]]:
    """(N,) class ids of the concatenated sentences -> one list of tag names per sentence."""
    names = [tagset[i] for i in predictions.tolist()]
    result, start = [], 0
    for sentence in sentences:
        result.append(names[start : start + len(sentence.tokens)])
        start += len(sentence.tokens)
    return result


def evaluate_tagging(
    task: str,
    probe_config: ProbeTrainingConfig,
    data: TaggingData,
    embedder: ElmoEmbedder,
    name: str,
    scores: dict[str, TagScore],
) -> dict[str, dict[str, float]]:
    """Probe scores of every layer and the mix: ``{"dev_<score>": {"layer0": .., "mix": ..}, ..}``.

    Args:
        task: the task's name, for the log.
        probe_config: how each probe trains (the same seed, so the same initial probe, for
            every layer and model).
        data: the splits (``train`` trains the probes; the others are scored) and the tagset.
        name: the model's name in results.
        scores: score name -> function of predicted and gold tags per sentence.
    """
    features, labels = {}, {}
    for split, sentences in data.splits.items():
        features[split] = token_features(embedder, [s.tokens for s in sentences], f"{name} {split}")
        labels[split] = tag_ids(sentences, data.tagset)
    scale = feature_scale(features["train"])
    eval_splits = [split for split in data.splits if split != "train"]
    gold = {split: [s.tags for s in data.splits[split]] for split in eval_splits}
    results: dict[str, dict[str, float]] = {
        f"{split}_{score}": {} for split in eval_splits for score in scores
    }
    for representation in representation_names(embedder.num_layers):
        layer = representation_layer(representation, embedder.num_layers)
        torch.manual_seed(probe_config.seed)
        probe = TokenProbe(embedder.num_layers, embedder.dim, len(data.tagset), layer, scale)
        train_probe(
            probe, [features["train"]], labels["train"], probe_config, f"{name} {representation}"
        )
        for split in eval_splits:
            predicted = tags_per_sentence(
                predict(probe, [features[split]]), data.splits[split], data.tagset
            )
            for score, function in scores.items():
                results[f"{split}_{score}"][representation] = function(predicted, gold[split])
        log.info(
            "%s %s %s: %s",
            task,
            name,
            representation,
            {key: round(values[representation], 4) for key, values in results.items()},
        )
    return results
