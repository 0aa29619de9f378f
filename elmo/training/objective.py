"""The training objective: the forward and backward LM losses, through the shared softmax.

Peters et al. (2018), Eq. in Sec. 3.1: maximise the log likelihood of both directions. As in
bilm-tf the loss is the mean of the two directions' mean token losses. The objective is one
module so that DistributedDataParallel can wrap it (its forward does all the work).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import nn

from elmo.data.stream import Batch
from elmo.model import BiLM
from elmo.modules.lstm import LstmState


class ObjectiveOutput(NamedTuple):
    loss: torch.Tensor  # () mean of the two directions' mean NLL (nats per token)
    forward_loss: torch.Tensor  # () detached
    backward_loss: torch.Tensor  # () detached
    tokens: int  # predicted tokens in this step, per direction (the forward batch's count)
    forward_state: LstmState  # detached: carried into the next window
    backward_state: LstmState


class LMObjective(nn.Module):
    """Wraps a BiLM with a softmax and computes the bidirectional LM loss of one step.

    Args:
        bilm: a BiLM built with ``vocab_size > 0``.
        fast_lstm: run the LSTMs' fast recurrence (``LstmLayer._forward_fast``): the same
            maths and gradients up to float rounding, with one GEMM for all time steps' input
            projections. Training has no reference outputs to match bit for bit.
    """

    def __init__(self, bilm: BiLM, fast_lstm: bool = False) -> None:
        super().__init__()
        if bilm.softmax is None:
            raise ValueError("training needs a BiLM with a softmax (config.vocab_size > 0)")
        self.bilm = bilm
        self.fast_lstm = fast_lstm
        self.output_dropout = nn.Dropout(bilm.config.dropout)

    def forward(
        self,
        forward_batch: Batch,
        backward_batch: Batch,
        forward_state: Optional[LstmState] = None,
        backward_state: Optional[LstmState] = None,
    ) -> ObjectiveOutput:
        """Losses of one window of the forward stream and one of the backward stream.

        Args:
            forward_batch, backward_batch: ``Batch`` windows (B, T) of the two streams.
            forward_state, backward_state: each row's state from the previous window.

        Returns:
            ObjectiveOutput; the states are detached (truncated backpropagation).
        """
        forward_loss, forward_state = self._direction(forward_batch, forward_state, False)
        backward_loss, backward_state = self._direction(backward_batch, backward_state, True)
        return ObjectiveOutput(
            0.5 * (forward_loss + backward_loss),
            forward_loss.detach(),
            backward_loss.detach(),
            int(forward_batch.mask.sum()),
            forward_state,
            backward_state,
        )

    def _direction(
        self, batch: Batch, state: Optional[LstmState], backward: bool
    ) -> tuple[torch.Tensor, LstmState]:
        output = self.bilm.language_model(
            batch.char_ids, batch.mask, state, backward=backward, fast=self.fast_lstm
        )
        hidden = self.output_dropout(output.layers[-1][batch.mask])  # (N, D) real positions
        loss = self.bilm.softmax.loss(hidden.float(), batch.next_token_ids[batch.mask])
        detached = LstmState(output.state.hidden.detach(), output.state.memory.detach())
        return loss, detached
