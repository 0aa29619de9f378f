"""The ELMo scalar mix: a learned, softmax-normalised weighted sum of layers (Eq. 1 of the paper)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ScalarMix(nn.Module):
    """``gamma * sum_k softmax(s)_k * h_k``, optionally layer-normalising each h_k first.

    Args:
        num_layers: L, the number of layers mixed.
        do_layer_norm: normalise each layer to zero mean and unit variance over all real (masked)
            values of the batch before mixing, as AllenNLP's ScalarMix does.
        initial_scalar_parameters: L starting values of s (default all 0: a plain average).
        trainable: whether s and gamma are learned.
    """

    def __init__(
        self,
        num_layers: int,
        do_layer_norm: bool = False,
        initial_scalar_parameters: Sequence[float] | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__()
        if initial_scalar_parameters is None:
            initial_scalar_parameters = [0.0] * num_layers
        if len(initial_scalar_parameters) != num_layers:
            raise ValueError(
                f"initial_scalar_parameters has {len(initial_scalar_parameters)} values, "
                f"expected {num_layers}"
            )
        self.num_layers = num_layers
        self.do_layer_norm = do_layer_norm
        self.scalar_parameters = nn.Parameter(
            torch.tensor(list(initial_scalar_parameters), dtype=torch.float),
            requires_grad=trainable,
        )
        self.gamma = nn.Parameter(torch.tensor(1.0), requires_grad=trainable)

    def forward(
        self, layers: Sequence[torch.Tensor] | torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mix the layers.

        Args:
            layers: L tensors (B, T, D) or one tensor (L, B, T, D).
            mask: (B, T) bool, True for real tokens; required with layer norm.

        Returns:
            (B, T, D).
        """
        if len(layers) != self.num_layers:
            raise ValueError(f"expected {self.num_layers} layers to mix, got {len(layers)}")
        weights = torch.softmax(self.scalar_parameters, dim=0)  # (L,)
        if self.do_layer_norm:
            if mask is None:
                raise ValueError("ScalarMix with do_layer_norm needs the token mask")
            layers = [_masked_layer_norm(layer, mask) for layer in layers]
        mixed = sum(weight * layer for weight, layer in zip(weights, layers))
        return self.gamma * mixed


def _masked_layer_norm(tensor: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Normalise (B, T, D) by the mean and variance of its real positions' values."""
    weights = mask.unsqueeze(-1).to(tensor.dtype)  # (B, T, 1)
    count = weights.sum() * tensor.shape[-1]
    mean = (tensor * weights).sum() / count
    variance = (((tensor - mean) * weights) ** 2).sum() / count
    return (tensor - mean) / torch.sqrt(variance + 1e-12)
