"""Model FLOPs of a biLM and the machine's matmul peak: the yardsticks of the speed benchmarks.

FLOPs count multiply-adds as 2 and only the products with weights (convolutions, linear layers,
LSTM gates, projections, attention's and feed-forward layers, softmax logits); elementwise work
is left out, as is usual for model-FLOP utilisation, and so are attention's products of queries
with keys and of weights with values (4 T' D per layer for T' keys: under 3% of a block's
24 D^2 weight products at T' = 20, D = 128 and a feed-forward width of 4D). They are *model*
FLOPs: what the plain computation does per token, whatever the fast paths skip (padding
characters, repeated word types, cached tokens).
"""

from __future__ import annotations

import statistics
import time

import torch

from elmo.config import BiLMConfig


def char_cnn_flops(config: BiLMConfig) -> int:
    """Forward FLOPs of the character encoder for one token (all W character slots)."""
    cnn = config.char_cnn
    width = cnn.max_characters_per_token
    convolutions = sum(
        2 * cnn.char_embedding_dim * k * count * (width - k + 1) for k, count in cnn.filters
    )
    filters = cnn.num_filters
    highway = cnn.num_highway_layers * 2 * filters * 2 * filters
    projection = 2 * filters * config.token_dim
    return convolutions + highway + projection


def lstm_flops(config: BiLMConfig) -> int:
    """Forward FLOPs of both LSTM stacks for one token."""
    lstm = config.lstm
    cell, dim = lstm.cell_size, lstm.projection_dim
    per_layer = 2 * (dim * 4 * cell + dim * 4 * cell + cell * dim)  # input, recurrent, projection
    return 2 * lstm.num_layers * per_layer  # two directions


def transformer_flops(config: BiLMConfig) -> int:
    """Forward FLOPs of both Transformer stacks for one token (weight products only)."""
    blocks = config.transformer
    dim, inner = blocks.model_dim, blocks.feedforward_dim
    per_layer = 2 * (dim * 3 * dim + dim * dim + 2 * dim * inner)  # q, k, v; output; FFN
    return 2 * blocks.num_layers * per_layer  # two directions


CONTEXTUALIZER_FLOPS = {"lstm": lstm_flops, "transformer": transformer_flops}


def contextualizer_flops(config: BiLMConfig) -> int:
    """Forward FLOPs of both directions' contextual layers for one token."""
    return CONTEXTUALIZER_FLOPS[config.contextualizer](config)


def forward_flops_per_token(config: BiLMConfig) -> int:
    """Forward FLOPs of the biLM (no softmax) for one token."""
    return char_cnn_flops(config) + contextualizer_flops(config)


def softmax_flops_per_prediction(config: BiLMConfig) -> int:
    """Forward FLOPs of the training softmax for one predicted token (one direction).

    full: all V logits; sampled: the S shared negatives plus the true class; adaptive: the head
    (first cutoff + one logit per tail cluster) and, as an upper bound, every tail's projection
    (tails are only computed for tokens that fall in them).
    """
    dim, vocab = config.token_dim, config.vocab_size
    softmax = config.softmax
    if softmax.kind == "full":
        return 2 * dim * vocab
    if softmax.kind == "sampled":
        return 2 * dim * (min(softmax.num_samples, vocab) + 1)
    cutoffs = [c for c in softmax.cutoffs if c < vocab]
    return 2 * dim * (cutoffs[0] + len(cutoffs)) if cutoffs else 2 * dim * vocab


def training_flops_per_token(config: BiLMConfig) -> int:
    """FLOPs of one training token: forward + backward (2x forward) of the character encoder,
    one direction's contextual layers and the softmax. Each token of a training window runs
    through the character encoder and *one* direction's stack (the forward and backward streams
    are separate windows)."""
    forward = (char_cnn_flops(config) + contextualizer_flops(config) // 2
               + softmax_flops_per_prediction(config))  # fmt: skip
    return 3 * forward


def measure_matmul_peak(size: int = 2048, repeats: int = 10, dtype=torch.float32, device="cpu") -> float:
    """Median GFLOP/s of a (size x size) @ (size x size) product, after one warm-up."""
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    times = []
    for index in range(repeats + 1):
        _synchronize(device)
        started = time.perf_counter()
        torch.mm(a, b)
        _synchronize(device)
        if index:  # the first product warms up the kernels
            times.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(times) / 1e9


def _synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
