"""Optimizers and the learning-rate schedule, each a registry by config name.

``TrainerConfig.optimizer`` and ``TrainerConfig.schedule`` are checked against ``OPTIMIZERS`` and
``SCHEDULES``: a new entry here is a new allowed value there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from elmo.config import TrainerConfig


def _adagrad(parameters: list, config: TrainerConfig) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(
        parameters,
        lr=config.lr,
        initial_accumulator_value=config.adagrad_initial_accumulator,
        weight_decay=config.weight_decay,
        fused=_can_fuse(parameters),
    )


def _adamw(parameters: list, config: TrainerConfig) -> torch.optim.Optimizer:
    beta1, beta2 = config.adam_betas
    return torch.optim.AdamW(
        parameters,
        lr=config.lr,
        betas=(beta1, beta2),
        weight_decay=config.weight_decay,
        fused=_can_fuse(parameters),
    )


# torch's fused optimizer step: one kernel per parameter instead of a dozen elementwise passes
# (the small shape's 17.9 M parameters: AdamW 9 ms against 33-48 ms per step on 2 threads,
# Adagrad alike); equal to the default step up to rounding. A checkpoint's optimizer state
# keeps the setting it was trained with, so a run resumes as it started.
FUSED_DEVICES = ("cpu", "cuda")


def _can_fuse(parameters: list[torch.nn.Parameter]) -> bool | None:
    """True where torch has a fused step for every parameter (float, on CPU or CUDA); else None,
    torch's default choice."""
    fusable = all(p.device.type in FUSED_DEVICES and p.is_floating_point() for p in parameters)
    return True if parameters and fusable else None


# Config name -> the optimizer over the trainable parameters. "adagrad" is the original ELMo
# training's (lr 0.2, initial accumulator 1.0); "adam" is AdamW (decoupled weight decay).
OPTIMIZERS: dict[str, Callable[[list, TrainerConfig], torch.optim.Optimizer]] = {
    "adagrad": _adagrad,
    "adam": _adamw,
}

# Config name -> the peak learning rate's multiplier after warm-up, as a function of the progress
# from the end of warm-up (0) to max_steps (1).
SCHEDULES: dict[str, Callable[[float], float]] = {
    "constant": lambda progress: 1.0,
    "linear": lambda progress: 1.0 - progress,  # to 0 at max_steps
    "cosine": lambda progress: 0.5 * (1.0 + math.cos(math.pi * progress)),  # to 0 at max_steps
}


def build_optimizer(
    parameters: Iterable[torch.nn.Parameter], config: TrainerConfig
) -> torch.optim.Optimizer:
    """The ``config.optimizer`` (a key of ``OPTIMIZERS``) over the parameters that need gradients."""
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {config.optimizer!r}; expected one of {sorted(OPTIMIZERS)}"
        )
    return OPTIMIZERS[config.optimizer]([p for p in parameters if p.requires_grad], config)


def lr_factor(step: int, config: TrainerConfig) -> float:
    """Multiplier of the peak learning rate before optimizer step ``step`` (0-based).

    Linear warm-up over ``warmup_steps``, then ``config.schedule`` (a key of ``SCHEDULES``):
    constant, linear decay to 0 at ``max_steps``, or cosine decay to 0 at ``max_steps``.
    """
    if config.schedule not in SCHEDULES:
        raise ValueError(
            f"unknown schedule {config.schedule!r}; expected one of {sorted(SCHEDULES)}"
        )
    warmup = config.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, config.max_steps - warmup))
    return SCHEDULES[config.schedule](progress)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainerConfig):
    """A LambdaLR applying ``lr_factor`` (its state_dict holds the step, for resuming)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))
