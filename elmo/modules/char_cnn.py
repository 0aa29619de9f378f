"""The character CNN token encoder (Kim et al., 2016), ELMo's context-independent layer.

Two ways to run it, with the same arithmetic per token:

* ``encode``: every token over all W character slots (the plain computation, kept as the oracle);
* ``forward`` / ``encode_distinct``: each distinct token once, over only the slots that can change
  its result. A token is W slots: its characters framed by begin/end-of-word, then the padding
  character up to W. A convolution window that lies wholly in the padding has the same value for
  every token, so a bucket of tokens needs only its longest token's used slots plus the widest
  filter: that still holds at least one all-padding window for each filter, so the max-pool sees
  the same values. This skips 3-5x of the convolution work on English text and is bit-exact with
  ``encode`` (checked against the reference fixtures, see tests/modules/test_char_cnn.py).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from elmo.config import CharCNNConfig
from elmo.data.characters import PAD_CHAR
from elmo.modules.highway import Highway
from elmo.modules.max_pool import max_over_time

# The nonlinearity after max-pooling each filter, by ``CharCNNConfig.activation``.
ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}
PAD_ID = PAD_CHAR + 1  # the padding character inside a token's W slots (ids are shifted by +1)
# Distinct tokens are convolved in buckets of about this many, sorted by length, each bucket
# trimmed to its own longest token.
BUCKET_ROWS = 256
# GEMMs of fewer rows take another kernel in MKL, whose rounding differs by ~1e-7 per row; with
# at least this many rows a token's vector does not depend on how many tokens share the GEMM
# (measured on torch 2.13 CPU, 1 and 2 threads; tests/modules/test_char_cnn.py checks it).
MIN_GEMM_ROWS = 16


def used_slots(char_ids: torch.Tensor) -> torch.Tensor:
    """(N, W) character ids -> (N,) long: the position after each token's last non-padding slot."""
    positions = torch.arange(1, char_ids.shape[-1] + 1, device=char_ids.device)  # (W,)
    return ((char_ids != PAD_ID) * positions).amax(dim=-1)  # (N,)


def distinct_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct rows of (N, W), in order of first occurrence, and each row's index among them.

    First-occurrence order (not ``torch.unique``'s sorted order) keeps a token's row in the
    highway GEMM independent of the tokens after it, and small GEMMs round by row position.

    Returns:
        distinct (U, W) and inverse (N,) with ``distinct[inverse] == rows``.
    """
    distinct, inverse = torch.unique(rows, dim=0, return_inverse=True)  # sorted (U, W), (N,)
    positions = torch.arange(len(rows), device=rows.device)  # (N,)
    first = torch.full((len(distinct),), len(rows), device=rows.device)  # (U,)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")  # first occurrence of each
    order = first.argsort()  # (U,)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order), device=rows.device)
    return distinct[order], rank[inverse]


def length_buckets(slots: torch.Tensor, rows: int = BUCKET_ROWS) -> list[torch.Tensor]:
    """Indices of tokens sorted by used slots, cut into buckets of ``rows`` (the last one merged
    into its neighbour when it would hold fewer than MIN_GEMM_ROWS)."""
    order = slots.argsort(stable=True)  # (N,)
    bounds = list(range(0, len(order), rows)) + [len(order)]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < MIN_GEMM_ROWS:
        del bounds[-2]
    return [order[start:end] for start, end in itertools.pairwise(bounds)]


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
        self.activation = ACTIVATIONS[config.activation]
        self.highway = Highway(config.num_filters, config.num_highway_layers)
        self.projection = nn.Linear(config.num_filters, output_dim)
        self.widest_filter = max(width for width, _ in config.filters)
        # An optional ``TokenVectorCache`` (``BiLM.use_token_cache``): not a weight, not saved.
        self.token_cache = None

    @property
    def output_dim(self) -> int:
        return self.projection.out_features

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        """Encode every token from its characters alone, each distinct token once.

        With a token cache (``token_cache``) and no gradient, tokens seen before are looked up.

        Args:
            char_ids: (B, T, W) long character ids (0 = padding).

        Returns:
            (B, T, D) token vectors; zero for padding tokens (all ids 0).
        """
        batch, steps, width = char_ids.shape
        flat = char_ids.reshape(batch * steps, width)  # (B*T, W)
        real = (flat > 0).any(dim=-1)  # (B*T,)
        distinct, inverse = distinct_rows(flat[real])  # (U, W), (R,)
        if self.token_cache is not None and self.token_cache.applies(self):
            vectors = self.token_cache.vectors(self, distinct)  # (U, D)
        else:
            vectors = self.encode_distinct(distinct)  # (U, D)
        table = torch.cat([vectors, vectors.new_zeros(1, self.output_dim)])  # row U: padding
        index = torch.full((batch * steps,), len(distinct), device=flat.device)  # (B*T,)
        index[real] = inverse
        return table[index].view(batch, steps, self.output_dim)  # (B, T, D)

    def encode_distinct(self, char_ids: torch.Tensor) -> torch.Tensor:
        """(N, W) ids of real tokens -> (N, D), convolving length buckets over trimmed slots.

        Equal to ``encode`` bit for bit (module docstring); meant for distinct tokens.
        """
        if len(char_ids) == 0:
            return self.projection.weight.new_zeros(0, self.output_dim)
        width = char_ids.shape[-1]
        slots = used_slots(char_ids)  # (N,)
        buckets = length_buckets(slots)
        pooled = []
        for rows in buckets:
            keep = min(width, int(slots[rows].max()) + self.widest_filter)
            pooled.append(self._pool(char_ids[rows, :keep]))  # (n, F)
        order = torch.cat(buckets)  # (N,) position of each pooled row in the input
        restore = torch.empty_like(order)
        restore[order] = torch.arange(len(order), device=order.device)
        return self._project(torch.cat(pooled)[restore])  # (N, D)

    def encode(self, char_ids: torch.Tensor) -> torch.Tensor:
        """The plain computation: (N, W) ids -> (N, D), every token over all W slots."""
        return self._project(self._pool(char_ids))

    def _pool(self, char_ids: torch.Tensor) -> torch.Tensor:
        """Embedding, convolutions and max-pool: (N, W') ids -> (N, F) features."""
        rows = len(char_ids)
        embedded = self.char_embedding(_pad_rows(char_ids)).transpose(1, 2)  # (N', E, W')
        pooled = [max_over_time(conv(embedded)) for conv in self.convolutions]  # k x (N', F_k)
        return self.activation(torch.cat(pooled, dim=-1))[:rows]  # (N, F)

    def _project(self, features: torch.Tensor) -> torch.Tensor:
        """Highway and projection: (N, F) -> (N, D)."""
        return self.projection(self.highway(_pad_rows(features)))[: len(features)]  # (N, D)


def _pad_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Append zero rows up to MIN_GEMM_ROWS (see there): (N, ...) -> (max(N, MIN_GEMM_ROWS), ...)."""
    missing = MIN_GEMM_ROWS - len(tensor)
    if missing <= 0 or len(tensor) == 0:
        return tensor
    return torch.cat([tensor, tensor.new_zeros(missing, *tensor.shape[1:])])
