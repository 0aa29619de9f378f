"""SST-2 sentiment with ELMo: frozen biLM features, or the biLM fine-tuned with the classifier.

Frozen mode embeds each sentence once and trains the classifier (scalar mix, encoder, output
layer) on the cached layers. Fine-tune mode runs the biLM inside every step, with its own
smaller learning rate and optional gradual unfreezing (``finetune.py``). Both share the
classifier, the loop and the metrics; dev accuracy and F1 (positive class) are reported.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from elmo.data.characters import batch_to_ids
from elmo.embedder import ElmoEmbedder
from elmo.layer_choice import representation_layer
from elmo.progress import progress as progress_bar
from elmo.tasks.config import Sst2TaskConfig
from elmo.tasks.datasets.source import split_file, subsample
from elmo.tasks.datasets.sst2 import SentimentExample, read_sst2
from elmo.tasks.features import sentence_features
from elmo.tasks.finetune import bilm_layer_groups, finetune_optimizer, set_unfrozen, unfrozen_groups
from elmo.tasks.linear import feature_scale
from elmo.tasks.metrics import accuracy, binary_f1
from elmo.tasks.sentence_classifier import ElmoClassifier, SentenceClassifier

log = logging.getLogger(__name__)
Batch = tuple[torch.Tensor, ...]  # the model's positional inputs for one minibatch


class Sst2Data(NamedTuple):
    train: list[SentimentExample]
    dev: list[SentimentExample]


def load(task: Sst2TaskConfig) -> Sst2Data:
    """Read train and dev, each subsampled (seeded) to its configured maximum."""
    train = read_sst2(split_file(task.data_dir, task.train, task.name, "train"))
    dev = read_sst2(split_file(task.data_dir, task.dev, task.name, "dev"))
    data = Sst2Data(
        subsample(train, task.max_train_examples, task.seed),
        subsample(dev, task.max_dev_examples, task.seed),
    )
    log.info(
        "sst2: %d of %d train, %d of %d dev examples",
        len(data.train),
        len(train),
        len(data.dev),
        len(dev),
    )
    return data


def padded_layers(features: Sequence[torch.Tensor]) -> Batch:
    """Cached (L, n, 2D) per sentence -> layers (B, T, L, 2D) and mask (B, T) bool."""
    layers = pad_sequence([f.transpose(0, 1) for f in features], batch_first=True)  # (B, T, L, 2D)
    lengths = torch.tensor([f.shape[1] for f in features])
    mask = torch.arange(layers.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
    return layers, mask


def evaluate(task: Sst2TaskConfig, data: Sst2Data, embedder: ElmoEmbedder, name: str) -> dict:
    """Dev accuracy and F1 of each configured representation, in the configured mode."""
    labels = {
        split: torch.tensor([e.label for e in getattr(data, split)]) for split in ("train", "dev")
    }
    # Each representation's layer (None: the mix), checked against this model's layer count
    # before any embedding work.
    layers = {r: representation_layer(r, embedder.num_layers) for r in task.representations}
    # The pretrained biLM's layers: the cache of frozen mode, and (both modes) the statistics the
    # classifier standardises with.
    train_features = sentence_features(embedder, [e.tokens for e in data.train], f"{name} train")
    scale = feature_scale(torch.cat([f.transpose(0, 1) for f in train_features]))  # over all tokens
    if task.mode == "frozen":
        dev_features = sentence_features(embedder, [e.tokens for e in data.dev], f"{name} dev")
    scores: dict[str, dict[str, float]] = {"dev_accuracy": {}, "dev_f1": {}}
    for representation in task.representations:
        torch.manual_seed(task.seed)
        classifier = SentenceClassifier(
            embedder.num_layers,
            embedder.dim,
            layers[representation],
            scale,
            task.encoder,
            task.encoder_hidden_size,
            task.dropout,
        )
        if task.mode == "frozen":
            setup = _frozen(classifier, task, embedder, train_features, dev_features)
        else:
            setup = _finetuned(classifier, task, embedder, data)
        fit(
            setup.model,
            setup.train,
            labels["train"],
            setup.optimizer,
            task,
            f"{name} {representation} {task.mode}",
            setup.on_step,
        )
        predictions = classify(setup.model, setup.dev, len(data.dev), task.batch_size).numpy()
        scores["dev_accuracy"][representation] = accuracy(predictions, labels["dev"].numpy())
        scores["dev_f1"][representation] = binary_f1(predictions, labels["dev"].numpy())
        log.info(
            "sst2 %s %s (%s): dev accuracy %.4f, F1 %.4f",
            name,
            representation,
            task.mode,
            scores["dev_accuracy"][representation],
            scores["dev_f1"][representation],
        )
    details = {
        "mode": task.mode,
        "encoder": task.encoder,
        "train_examples": len(data.train),
        "dev_examples": len(data.dev),
    }
    return {**scores, "details": details}


class Setup(NamedTuple):
    """What one training run needs: the model, its batches, its optimizer, a per-step hook."""

    model: nn.Module
    train: Callable[[torch.Tensor], Batch]  # example indices -> the model's inputs
    dev: Callable[[torch.Tensor], Batch]
    optimizer: torch.optim.Optimizer
    on_step: Callable[[int], None] | None


def _frozen(
    classifier: SentenceClassifier,
    task: Sst2TaskConfig,
    embedder: ElmoEmbedder,
    train: list[torch.Tensor],
    dev: list[torch.Tensor],
) -> Setup:
    """The classifier alone, on cached layers."""
    classifier.to(embedder.device)
    optimizer = torch.optim.AdamW(
        classifier.parameters(), lr=task.lr, weight_decay=task.weight_decay
    )
    return Setup(
        classifier,
        _cached_batches(train, embedder.device),
        _cached_batches(dev, embedder.device),
        optimizer,
        None,
    )


def _finetuned(
    classifier: SentenceClassifier, task: Sst2TaskConfig, embedder: ElmoEmbedder, data: Sst2Data
) -> Setup:
    """A copy of the biLM in front of the classifier, two learning rates, gradual unfreezing."""
    bilm = copy.deepcopy(embedder.bilm)  # the caller's biLM stays as it was
    model = ElmoClassifier(bilm, classifier).to(embedder.device)
    optimizer = finetune_optimizer(
        bilm, list(classifier.parameters()), task.lr, task.bilm_lr, task.weight_decay
    )
    groups = bilm_layer_groups(bilm)

    def on_step(step: int) -> None:
        set_unfrozen(groups, unfrozen_groups(step, task.unfreeze_every, len(groups)))

    return Setup(
        model,
        _token_batches([e.tokens for e in data.train], embedder),
        _token_batches([e.tokens for e in data.dev], embedder),
        optimizer,
        on_step,
    )


def _cached_batches(features: list[torch.Tensor], device) -> Callable[[torch.Tensor], Batch]:
    def batch(indices: torch.Tensor) -> Batch:
        layers, mask = padded_layers([features[i] for i in indices.tolist()])
        return layers.to(device), mask.to(device)

    return batch


def _token_batches(
    sentences: list[list[str]], embedder: ElmoEmbedder
) -> Callable[[torch.Tensor], Batch]:
    max_chars = embedder.bilm.config.char_cnn.max_characters_per_token

    def batch(indices: torch.Tensor) -> Batch:
        return (
            batch_to_ids([sentences[i] for i in indices.tolist()], max_chars).to(embedder.device),
        )

    return batch


def fit(
    model: nn.Module,
    make_batch: Callable[[torch.Tensor], Batch],
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    task: Sst2TaskConfig,
    desc: str,
    on_step: Callable[[int], None] | None = None,
) -> None:
    """Train ``model(*make_batch(indices))`` against ``labels`` for ``task.epochs`` epochs.

    ``on_step(step)`` runs before each optimizer step (gradual unfreezing).
    """
    generator = torch.Generator().manual_seed(task.seed)
    steps_per_epoch = -(-len(labels) // task.batch_size)
    progress = progress_bar(
        total=task.epochs * steps_per_epoch, desc=desc, unit="steps", leave=False
    )
    model.train()
    step = 0
    for _ in range(task.epochs):
        for indices in torch.randperm(len(labels), generator=generator).split(task.batch_size):
            if on_step is not None:
                on_step(step)
            logits = model(*make_batch(indices))
            loss = nn.functional.cross_entropy(logits, labels[indices].to(logits.device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.4f}")
    progress.close()
    model.eval()


@torch.no_grad()
def classify(
    model: nn.Module, make_batch: Callable[[torch.Tensor], Batch], count: int, batch_size: int
) -> torch.Tensor:
    """The model's predicted class for examples 0 .. count-1: (count,) long, on the CPU."""
    model.eval()
    predictions = [
        model(*make_batch(indices)).argmax(dim=-1).cpu()
        for indices in torch.arange(count).split(batch_size)
    ]
    return torch.cat(predictions)
