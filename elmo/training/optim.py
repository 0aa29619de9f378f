"""Optimizers and the learning-rate schedule."""

from __future__ import annotations

import math

import torch

from elmo.config import TrainerConfig


def build_optimizer(parameters, config: TrainerConfig) -> torch.optim.Optimizer:
    """Adagrad as the original ELMo training (lr 0.2, accumulator 1.0), or AdamW."""
    parameters = [p for p in parameters if p.requires_grad]
    if config.optimizer == "adagrad":
        return torch.optim.Adagrad(
            parameters,
            lr=config.lr,
            initial_accumulator_value=config.adagrad_initial_accumulator,
            weight_decay=config.weight_decay,
        )
    if config.optimizer == "adam":
        beta1, beta2 = config.adam_betas
        return torch.optim.AdamW(
            parameters, lr=config.lr, betas=(beta1, beta2), weight_decay=config.weight_decay
        )
    raise ValueError(f"unknown optimizer {config.optimizer!r}; expected adagrad or adam")


def lr_factor(step: int, config: TrainerConfig) -> float:
    """Multiplier of the peak learning rate before optimizer step ``step`` (0-based).

    Linear warm-up over ``warmup_steps``, then constant, linear decay to 0 at ``max_steps``, or
    cosine decay to 0 at ``max_steps``.
    """
    warmup = config.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    if config.schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, config.max_steps - warmup))
    if config.schedule == "linear":
        return 1.0 - progress
    if config.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {config.schedule!r}; expected constant, linear or cosine")


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainerConfig):
    """A LambdaLR applying ``lr_factor`` (its state_dict holds the step, for resuming)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))
