"""Helpers for the tests that run ``elmo-train`` in a subprocess (tests/training, tests/faults).

Every subprocess gets one torch thread (``OMP_NUM_THREADS=1`` and ``trainer.num_threads=1``):
these tests share small machines, where more threads only oversubscribe the cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from shared_data import shared_path

# A tiny biLM that trains at ~10 steps/s on one thread. Dropout (model=tiny has 0.1) and the
# sampled softmax both draw random numbers every step, so exact resumption needs the RNG state.
TINY_RUN = [
    "model=tiny",
    "model.softmax.kind=sampled",
    "model.softmax.num_samples=50",
    "data.valid=null",
    "data.test=null",
    "data.batch_size=4",
    "data.unroll_steps=8",
    "trainer=cpu",
    "trainer.num_threads=1",
    "trainer.log_every=1",
    "export_published=false",
]


def single_thread_env() -> dict:
    """The environment for a training subprocess: one thread, full Hydra tracebacks."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}


def train_command(output_dir: Path, overrides: list[str]) -> list[str]:
    """``elmo-train`` (as ``python -m elmo.train``) writing to ``output_dir``."""
    return [sys.executable, "-m", "elmo.train", f"output_dir={output_dir}", *overrides]


def start_training(output_dir: Path, overrides: list[str]) -> subprocess.Popen:
    """Start ``elmo-train`` in the background; its output goes to ``output_dir``.log."""
    # A file, not a pipe: nobody reads the pipe while training runs, and a full one stalls it.
    with open(f"{output_dir}.log", "ab") as log:
        return subprocess.Popen(
            train_command(output_dir, overrides),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=single_thread_env(),
            cwd=Path(output_dir).parent,
        )


def finish_training(process: subprocess.Popen, output_dir: Path, timeout: float = 300) -> None:
    """Wait for a run started by ``start_training``; fail with the end of its log if it fails."""
    returncode = process.wait(timeout=timeout)
    if returncode != 0:
        log = Path(f"{output_dir}.log").read_text(errors="replace")
        pytest.fail(f"elmo-train exited with {returncode}:\n{log[-3000:]}")


def train(output_dir: Path, overrides: list[str], timeout: float = 300) -> dict:
    """Run ``elmo-train`` to the end; returns its metrics.json."""
    finish_training(start_training(output_dir, overrides), output_dir, timeout)
    return json.loads((Path(output_dir) / "metrics.json").read_text())


def wikitext_train_lines(count: int | None = None) -> list[str]:
    """The first ``count`` non-empty lines of WikiText-2's training text (all when None)."""
    path = shared_path("data", "wikitext-2", "wiki.train.tokens")
    with open(path, encoding="utf-8") as handle:
        lines = [line for line in handle if line.strip()]
    return lines if count is None else lines[:count]


def write_lines(path: Path, lines: list[str]) -> Path:
    """Write ``lines`` (each ending in a newline) to ``path``; returns the absolute path."""
    path = Path(path).resolve()
    path.write_text("".join(lines), encoding="utf-8")
    return path
