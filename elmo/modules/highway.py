"""Highway layers (Srivastava et al., 2015), as in the ELMo character encoder."""

from __future__ import annotations

import torch
from torch import nn


class Highway(nn.Module):
    """``y = g * x + (1 - g) * relu(W_h x + b_h)`` with ``g = sigmoid(W_g x + b_g)``, stacked.

    ``g`` is the fraction of the input carried through unchanged. bilm-tf writes the same layer
    with its gate on the other term (``c * relu(..) + (1 - c) * x``), so the published "carry"
    weights load negated (``g = 1 - c`` exactly, since ``sigmoid(-z) = 1 - sigmoid(z)``). We keep
    this form because it is the arithmetic AllenNLP's reference outputs were computed with, and
    the negation is exact in floating point. The nonlinearity is always relu, whatever
    activation the convolutions use, as in the published models.

    Args:
        dim: F, input and output size.
        num_layers: number of stacked highway layers (0 = identity).
    """

    def __init__(self, dim: int, num_layers: int) -> None:
        super().__init__()
        self.dim = dim
        # One matmul per layer: rows [0, F) are the transform W_h, rows [F, 2F) the gate W_g.
        self.layers = nn.ModuleList(nn.Linear(dim, 2 * dim) for _ in range(num_layers))
        for layer in self.layers:
            # Start by carrying the input (gate bias +1), the usual highway initialisation.
            nn.init.constant_(layer.bias[dim:], 1.0)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Args: inputs (..., F). Returns: (..., F)."""
        current = inputs
        for layer in self.layers:
            transform, gate = layer(current).chunk(2, dim=-1)  # (..., 2F) -> 2 x (..., F)
            gate = torch.sigmoid(gate)
            current = gate * current + (1.0 - gate) * torch.relu(transform)
        return current
