"""Fine-tuning the biLM under a task: two learning rates and gradual unfreezing.

The pretrained weights move with a much smaller learning rate than the new task parameters
(default 1e-5 against 1e-3), so the task cannot quickly erase what language modelling learned.
Gradual unfreezing (Howard and Ruder, 2018, ULMFiT) goes further: the biLM starts frozen and its
layers join one at a time from the top, the most task-specific, down to the character encoder.
"""

from __future__ import annotations

import torch
from torch import nn

from elmo.model import BiLM


def bilm_layer_groups(bilm: BiLM) -> list[list[nn.Parameter]]:
    """The biLM's parameters as unfreezing groups, top first.

    Group k < N is contextual layer N-1-k of both directions; the last group is the character
    encoder. The softmax is left out: it plays no part in the ELMo layers.
    """
    return bilm.layer_parameters()[::-1]


def unfrozen_groups(step: int, unfreeze_every: int, num_groups: int) -> int:
    """How many groups (from the top) train at ``step`` (0-based).

    ``unfreeze_every == 0``: all of them from the start. Otherwise none for the first
    ``unfreeze_every`` steps, then one more every ``unfreeze_every`` steps.
    """
    if unfreeze_every < 0 or step < 0:
        raise ValueError(f"step and unfreeze_every must be >= 0, got {step} and {unfreeze_every}")
    if unfreeze_every == 0:
        return num_groups
    return min(step // unfreeze_every, num_groups)


def set_unfrozen(groups: list[list[nn.Parameter]], count: int) -> None:
    """Let the first ``count`` groups train and freeze the rest."""
    for index, group in enumerate(groups):
        for parameter in group:
            parameter.requires_grad_(index < count)


def finetune_optimizer(
    bilm: BiLM, new_parameters: list[nn.Parameter], lr: float, bilm_lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """AdamW with ``lr`` for the new parameters and ``bilm_lr`` for the pretrained ones.

    Every biLM group is in the optimizer from the start; a frozen parameter has no gradient, and
    Adam skips it, so unfreezing needs no new optimizer.
    """
    pretrained = [p for group in bilm_layer_groups(bilm) for p in group]
    return torch.optim.AdamW(
        [{"params": new_parameters, "lr": lr}, {"params": pretrained, "lr": bilm_lr}],
        weight_decay=weight_decay,
    )
