"""Linear probes on cached biLM features: one layer, or a learned scalar mix of all layers.

A probe is softmax regression (a single linear layer and cross-entropy), trained with Adam on
features that were computed once (``features.py``). With ``layer=None`` the probe first mixes the
L layers with ELMo's scalar mix (``gamma * softmax(s) . layers``, Eq. 1 of the paper), learned
jointly with the linear layer; the biLM itself stays frozen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from elmo.modules.scalar_mix import ScalarMix
from elmo.progress import progress as progress_bar
from elmo.tasks.config import ProbeTrainingConfig


class FeatureScale(NamedTuple):
    """Per-layer, per-dimension statistics of training features, for standardising them."""

    mean: torch.Tensor  # (L, 2D)
    std: torch.Tensor  # (L, 2D)


def feature_scale(features: torch.Tensor) -> FeatureScale:
    """The mean and standard deviation of ``(N, L, 2D)`` features over their N rows."""
    if features.dim() != 3 or len(features) < 2:
        raise ValueError(f"need (N >= 2, L, 2D) features, got shape {tuple(features.shape)}")
    std, mean = torch.std_mean(features, dim=0)  # (L, 2D) each
    return FeatureScale(mean, std.clamp(min=1e-6))


class LayerChoice(nn.Module):
    """Standardise the layers, then read one of them or their learned scalar mix.

    Standardising each layer's dimensions with statistics of the training features does not
    change what a linear probe can express, but the biLM's layers are far from centred (a large
    shared offset, small spread per dimension), which makes plain Adam crawl. Mixing standardised
    layers is the paper's variant of the mix with a normalisation of each layer before weighting
    (Peters et al., 2018, Sec. 3.2).

    Args:
        num_layers: L, the layers in the features.
        layer: the layer to read, or None to learn a scalar mix of all L.
        scale: the statistics to standardise with; None = use the features as they are.
    """

    def __init__(
        self, num_layers: int, layer: int | None, scale: FeatureScale | None = None
    ) -> None:
        super().__init__()
        self.layer = layer
        self.mix = ScalarMix(num_layers) if layer is None else None
        mean, std = scale if scale is not None else (torch.zeros(()), torch.ones(()))
        self.register_buffer("mean", mean.clone())  # (L, 2D), or a scalar 0
        self.register_buffer("std", std.clone())  # (L, 2D), or a scalar 1

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, L, 2D) -> (N, 2D); any shape (..., L, 2D) -> (..., 2D)."""
        features = (features - self.mean) / self.std  # (..., L, 2D)
        if self.mix is None:
            return features[..., self.layer, :]
        return self.mix(features.movedim(-2, 0))  # (L, ..., 2D) -> (..., 2D)


class TokenProbe(nn.Module):
    """Softmax regression on one token representation: features (N, L, 2D) -> logits (N, C).

    Args:
        num_layers: L; input_dim: 2D; num_classes: C.
        layer: the layer to read, or None for a learned scalar mix.
        scale: training-feature statistics to standardise with (see LayerChoice).
    """

    def __init__(
        self,
        num_layers: int,
        input_dim: int,
        num_classes: int,
        layer: int | None,
        scale: FeatureScale | None = None,
    ) -> None:
        super().__init__()
        self.choice = LayerChoice(num_layers, layer, scale)
        self.linear = nn.Linear(input_dim, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features (N, L, 2D) -> logits (N, C)."""
        return self.linear(self.choice(features))


def pair_features(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Features of two word vectors: ``[u * v, |u - v|, cos(u, v)]``, (N, 2D) x 2 -> (N, 4D + 1)."""
    cosine = torch.cosine_similarity(u, v, dim=-1).unsqueeze(-1)  # (N, 1)
    return torch.cat([u * v, (u - v).abs(), cosine], dim=-1)


class PairProbe(nn.Module):
    """Logistic regression on the features of two words (WiC): (N, L, 2D) x 2 -> logits (N, 2).

    Both words are read through the same layer choice (one scalar mix for both). Arguments as
    for TokenProbe.
    """

    def __init__(
        self,
        num_layers: int,
        input_dim: int,
        layer: int | None,
        scale: FeatureScale | None = None,
    ) -> None:
        super().__init__()
        self.choice = LayerChoice(num_layers, layer, scale)
        self.linear = nn.Linear(2 * input_dim + 1, 2)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """first, second (N, L, 2D) -> logits (N, 2)."""
        return self.linear(pair_features(self.choice(first), self.choice(second)))


def train_probe(
    probe: nn.Module,
    inputs: Sequence[torch.Tensor],
    labels: torch.Tensor,
    config: ProbeTrainingConfig,
    desc: str = "probe",
) -> nn.Module:
    """Fit ``probe(*inputs[batch])`` to ``labels`` (Adam, cross-entropy); returns it in eval mode.

    Args:
        probe: maps minibatches of ``inputs`` (each N-first) to logits (b, C).
        inputs: feature tensors with N rows each.
        labels: (N,) long class ids.
        config: epochs, batch size, learning rate, weight decay and seed.
    """
    count = len(labels)
    if any(len(tensor) != count for tensor in inputs):
        raise ValueError(f"inputs of lengths {[len(t) for t in inputs]} for {count} labels")
    optimizer = torch.optim.Adam(probe.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)  # same batches on every run
    probe.train()
    progress = progress_bar(range(config.epochs), desc=desc, unit="epochs", leave=False)
    for _ in progress:
        total, batches = 0.0, 0
        for batch in torch.randperm(count, generator=generator).split(config.batch_size):
            loss = nn.functional.cross_entropy(probe(*(t[batch] for t in inputs)), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, batches = total + loss.item(), batches + 1
        progress.set_postfix(loss=f"{total / max(batches, 1):.4f}")
    return probe.eval()


@torch.no_grad()
def predict(
    probe: nn.Module, inputs: Sequence[torch.Tensor], batch_size: int = 4096
) -> torch.Tensor:
    """The probe's most likely class for every row of ``inputs``: (N,) long."""
    probe.eval()
    count = len(inputs[0])
    predictions = [
        probe(*(t[start : start + batch_size] for t in inputs)).argmax(dim=-1)
        for start in range(0, count, batch_size)
    ]
    return torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)
