"""A training run killed with SIGKILL and resumed continues exactly as if never interrupted.

Run A trains uninterrupted. Run B, the same command, is killed with SIGKILL right after it has
written a checkpoint, then started again (same command) and resumes from that checkpoint. Every
per-step loss after the checkpoint and the final weights must equal A's exactly: resuming
restores the weights, the optimizer, the schedule, the data position (mid-sentence, mid-shuffle
block), the carried LSTM states and every RNG (dropout and the sampled softmax draw from them).
The same holds for a Transformer biLM, which carries no state between windows.

The corpus is five WikiText-2 lines, so an epoch lasts only ~17 steps: the checkpoint is taken
after one epoch boundary and the resumed run crosses another.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_runs import (
    TINY_RUN,
    finish_training,
    start_training,
    train,
    wikitext_train_lines,
    write_lines,
)

from elmo.training.checkpoint import load_checkpoint

MAX_STEPS = 45
CHECKPOINT_EVERY = 4
KILL_AFTER_STEP = 20  # the first checkpoint at or after this step is in the second epoch


def _kill_after_checkpoint(process, checkpoint: Path, min_step: int, timeout: float = 180) -> dict:
    """SIGKILL ``process`` once ``checkpoint`` holds a step >= min_step; returns that payload.

    The run is stopped (SIGSTOP) while its checkpoint is read, so the payload returned is the
    one on disk when it dies: a run left going could write the next checkpoint between the read
    and the kill, and would then resume from a later step than the payload says.
    """
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the run ended (exit {process.returncode}) before it could be killed")
        stamp = checkpoint.stat().st_mtime_ns if checkpoint.is_file() else None
        if stamp != seen:  # a new checkpoint (written atomically: never half a file)
            process.send_signal(signal.SIGSTOP)
            try:
                seen = checkpoint.stat().st_mtime_ns  # the file as the stopped run left it
                payload = load_checkpoint(checkpoint)
                if payload["step"] >= min_step:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait()
                    return payload
            finally:
                if process.returncode is None:
                    process.send_signal(signal.SIGCONT)
        time.sleep(0.01)
    process.kill()
    pytest.fail(f"no checkpoint with step >= {min_step} within {timeout} s")


def _loss_records(metrics: dict) -> dict[int, tuple]:
    """step -> the step's losses and learning rate (everything but the timing)."""
    return {
        r["step"]: (r["loss"], r["forward_loss"], r["backward_loss"], r["lr"])
        for r in metrics["history"]
        if "loss" in r
    }


@pytest.mark.parametrize("model", ["tiny", "transformer_tiny"])
def test_sigkill_then_resume_continues_exactly(tmp_path: Path, model: str):
    corpus = write_lines(tmp_path / "train.txt", wikitext_train_lines(5))
    overrides = [
        f"data.train={corpus}",
        *[f"model={model}" if override == "model=tiny" else override for override in TINY_RUN],
        "data.shuffle_buffer=3",  # resuming must replay the shuffled order too
        f"trainer.max_steps={MAX_STEPS}",
        f"trainer.checkpoint_every={CHECKPOINT_EVERY}",
    ]
    run_a, run_b = tmp_path / "a", tmp_path / "b"

    # A runs alongside B's first attempt: the two are independent.
    process_a = start_training(run_a, overrides)
    process_b = start_training(run_b, overrides)
    killed = _kill_after_checkpoint(process_b, run_b / "checkpoint.pt", KILL_AFTER_STEP)
    finish_training(process_a, run_a)

    assert process_b.returncode == -signal.SIGKILL
    assert not (run_b / "metrics.json").exists()
    resume_step = killed["step"]
    assert KILL_AFTER_STEP <= resume_step < MAX_STEPS
    assert [state["epoch"] for state in killed["ranks"][0]["data"]] == [1, 1]
    assert (killed["ranks"][0]["forward_state"] is None) == (model == "transformer_tiny")

    metrics_b = train(run_b, overrides)  # the same command again: resumes
    metrics_a = json.loads((run_a / "metrics.json").read_text())

    assert f"resumed from {run_b / 'checkpoint.pt'} at step {resume_step}" in (
        Path(f"{run_b}.log").read_text()
    )
    losses_a, losses_b = _loss_records(metrics_a), _loss_records(metrics_b)
    assert sorted(losses_a) == list(range(1, MAX_STEPS + 1))
    assert sorted(losses_b) == sorted(losses_a)
    for step in range(resume_step + 1, MAX_STEPS + 1):
        assert losses_b[step] == losses_a[step], f"step {step}"  # exactly, not approximately

    final_a, final_b = (load_checkpoint(run / "checkpoint.pt") for run in (run_a, run_b))
    assert final_a["ranks"][0]["data"] == final_b["ranks"][0]["data"]
    assert final_a["ranks"][0]["data"][0]["epoch"] > 1  # the resumed part crossed an epoch end
    weights_a, weights_b = (
        load_file(run / "model" / "model.safetensors") for run in (run_a, run_b)
    )
    assert weights_a.keys() == weights_b.keys()
    for name in weights_a:
        assert torch.equal(weights_a[name], weights_b[name]), name
