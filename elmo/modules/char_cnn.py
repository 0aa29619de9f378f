"""The character CNN token encoder (Kim et al., 2016), ELMo's context-independent layer."""

from __future__ import annotations

import torch
from torch import nn

from elmo.config import CharCNNConfig
from elmo.modules.highway import Highway

_ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}


class CharCNN(nn.Module):
    """Characters -> token vectors: embedding, convolutions + max-pool, highway, projection.

    Args:
        config: the character encoder's settings.
        output_dim: D, the size of the token vectors (the LSTM projection size in ELMo).
    """

    def __init__(self, config: CharCNNConfig, output_dim: int) -> None:
        super().__init__()
        self.config = config
        # Row 0 is the padding token's characters and stays zero (published-format convention).
        self.char_embedding = nn.Embedding(
            config.num_characters, config.char_embedding_dim, padding_idx=0
        )
        self.convolutions = nn.ModuleList(
            nn.Conv1d(config.char_embedding_dim, count, kernel_size=width)
            for width, count in config.filters
        )
        self.activation = _ACTIVATIONS[config.activation]
        self.highway = Highway(config.num_filters, config.num_highway_layers)
        self.projection = nn.Linear(config.num_filters, output_dim)

    @property
    def output_dim(self) -> int:
        return self.projection.out_features

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        """Encode every token from its characters alone.

        Args:
            char_ids: (B, T, W) long character ids (0 = padding).

        Returns:
            (B, T, D) token vectors. Padding tokens get a vector too; callers mask it.
        """
        batch, steps, width = char_ids.shape
        embedded = self.char_embedding(char_ids.view(batch * steps, width))  # (B*T, W, E)
        embedded = embedded.transpose(1, 2)  # (B*T, E, W)
        pooled = [conv(embedded).amax(dim=-1) for conv in self.convolutions]  # k x (B*T, F_k)
        features = self.activation(torch.cat(pooled, dim=-1))  # (B*T, F)
        features = self.highway(features)  # (B*T, F)
        tokens = self.projection(features)  # (B*T, D)
        return tokens.view(batch, steps, self.output_dim)  # (B, T, D)
