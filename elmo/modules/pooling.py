"""Word vectors from piece vectors: each whitespace word's vector pooled from its pieces.

A sentencepiece biLM gives one vector per piece. A user (or a probe) who asks for words gets one
vector per whitespace word: its first piece's, its last piece's, or the mean of all of them.
``first`` is the usual choice for tagging with subword models (the piece that holds the word
mark); ``last`` has seen the whole word in the forward direction; ``mean`` uses every piece.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from elmo.config import POOLINGS


def pool_pieces(layers: torch.Tensor, pieces_per_word: Sequence[int], pooling: str) -> torch.Tensor:
    """Pool consecutive pieces into words.

    Args:
        layers: (L, P, 2D) the vectors of one sentence's P pieces, words in order.
        pieces_per_word: how many pieces each of the N words has (each >= 1, summing to P).
        pooling: first | last | mean.

    Returns:
        (L, N, 2D) one vector per word.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    counts = torch.as_tensor(list(pieces_per_word), dtype=torch.long, device=layers.device)  # (N,)
    if counts.numel() and int(counts.min()) < 1:
        raise ValueError(f"every word needs at least one piece, got counts {list(pieces_per_word)}")
    if int(counts.sum()) != layers.shape[1]:
        raise ValueError(
            f"the words have {int(counts.sum())} pieces in all but layers has {layers.shape[1]}"
        )
    ends = counts.cumsum(0)  # (N,) one past each word's last piece
    if pooling == "first":
        return layers[:, ends - counts]  # (L, N, 2D)
    if pooling == "last":
        return layers[:, ends - 1]  # (L, N, 2D)
    word_of_piece = torch.repeat_interleave(torch.arange(len(counts), device=layers.device), counts)
    sums = layers.new_zeros(layers.shape[0], len(counts), layers.shape[2])  # (L, N, 2D)
    sums.index_add_(1, word_of_piece, layers)
    return sums / counts.to(layers.dtype)[None, :, None]
