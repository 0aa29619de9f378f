"""The training loop: steps, progress bar, periodic evaluation and checkpoints."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from elmo.config import TrainerConfig
from elmo.data.stream import Batch, LMBatcher
from elmo.progress import progress
from elmo.training.objective import ObjectiveOutput

log = logging.getLogger(__name__)


@dataclass
class RunState:
    """What changes as training goes on (besides weights, optimizer and data position)."""

    step: int = 0  # optimizer steps taken
    # The biLM's recurrent state of each direction (opaque here), carried across windows per row.
    forward_state: Any | None = None
    backward_state: Any | None = None
    history: list[dict] = field(default_factory=list)  # one record per logged step / evaluation


def train_step(
    objective: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    batches: Sequence[Batch],
    run: RunState,
    grad_clip: float,
    autocast: Callable[[], contextlib.AbstractContextManager],
) -> ObjectiveOutput:
    """One optimizer step on a forward and a backward window; updates ``run``'s states."""
    optimizer.zero_grad(set_to_none=True)
    with autocast():
        output = objective(batches[0], batches[1], run.forward_state, run.backward_state)
    output.loss.backward()
    torch.nn.utils.clip_grad_norm_(
        [p for group in optimizer.param_groups for p in group["params"]], grad_clip
    )
    optimizer.step()
    scheduler.step()
    run.forward_state, run.backward_state = output.forward_state, output.backward_state
    run.step += 1
    return output


def fit(
    objective: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    batchers: Sequence[LMBatcher],
    config: TrainerConfig,
    run: RunState,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    evaluate: Callable[[], dict] | None = None,
    checkpoint: Callable[[RunState], None] | None = None,
    show_progress: bool = True,
) -> RunState:
    """Train until ``config.max_steps``, continuing from ``run.step``.

    Args:
        batchers: the forward and the backward LMBatcher (positioned where training resumes).
        evaluate: returns validation metrics; called every ``eval_every`` steps and at the end.
        checkpoint: saves a training checkpoint; called every ``checkpoint_every`` steps and
            at the end.
    """
    iterators = [iter(b) for b in batchers]
    bar = progress(total=config.max_steps, initial=run.step, desc="training", unit="steps",
                   enabled=show_progress)  # fmt: skip
    tokens_seen, started, eval_seconds = 0, time.perf_counter(), 0.0
    try:
        while run.step < config.max_steps:
            batches = [_next_window(iterators, batchers, i, run) for i in range(2)]
            batches = [_to_device(b, device) for b in batches]
            output = train_step(objective, optimizer, scheduler, batches, run, config.grad_clip, autocast)
            tokens_seen += 2 * output.tokens
            if run.step % config.log_every == 0 or run.step == config.max_steps:
                elapsed = time.perf_counter() - started - eval_seconds
                record = _step_record(run.step, output, scheduler, tokens_seen / max(elapsed, 1e-9))
                run.history.append(record)
                bar.set_postfix(loss=f"{record['loss']:.3f}", ppl=f"{record['ppl']:.1f}",
                                tok_s=f"{record['tokens_per_s']:.0f}", lr=f"{record['lr']:.3g}")  # fmt: skip
            bar.update(1)
            last = run.step == config.max_steps
            if evaluate is not None and (last or (config.eval_every and run.step % config.eval_every == 0)):
                eval_started = time.perf_counter()
                metrics = {"step": run.step, **evaluate()}
                eval_seconds += time.perf_counter() - eval_started
                run.history.append(metrics)
                log.info("step %d validation: %s", run.step, _format(metrics))
            if checkpoint is not None and (last or run.step % config.checkpoint_every == 0):
                checkpoint(run)
    finally:
        bar.close()
    return run


def _next_window(iterators: list, batchers: Sequence[LMBatcher], index: int, run: RunState) -> Batch:
    """The next window of stream ``index``; at the end of an epoch start the next one."""
    try:
        return next(iterators[index])
    except StopIteration:
        log.info("%s stream: epoch %d begins", "backward" if index else "forward", batchers[index].epoch)
        iterators[index] = iter(batchers[index])
        if index == 0:
            run.forward_state = None  # a new pass over the corpus starts from zero state
        else:
            run.backward_state = None
        return next(iterators[index])


def _to_device(batch: Batch, device: torch.device) -> Batch:
    return Batch(*(t.to(device, non_blocking=True) for t in batch))


def _step_record(step: int, output: ObjectiveOutput, scheduler, tokens_per_s: float) -> dict:
    loss = float(output.loss.detach())
    return {
        "step": step,
        "loss": loss,
        "forward_loss": float(output.forward_loss),
        "backward_loss": float(output.backward_loss),
        "ppl": math.exp(min(loss, 50.0)),
        "lr": scheduler.get_last_lr()[0],
        "tokens_per_s": tokens_per_s,
    }


def _format(metrics: dict) -> str:
    return ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
