"""The training objective: the forward and backward LM losses, through the shared softmax.

Peters et al. (2018), Eq. in Sec. 3.1: maximise the log likelihood of both directions. As in
bilm-tf the loss is the mean of the two directions' mean token losses. The objective is one
module so that DistributedDataParallel can wrap it (its forward does all the work).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from elmo.data.stream import Batch
from elmo.model import BiLM, detach_state
from elmo.modules.contextualizer import ContextualizerOutput


class ObjectiveOutput(NamedTuple):
    loss: torch.Tensor  # () mean of the two directions' mean NLL (nats per token)
    forward_loss: torch.Tensor  # () detached
    backward_loss: torch.Tensor  # () detached
    tokens: int  # predicted tokens in this step, per direction (the forward batch's count)
    forward_state: Any  # the biLM's state, detached: carried into the next window
    backward_state: Any


class LMObjective(nn.Module):
    """Wraps a BiLM with a softmax and computes the bidirectional LM loss of one step.

    Args:
        bilm: a BiLM built with ``vocab_size > 0`` (its ``kernel`` runs the recurrences).
    """

    def __init__(self, bilm: BiLM) -> None:
        super().__init__()
        if bilm.softmax is None:
            raise ValueError("training needs a BiLM with a softmax (config.vocab_size > 0)")
        self.bilm = bilm
        self.output_dropout = nn.Dropout(bilm.config.dropout)

    def forward(
        self,
        forward_batch: Batch,
        backward_batch: Batch,
        forward_state: Any = None,
        backward_state: Any = None,
    ) -> ObjectiveOutput:
        """Losses of one window of the forward stream and one of the backward stream.

        Args:
            forward_batch, backward_batch: ``Batch`` windows (B, T) of the two streams.
            forward_state, backward_state: each row's state from the previous window.

        Returns:
            ObjectiveOutput; the states are detached (truncated backpropagation).
        """
        batches = (forward_batch, backward_batch)
        outputs = self.bilm.language_models(
            (forward_batch.char_ids, backward_batch.char_ids),
            (forward_batch.mask, backward_batch.mask),
            (forward_state, backward_state),
        )
        forward_loss, backward_loss = (self._loss(o, b) for o, b in zip(outputs, batches))
        forward_state, backward_state = (detach_state(o.state) for o in outputs)
        return ObjectiveOutput(
            0.5 * (forward_loss + backward_loss),
            forward_loss.detach(),
            backward_loss.detach(),
            int(forward_batch.mask.sum()),
            forward_state,
            backward_state,
        )

    def _loss(self, output: ContextualizerOutput, batch: Batch) -> torch.Tensor:
        """One direction's mean negative log-likelihood of its window's next tokens."""
        hidden = self.output_dropout(output.layers[-1][batch.mask])  # (N, D) real positions
        return self.bilm.softmax.loss(hidden.float(), batch.next_token_ids[batch.mask])
