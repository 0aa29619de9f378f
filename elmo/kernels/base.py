"""The recurrence-kernel seam: how an LSTM contextualiser's recurrence runs.

``elmo.modules.lstm`` holds the maths: one cell and one step loop in the reference order of
operations. A kernel decides how that loop computes its products and where it runs:

* ``run_layer``: one layer over rows sorted by decreasing length. The base class runs the
  layer's reference loop as it is; a kernel passes the loop its own ``LayerStep`` (how a step's
  gates and cell are computed), or replaces the loop altogether (a compiled or CUDA kernel).
* ``run_directions``: the forward and the backward stack of a biLM. The base class runs them
  one after the other.

A kernel is chosen by name (``elmo.kernels.KERNELS``) with one setting: ``BiLM.kernel``, which
the config (``trainer.kernel``), ``ElmoEmbedder(kernel=)``, ``Elmo(kernel=)``, ``load_bilm(kernel=)``
and ``elmo embed --kernel`` all set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

from elmo.modules.lstm import LstmLayer

T = TypeVar("T")


class RecurrenceKernel:
    """Runs LSTM recurrences; this base class runs the reference loop, serially.

    ``exact``: True when the kernel keeps every bit of the reference loop on CPU (the published
    fixtures then match), False when it is equal only up to float rounding.
    ``trains``: False for a kernel offered for inference only (it refuses a gradient, and
    ``trainer.kernel`` does not accept it).
    ``rows_alone``: True when ``run_layer`` honours ``elmo.kernels.lanes.rows_alone()`` (each row
    of a batch computed as if alone, bit for bit), which ``ElmoEmbedder`` then uses one sentence
    at a time.
    """

    name = "reference"
    exact = True
    trains = True
    rows_alone = False

    def run_layer(
        self,
        layer: LstmLayer,
        inputs: torch.Tensor,
        lengths: list[int],
        state: tuple[torch.Tensor, torch.Tensor],
        reverse: bool,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``layer(inputs, lengths, state, reverse)``: arguments and results as there.

        Args:
            inputs: (B, T, D_in), rows sorted by decreasing length; lengths: B ints.
            state: (hidden (B, D), memory (B, H)).

        Returns:
            outputs (B, T, D), zero at padding, and each row's final (hidden, memory).
        """
        return layer(inputs, lengths, state, reverse)

    def run_directions(
        self, forward: Callable[[], T], backward: Callable[[], T], tokens: torch.Tensor, training: bool
    ) -> tuple[T, T]:
        """Run the forward and the backward stack (``tokens``: (B, T, D), what they read)."""
        return forward(), backward()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
