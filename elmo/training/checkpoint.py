"""Training checkpoints: everything needed to continue a run exactly, written atomically.

A training checkpoint is not a pretrained model (see ``elmo.pretrained``): it also holds the
optimizer, the schedule, the data position, the carried recurrent states and every RNG state. It
is saved with ``torch.save`` and loaded with ``weights_only=True``, so loading runs no code.

The payload (``checkpoint_payload``)::

    step, world_size, config (TrainConfig as a dict), model, optimizer, scheduler (state dicts),
    history (the run's records), ranks: one entry per process, in rank order, of
        data (each batcher's state: forward, backward), forward_state, backward_state (the
        carried recurrent states as lists of CPU tensors, or None), rng (``capture_rng_state``)
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from elmo.config import TrainConfig, config_to_dict
from elmo.model import BiLM, state_to_tensors
from elmo.training import distributed

if TYPE_CHECKING:
    from elmo.data.stream import LMBatcher
    from elmo.training.loop import RunState

CHECKPOINT_FILE = "checkpoint.pt"


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically (a reader never sees a half-written file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint`` (tensors and plain data only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def capture_rng_state() -> dict[str, Any]:
    """Every RNG state a training step draws from (python, numpy, torch CPU and CUDA)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.copy()), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Undo ``capture_rng_state``."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy(), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_payload(
    config: TrainConfig,
    bilm: BiLM,
    optimizer: torch.optim.Optimizer,
    scheduler,
    batchers: Sequence[LMBatcher],
    run: RunState,
    world: distributed.World,
) -> dict[str, Any]:
    """Everything needed to continue the run (collective: every process must call it)."""
    mine = {
        "data": [b.state_dict() for b in batchers],
        # The biLM's recurrent states as CPU tensors: load_checkpoint(weights_only=True) refuses
        # to unpickle the classes they come in.
        "forward_state": state_to_tensors(run.forward_state),
        "backward_state": state_to_tensors(run.backward_state),
        "rng": capture_rng_state(),
    }
    return {
        "step": run.step,
        "world_size": world.size,
        "config": config_to_dict(config),
        "model": bilm.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "history": run.history,
        "ranks": distributed.gather(mine, world),
    }


def resume(
    path: str | os.PathLike,
    bilm: BiLM,
    optimizer: torch.optim.Optimizer,
    scheduler,
    batchers: Sequence[LMBatcher],
    run: RunState,
    world: distributed.World,
    device: torch.device,
) -> None:
    """Restore what ``checkpoint_payload`` saved into the run's objects; this process's rank part.

    Raises:
        ValueError: the checkpoint was written by another number of processes.
    """
    payload = load_checkpoint(path)
    if payload["world_size"] != world.size:
        raise ValueError(
            f"{path} was written by {payload['world_size']} processes; resume with as many "
            f"(this run has {world.size})"
        )
    bilm.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    mine = payload["ranks"][world.rank]
    for batcher, state in zip(batchers, mine["data"]):
        batcher.load_state_dict(state)
    run.step = payload["step"]
    run.history = payload["history"]
    run.forward_state = bilm.state_from_tensors(mine["forward_state"], device)
    run.backward_state = bilm.state_from_tensors(mine["backward_state"], device)
    restore_rng_state(mine["rng"])
