"""Training under torchrun: two CPU processes (gloo) each read their own half of the corpus.

``python -m torch.distributed.run --standalone --nproc_per_node=2 -m elmo.train ...`` is the
multi-process command of the README. The processes split the corpus by non-empty line (rank r
reads lines i with i % 2 == r), average gradients with DistributedDataParallel, and rank 0
writes one checkpoint holding every rank's data position, states and RNGs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from train_runs import TINY_RUN, single_thread_env, wikitext_train_lines, write_lines

from elmo.data.characters import BOS_TOKEN, EOS_TOKEN
from elmo.pretrained import from_pretrained
from elmo.train import CONFIG_DIR, register_schemas, to_train_config
from elmo.training.checkpoint import load_checkpoint
from elmo.training.run import run_training

NUM_LINES = 20
STEPS = 6


def _torchrun(output_dir: Path, overrides: list[str], timeout: float = 240) -> dict:
    """Train with two processes; returns metrics.json."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "elmo.train", f"output_dir={output_dir}", *overrides,
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        env=single_thread_env(),
        cwd=output_dir.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM, not SIGKILL: torchrun then stops its workers (each in a session of its own).
        process.terminate()
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        pytest.fail(f"torchrun still running after {timeout} s:\n{output.decode()[-4000:]}")
    if process.returncode != 0:
        pytest.fail(f"torchrun exited with {process.returncode}:\n{output.decode()[-4000:]}")
    return json.loads((output_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory) -> tuple[Path, list[str], list[str]]:
    """(output dir, overrides, corpus lines) of a finished 2-process run of STEPS steps."""
    root = tmp_path_factory.mktemp("distributed")
    lines = wikitext_train_lines(NUM_LINES)
    corpus = write_lines(root / "train.txt", lines)
    overrides = [f"data.train={corpus}", *TINY_RUN, "trainer.checkpoint_every=3"]
    _torchrun(root / "run", [*overrides, f"trainer.max_steps={STEPS}"])
    return root / "run", overrides, lines


def _framed(line: str, reverse: bool) -> list[str]:
    tokens = line.split()
    return [EOS_TOKEN, *reversed(tokens), BOS_TOKEN] if reverse else [BOS_TOKEN, *tokens, EOS_TOKEN]


def _is_suffix(rest: list[str], framed: list[str]) -> bool:
    return len(rest) <= len(framed) and framed[len(framed) - len(rest) :] == rest


def test_two_processes_train_and_write_one_model(two_process_run):
    run, _, _ = two_process_run
    metrics = json.loads((run / "metrics.json").read_text())

    assert metrics["step"] == STEPS
    assert [r["step"] for r in metrics["history"] if "loss" in r] == list(range(1, STEPS + 1))
    model = from_pretrained(run / "model")
    checkpoint = load_checkpoint(run / "checkpoint.pt")
    assert checkpoint["step"] == STEPS and checkpoint["world_size"] == 2
    for name, tensor in model.state_dict().items():  # the export is the trained weights
        assert torch.equal(tensor, checkpoint["model"][name]), name


def test_each_rank_reads_its_own_lines(two_process_run):
    run, _, lines = two_process_run
    ranks = load_checkpoint(run / "checkpoint.pt")["ranks"]

    assert len(ranks) == 2
    assert ranks[0]["data"] != ranks[1]["data"]
    for rank, state in enumerate(ranks):
        for direction, data in enumerate(state["data"]):  # forward, backward
            assert data["settings"]["rank"] == rank and data["settings"]["world_size"] == 2
            assert data["sentences_read"] > 0
            mine = [_framed(line, direction == 1) for line in lines[rank::2]]
            theirs = [_framed(line, direction == 1) for line in lines[1 - rank :: 2]]
            for rest in data["rows"]:
                if rest:  # what is left of the row's current sentence
                    assert any(_is_suffix(rest, framed) for framed in mine)
                    assert not any(_is_suffix(rest, framed) for framed in theirs)
    # Different data and different dropout masks (seed + rank), one averaged gradient.
    assert not torch.equal(ranks[0]["rng"]["torch"], ranks[1]["rng"]["torch"])


def test_a_two_process_checkpoint_needs_two_processes_to_resume(two_process_run, tmp_path):
    run, overrides, _ = two_process_run
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    register_schemas()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", [*overrides, f"output_dir={copy}", f"trainer.max_steps={STEPS + 2}"])
    threads = torch.get_num_threads()
    try:
        with pytest.raises(ValueError, match="written by 2 processes; resume with as many"):
            run_training(to_train_config(cfg))  # one process
    finally:
        torch.set_num_threads(threads)


def test_a_transformer_trains_under_two_processes(tmp_path):
    corpus = write_lines(tmp_path / "train.txt", wikitext_train_lines(NUM_LINES))
    overrides = [override for override in TINY_RUN if override != "model=tiny"]
    overrides += [f"data.train={corpus}", "model=transformer_tiny", "trainer.max_steps=3"]
    metrics = _torchrun(tmp_path / "run", overrides)
    assert metrics["step"] == 3
    model = from_pretrained(tmp_path / "run" / "model")
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert model.config.contextualizer == "transformer" and checkpoint["world_size"] == 2
    for name, tensor in model.state_dict().items():  # the ranks' averaged gradients: one model
        assert torch.equal(tensor, checkpoint["model"][name]), name


@pytest.mark.slow
def test_two_processes_resume_exactly(two_process_run, tmp_path):
    run, overrides, _ = two_process_run
    resumed, uninterrupted = tmp_path / "resumed", tmp_path / "uninterrupted"
    shutil.copytree(run, resumed)
    more = [*overrides, f"trainer.max_steps={STEPS + 4}"]

    metrics_resumed = _torchrun(resumed, more)
    metrics_uninterrupted = _torchrun(uninterrupted, more)

    def losses(metrics: dict) -> list[tuple]:
        return [(r["step"], r["loss"], r["lr"]) for r in metrics["history"] if "loss" in r]

    assert losses(metrics_resumed) == losses(metrics_uninterrupted)  # exactly
    final = [load_checkpoint(path / "checkpoint.pt") for path in (resumed, uninterrupted)]
    assert final[0]["ranks"][1]["data"] == final[1]["ranks"][1]["data"]
    for name, tensor in final[0]["model"].items():
        assert torch.equal(tensor, final[1]["model"][name]), name
