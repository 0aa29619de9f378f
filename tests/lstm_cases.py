"""The LSTM test cases shared by the maths tests (tests/modules) and the kernel tests
(tests/kernels): sizes, clips that the tests reach, junk-padded inputs, masks."""

from __future__ import annotations

import torch

from elmo.config import LSTMConfig
from elmo.modules.lstm import LstmLayer

D_IN, D, H = 5, 4, 6
LENGTHS = [5, 3, 3, 1, 0]  # sorted by decreasing length, as the layer requires; one empty row
CELL_CLIP, PROJECTION_CLIP = 0.5, 0.4


def make_layer(cell_clip=CELL_CLIP, projection_clip=PROJECTION_CLIP, input_dim=D_IN) -> LstmLayer:
    config = LSTMConfig(
        num_layers=1,
        cell_size=H,
        projection_dim=D,
        cell_clip=cell_clip,
        projection_clip=projection_clip,
    )
    layer = LstmLayer(input_dim, config)
    with torch.no_grad():  # large weights and a random bias, so that both clips are reached
        for weight in (layer.input_weight, layer.recurrent_weight, layer.projection_weight):
            weight.mul_(4.0)
        layer.bias.normal_()
    return layer


def padded_inputs(lengths: list[int], dim: int = D_IN) -> torch.Tensor:
    # Padding positions hold junk: the layer must never read them.
    return torch.randn(len(lengths), max(lengths), dim) * 2.0  # (B, T, D_in)


def random_state(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(batch, D) * 0.3, torch.randn(batch, H) * 0.3


def mask_of(lengths: list[int], steps: int | None = None) -> torch.Tensor:
    """(B, T) bool mask of rows with these lengths."""
    steps = max(lengths) if steps is None else steps
    return torch.arange(steps) < torch.tensor(lengths)[:, None]


def chaotic_layer(cell_clip=3.0, projection_clip=3.0, cell_size: int = 128) -> LstmLayer:
    """A layer (48 -> 48, cell ``cell_size``) whose recurrence turns any 1e-7 into a visible
    difference within a few steps: the kernels' bit-for-bit tests use it."""
    config = LSTMConfig(num_layers=1, cell_size=cell_size, projection_dim=48, cell_clip=cell_clip,
                        projection_clip=projection_clip)  # fmt: skip
    layer = LstmLayer(48, config)
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.mul_(8.0)
    return layer
