"""Small pure functions on padded batches: lengths, sentence boundaries, reversal."""

from __future__ import annotations

import torch


def lengths_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """(B, T) bool mask with real tokens first -> (B,) long lengths."""
    return mask.long().sum(dim=1)


def add_sentence_boundaries(
    char_ids: torch.Tensor, mask: torch.Tensor, bos: torch.Tensor, eos: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame each sentence as ``<S> tokens </S>``.

    Args:
        char_ids: (B, T, W) character ids, real tokens first, padding tokens all 0.
        mask: (B, T) bool, True for real tokens.
        bos, eos: (W,) character ids of ``<S>`` and ``</S>``.

    Returns:
        char ids (B, T + 2, W) and mask (B, T + 2); ``</S>`` sits right after each sentence's
        last token, padding stays at the end.
    """
    batch, steps, width = char_ids.shape
    lengths = lengths_from_mask(mask)  # (B,)
    framed = char_ids.new_zeros(batch, steps + 2, width)  # (B, T+2, W)
    framed[:, 1 : steps + 1] = char_ids * mask.unsqueeze(-1)
    framed[:, 0] = bos
    rows = torch.arange(batch, device=char_ids.device)
    framed[rows, lengths + 1] = eos
    positions = torch.arange(steps + 2, device=mask.device)  # (T+2,)
    framed_mask = positions.unsqueeze(0) < (lengths + 2).unsqueeze(1)  # (B, T+2)
    return framed, framed_mask


def remove_sentence_boundaries(
    tensor: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the first and last real position of each sentence (undoes add_sentence_boundaries).

    Args:
        tensor: (B, T + 2, ...) values with boundaries.
        mask: (B, T + 2) bool.

    Returns:
        values (B, T, ...) with padding positions zero, and mask (B, T).
    """
    lengths = lengths_from_mask(mask) - 2  # (B,)
    inner = tensor[:, 1:-1]  # (B, T, ...)
    positions = torch.arange(inner.shape[1], device=mask.device)
    inner_mask = positions.unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
    shape = inner_mask.shape + (1,) * (tensor.dim() - 2)
    return inner * inner_mask.view(shape).to(inner.dtype), inner_mask


def reverse_padded(tensor: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first ``lengths[b]`` steps; padding stays in place.

    Applying it twice gives the input back. This is how the backward LM reads a batch: reverse,
    run the same left-to-right stack, reverse the outputs back.

    Args:
        tensor: (B, T, ...).
        lengths: (B,) long.

    Returns:
        (B, T, ...).
    """
    batch, steps = tensor.shape[:2]
    positions = torch.arange(steps, device=tensor.device).unsqueeze(0)  # (1, T)
    lengths = lengths.to(tensor.device).unsqueeze(1)  # (B, 1)
    index = torch.where(positions < lengths, lengths - 1 - positions, positions)  # (B, T)
    index = index.view(batch, steps, *([1] * (tensor.dim() - 2))).expand_as(tensor)
    return tensor.gather(1, index)
