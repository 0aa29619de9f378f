"""Training checkpoints: everything needed to continue a run exactly, written atomically.

A training checkpoint is not a pretrained model (see ``elmo.pretrained``): it also holds the
optimizer, the schedule, the data position, the carried recurrent states and every RNG state. It
is saved with ``torch.save`` and loaded with ``weights_only=True``, so loading runs no code.

The payload (``checkpoint_payload``)::

    step, world_size, config (TrainConfig as a dict), model, optimizer, scheduler (state dicts),
    history (the run's records), units (the sha256 of each file of the run's tokenizer and
    vocabulary, by file name, checked on resume), ranks: one entry per process, in rank order, of
        data (each batcher's state: forward, backward), forward_state, backward_state (the
        carried recurrent states as lists of CPU tensors, or None), rng (``capture_rng_state``)
"""

from __future__ import annotations

import hashlib
import os
import pickle
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from elmo.config import TrainConfig, config_to_dict
from elmo.files import ModelFileError, atomic_write_text, replace, sha256_file, temp_path
from elmo.model import BiLM, state_to_tensors
from elmo.training import distributed

if TYPE_CHECKING:
    from elmo.data.stream import LMBatcher
    from elmo.training.loop import RunState

CHECKPOINT_FILE = "checkpoint.pt"


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically (a reader never sees a half-written file), and
    its sha256 to ``sums_path(path)``, which ``resume`` checks.

    The sums file is replaced first, holding the new sum and those of the checkpoint it
    replaces: killed between the two renames, the old checkpoint still matches.
    """
    path = Path(path)
    tmp = temp_path(path)  # .checkpoint.pt.tmp-PID; a run removes those of dead processes
    try:
        with open(tmp, "wb") as handle:
            writer = _HashingWriter(handle)
            torch.save(payload, writer)
            handle.flush()
            os.fsync(handle.fileno())
        # The sums of the checkpoints this one replaces: normally the first is the current one;
        # a few more keep a checkpoint resumable after repeated kills between the two renames.
        previous = (_recorded_sums(path)[:3] or [sha256_file(path)]) if path.is_file() else []
        atomic_write_text(sums_path(path), "".join(f"{s}\n" for s in [writer.hexdigest()] + previous))
        replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def sums_path(path: str | os.PathLike) -> Path:
    """The file beside a checkpoint that records its sha256 (``checkpoint.pt.sha256``)."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def check_checkpoint(path: str | os.PathLike) -> None:
    """Raise ModelFileError unless ``path`` matches a sum its sums file records (a checkpoint
    written before the sums has none and is not checked)."""
    path = Path(path)
    recorded = _recorded_sums(path)
    if recorded and sha256_file(path) not in recorded:
        raise ModelFileError(
            f"{path} is damaged: its sha256 is not the one {sums_path(path).name} records; "
            f"delete {path} (and {sums_path(path).name}) to start the run over"
        )


def _recorded_sums(path: Path) -> list[str]:
    sums = sums_path(path)
    if not sums.is_file():
        return []
    return sums.read_text(encoding="utf-8", errors="replace").split()


class _HashingWriter:
    """A binary file that hashes what is written to it (torch.save writes through it)."""

    def __init__(self, handle) -> None:
        self._handle, self._digest = handle, hashlib.sha256()

    def write(self, data) -> int:
        self._digest.update(data)
        return self._handle.write(data)

    def flush(self) -> None:
        self._handle.flush()

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


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
    units: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Everything needed to continue the run (collective: every process must call it).

    ``units``: the sha256 of the run's vocabulary and tokenizer files, by file name (the files
    sit beside the checkpoint); ``resume`` checks that it trains on the same ones.
    """
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
        "units": dict(units or {}),
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
    units: dict[str, str] | None = None,
) -> None:
    """Restore what ``checkpoint_payload`` saved into the run's objects; this process's rank part.

    Args:
        units: the sha256 of this run's vocabulary and tokenizer files, by file name; each must
            equal the one the checkpoint recorded (checkpoints from before the record are checked
            by their softmax size only, through the model's shapes).

    Raises:
        ValueError: the checkpoint was written by another number of processes.
        ModelFileError: the checkpoint is unreadable, or the run's vocabulary or tokenizer is
            not the one it was trained with (the message says what to delete).
    """
    path = Path(path)
    start_over = f"delete {path} to start the run over"
    check_checkpoint(path)
    try:
        payload = load_checkpoint(path)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, OSError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFileError(f"{path}: not a readable checkpoint ({message}); {start_over}") from None
    if payload["world_size"] != world.size:
        raise ValueError(
            f"{path} was written by {payload['world_size']} processes; resume with as many "
            f"(this run has {world.size})"
        )
    for name, digest in payload.get("units", {}).items():
        if units is not None and units.get(name) != digest:
            unit = path.parent / name
            raise ModelFileError(
                f"{unit} is not the file {path} was trained with (its sha256 differs): restore "
                f"it, or {start_over} (and delete {unit} too, to make it again)"
            )
    try:
        bilm.load_state_dict(payload["model"])
    except RuntimeError as error:  # e.g. a softmax of another size: the vocabulary changed
        detail = " ".join(str(error).split())[:300]
        raise ModelFileError(
            f"{path} does not fit this run's model ({detail}); the run's vocabulary or config "
            f"changed since it was written: restore them, or {start_over}"
        ) from None
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
