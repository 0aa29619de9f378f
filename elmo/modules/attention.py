"""Causal multi-head self-attention: each position reads itself and the positions before it.

The attention itself is ``torch.nn.functional.scaled_dot_product_attention``, which picks a
fused kernel where the device has one for the mask it is given (on CUDA the memory-efficient
kernel takes an explicit mask; the plain maths elsewhere).

Which keys a query may read is one explicit boolean (B, 1, T, T) mask (``causal_mask``): the
keys at or before it, real tokens only, and always the query itself. The diagonal is what keeps
a padding row finite: a row with every key masked would be a softmax over nothing, NaN.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional


def causal_mask(mask: torch.Tensor) -> torch.Tensor:
    """Which keys each query may attend to.

    Args:
        mask: (B, T) bool, True for real tokens.

    Returns:
        (B, 1, T, T) bool: ``[b, 0, i, j]`` is True when j <= i and token j is real, or j == i.
    """
    steps = mask.shape[1]
    positions = torch.arange(steps, device=mask.device)
    earlier = positions[None, :] <= positions[:, None]  # (T, T): key j at or before query i
    allowed = earlier & mask[:, None, :]  # (B, T, T): ... and a real token
    allowed = allowed | torch.eye(steps, dtype=torch.bool, device=mask.device)  # always itself
    return allowed[:, None]  # (B, 1, T, T), broadcast over heads


def attention_mask(
    allowed: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype
) -> torch.Tensor:
    """What ``scaled_dot_product_attention`` takes as ``attn_mask``: the boolean mask alone, or
    the (H, T, T) score bias with -inf where a key is not allowed, (B, H, T, T) in ``dtype``."""
    if bias is None:
        return allowed  # (B, 1, T, T) bool
    return bias.to(dtype).masked_fill(~allowed, float("-inf"))  # (B, H, T, T)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention (Vaswani et al., 2017, Sec. 3.2.2) under a given mask.

    Args:
        dim: D, the width in and out (H heads of D / H each).
        num_heads: H.
        dropout: on the attention weights, training only.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)  # queries, keys, values of every head at once
        self.output = nn.Linear(dim, dim)

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attend.

        Args:
            inputs: (B, T, D).
            mask: ``attention_mask``'s result: (B, 1, T, T) bool, True where a query may read a
                key, or (B, H, T, T) float added to the scores (-inf: not allowed).

        Returns:
            (B, T, D).
        """
        batch, steps, dim = inputs.shape
        heads = self.qkv(inputs).view(batch, steps, 3, self.num_heads, dim // self.num_heads)
        query, key, value = heads.permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, D/H)
        if mask.dtype != torch.bool:
            mask = mask.to(query.dtype)  # under autocast the scores' dtype (bf16)
        attended = functional.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, T, D/H)
        return self.output(attended.transpose(1, 2).reshape(batch, steps, dim))  # (B, T, D)
