"""How a Transformer contextualiser knows word order: one class per position encoding.

Self-attention by itself is blind to order; each kind here gives it order in one of the two
usual places, and has the same two hooks so the stack needs no case for either:

* ``embed(tokens)``: what the first block reads (sinusoidal adds a vector per position);
* ``attention_bias(steps, ...)``: a (H, T, T) term added to every block's attention scores
  (ALiBi's distance penalty), or None.

Positions count from the first token a direction reads: the first word for the forward LM, the
last word for the backward LM (``elmo.modules.transformer`` reverses its rows). Training reads
windows of ``data.unroll_steps`` positions, while a sentence embedded afterwards may be longer;
that difference is what separates the two kinds (see ``AlibiBias``).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class SinusoidalPositions(nn.Module):
    """Fixed sine and cosine vectors added to the token vectors (Vaswani et al., 2017, Sec. 3.5).

    No parameters, so any length can be read; but Press et al. (2022, Sec. 2) show a model
    trained this way degrades quickly past the lengths it was trained on.

    Args:
        dim: D, the token vectors' size.
        num_heads: unused (the hooks are the same for every kind).
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.dim = dim

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, D) token vectors plus each position's vector."""
        return tokens + sinusoid_table(tokens.shape[1], self.dim, tokens.device, tokens.dtype)

    def attention_bias(self, steps: int, device: torch.device, dtype: torch.dtype) -> None:
        return None


class AlibiBias(nn.Module):
    """ALiBi: no position vectors; each head's attention score for a key ``d`` positions back is
    lowered by ``slope_h * d`` (Press et al., 2022, "Train Short, Test Long", Sec. 3).

    The default here because training reads short windows (``data.unroll_steps``, 20 by default)
    but embedding reads whole sentences, often longer: ALiBi keeps its perplexity on sequences
    several times longer than those it was trained on, where sinusoidal positions do not (ibid.,
    Fig. 1 and Sec. 4). Relative distances also mean that a window cut mid-sentence (a training
    stream) and a sentence read from ``<S>`` look alike to the model.

    Args:
        dim: unused (the hooks are the same for every kind).
        num_heads: H; each head gets its own slope.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.register_buffer("slopes", alibi_slopes(num_heads), persistent=False)  # (H,)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens

    def attention_bias(self, steps: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """(H, T, T): ``-slope_h * |i - j|`` for query i and key j (future keys are masked anyway)."""
        positions = torch.arange(steps, device=device)
        distance = (positions[:, None] - positions[None, :]).abs().to(dtype)  # (T, T)
        return -self.slopes.to(device, dtype)[:, None, None] * distance  # (H, T, T)


# position encoding -> its class, built as cls(D, H) (config.py validates against the keys).
POSITION_ENCODINGS: dict[str, type[nn.Module]] = {
    "alibi": AlibiBias,
    "sinusoidal": SinusoidalPositions,
}


def build_position_encoding(kind: str, dim: int, num_heads: int) -> nn.Module:
    """The position encoding of ``kind`` for blocks of width D with H heads."""
    if kind not in POSITION_ENCODINGS:
        raise ValueError(
            f"unknown position encoding {kind!r}; expected one of {list(POSITION_ENCODINGS)}"
        )
    return POSITION_ENCODINGS[kind](dim, num_heads)


def sinusoid_table(steps: int, dim: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(T, D): ``sin(p / 10000^(2i/D))`` in the even columns, ``cos`` in the odd ones (Sec. 3.5)."""
    positions = torch.arange(steps, device=device, dtype=torch.float64)[:, None]  # (T, 1)
    rates = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float64) * (-math.log(10000.0) / dim)
    )  # (ceil(D/2),)
    table = torch.zeros(steps, dim, device=device, dtype=torch.float64)
    table[:, 0::2] = torch.sin(positions * rates)
    table[:, 1::2] = torch.cos(positions * rates[: dim // 2])
    return table.to(dtype)


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """(H,) the heads' slopes: the geometric sequence ``2^(-8/H), 2^(-16/H), ...``; for H not a
    power of two, those of the nearest lower power followed by every other one of the next
    (Press et al., 2022, Sec. 3 and their reference code)."""
    lower = 2 ** math.floor(math.log2(num_heads))

    def geometric(count: int) -> list[float]:
        return [2.0 ** (-8.0 * (i + 1) / count) for i in range(count)]

    slopes = geometric(lower) + geometric(2 * lower)[0::2][: num_heads - lower]
    return torch.tensor(slopes, dtype=torch.float32)
