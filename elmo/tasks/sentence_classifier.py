"""The SST-2 model: ELMo layers -> one representation -> a small encoder -> class logits.

The representation is one biLM layer or ELMo's learned scalar mix (``linear.LayerChoice``). The
encoder is either pooling (the masked mean and max over tokens, concatenated) or a one-layer
BiLSTM followed by the same pooling. ``ElmoClassifier`` puts the biLM in front, for fine-tuning.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from elmo.model import BiLM
from elmo.modules.sequence import lengths_from_mask, remove_sentence_boundaries
from elmo.tasks.linear import FeatureScale, LayerChoice


def masked_mean_max(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[mean over real tokens, max over real tokens]``: (B, T, K) and (B, T) -> (B, 2K).

    Every row must have at least one real token.
    """
    weights = mask.unsqueeze(-1).to(values.dtype)  # (B, T, 1)
    mean = (values * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)  # (B, K)
    maximum = values.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)  # (B, K)
    return torch.cat([mean, maximum], dim=-1)


class SentenceClassifier(nn.Module):
    """Sentence logits from ELMo layers.

    Args:
        num_layers: L; input_dim: 2D, the size of each layer.
        layer: the biLM layer to read, or None for a learned scalar mix.
        scale: statistics of the training tokens' layers to standardise with (``LayerChoice``);
            kept fixed, also while the biLM is fine-tuned.
        encoder: "pool" or "bilstm".
        hidden_size: H per direction of the BiLSTM encoder.
        dropout: on the ELMo representation and on the pooled vector.
        num_classes: C.
    """

    def __init__(
        self,
        num_layers: int,
        input_dim: int,
        layer: int | None,
        scale: FeatureScale | None = None,
        encoder: str = "pool",
        hidden_size: int = 64,
        dropout: float = 0.2,
        num_classes: int = 2,
    ) -> None:
        super().__init__()
        if encoder not in ("pool", "bilstm"):
            raise ValueError(f"encoder must be pool or bilstm, got {encoder!r}")
        self.choice = LayerChoice(num_layers, layer, scale)
        self.dropout = nn.Dropout(dropout)
        self.lstm = (
            nn.LSTM(input_dim, hidden_size, batch_first=True, bidirectional=True)
            if encoder == "bilstm"
            else None
        )
        pooled_dim = 2 * (2 * hidden_size if self.lstm is not None else input_dim)
        self.output = nn.Linear(pooled_dim, num_classes)

    def forward(self, layers: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Args:
            layers: (B, T, L, 2D) the biLM layers of each token (zero at padding).
            mask: (B, T) bool, True for real tokens; every row has at least one.

        Returns:
            (B, C) logits.
        """
        tokens = self.dropout(self.choice(layers))  # (B, T, 2D)
        if self.lstm is not None:
            lengths = lengths_from_mask(mask).cpu()
            packed = pack_padded_sequence(tokens, lengths, batch_first=True, enforce_sorted=False)
            encoded, _ = pad_packed_sequence(
                self.lstm(packed)[0], batch_first=True, total_length=tokens.shape[1]
            )  # (B, T, 2H)
            tokens = encoded
        return self.output(self.dropout(masked_mean_max(tokens, mask)))  # (B, 2K) -> (B, C)


class ElmoClassifier(nn.Module):
    """A biLM in front of a SentenceClassifier, so that both can be trained (fine-tuning).

    The biLM runs in eval mode (no biLM dropout), as ``elmo.Elmo`` does; whether its weights
    learn is up to ``requires_grad`` (see ``finetune.py``). When none of them does, the biLM runs
    without building a graph.
    """

    def __init__(self, bilm: BiLM, classifier: SentenceClassifier) -> None:
        super().__init__()
        self.bilm = bilm
        self.classifier = classifier

    def train(self, mode: bool = True) -> ElmoClassifier:
        super().train(mode)
        self.bilm.eval()
        return self

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        """char_ids (B, T, W) from ``batch_to_ids`` -> logits (B, C)."""
        tune = torch.is_grad_enabled() and any(p.requires_grad for p in self.bilm.parameters())
        with torch.set_grad_enabled(tune):
            output = self.bilm(char_ids)  # layers (L, B, T+2, 2D), mask (B, T+2)
        layers = output.layers.permute(1, 2, 0, 3)  # (B, T+2, L, 2D)
        layers, mask = remove_sentence_boundaries(layers, output.mask)  # (B, T, L, 2D), (B, T)
        return self.classifier(layers, mask)
