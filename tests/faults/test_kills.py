"""kill -9 anywhere in a training run, then the same command again: it ends as if never killed.

A run is killed with SIGKILL inside every atomic write it makes (the fault hook of
elmo/files.py: with the temporary file written but not yet renamed, and right after the rename)
and, in the slow sweep, at random moments. After each kill the same command runs again, resuming
from whatever the kill left. At the end:

* nothing is lost: every file an uninterrupted run leaves is there, and no temporary file;
* the bits are those of the uninterrupted run: the weights, the exported model directory, the
  vocabulary and tokenizer files byte for byte, the checkpoint's tensors, and every loss and
  learning rate of metrics.json's history (all but the timings).

tests/training/test_resume.py checks the resumed losses step by step after one kill of
``python -m elmo.train``; here the runs are children of a fork server (killed_runs.py) so that a
dozen restarts take seconds.
"""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import pytest
import torch
from killed_runs import TrainServer
from sentencepiece_text import corpus_lines
from train_runs import TINY_RUN, single_thread_env, write_lines

from elmo.training.checkpoint import load_checkpoint

MAX_STEPS = 6
CHECKPOINTS = ["trainer.checkpoint_every=2"]  # checkpoints at steps 2, 4 and 6
SENTENCEPIECE = ["tokenizer=sentencepiece", "tokenizer.vocab_size=360",
                 "tokenizer.character_coverage=1.0"]  # fmt: skip

# Every atomic write of a sentencepiece run, in the order the run reaches it, at both stages.
# Each kill comes in a new attempt, which resumes from what the kills before it left.
WRITES_KILLED = [
    "sentencepiece.model:before_rename:1",  # the tokenizer, trained again by the next attempt
    "sentencepiece.model:after_rename:1",
    "vocab.txt:before_rename:1",
    "vocab.txt:after_rename:1",
    "checkpoint.pt.sha256:before_rename:1",  # step 2's checkpoint: no checkpoint yet
    "checkpoint.pt:before_rename:1",  # its sums in place, the checkpoint not
    "checkpoint.pt:after_rename:1",  # step 2's checkpoint in place: the next attempt resumes
    "checkpoint.pt.sha256:after_rename:1",  # step 4's sums in place, its checkpoint not
    "checkpoint.pt:before_rename:1",  # again: the sums record the checkpoints they replace
    "model.safetensors:before_rename:1",  # the export after step 6's checkpoint
    "model.safetensors:after_rename:1",
    "config.json:before_rename:1",  # model/config.json, written last
    "config.json:after_rename:1",
    "metrics.json:before_rename:1",
    "metrics.json:after_rename:1",  # done, but killed before it could exit
]


def _overrides(corpus: Path, *extra: str) -> list[str]:
    return [f"data.train={corpus}", *TINY_RUN, f"trainer.max_steps={MAX_STEPS}", *CHECKPOINTS,
            *extra]  # fmt: skip


@pytest.fixture(scope="module")
def server():
    server = TrainServer(single_thread_env())  # its imports (seconds) shared by the tests
    yield server
    server.close()


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_lines(tmp_path / "train.txt", [line + "\n" for line in corpus_lines()])


def _log_tail(run: Path) -> str:
    return Path(f"{run}.log").read_text(errors="replace")[-3000:]


def test_killed_inside_every_write_the_run_resumes_to_the_same_bits(tmp_path, server, corpus):
    overrides = _overrides(corpus, *SENTENCEPIECE)
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert server.run(reference, overrides) == 0, _log_tail(reference)
    for point in WRITES_KILLED:
        code = server.run(killed, overrides, kill_at=point)
        assert code == -signal.SIGKILL, f"{point}: exit {code}\n{_log_tail(killed)}"
    assert server.run(killed, overrides) == 0, _log_tail(killed)
    log = Path(f"{killed}.log").read_text()
    assert log.count(": killing this process") == len(WRITES_KILLED)
    assert "resumed from" in log  # the kills after step 2's checkpoint did not start over
    assert_same_end(reference, killed)


@pytest.mark.parametrize("kills", [3, pytest.param(40, marks=pytest.mark.slow)])
def test_killed_at_random_moments_the_run_resumes_to_the_same_bits(tmp_path, server, corpus, kills):
    """Words runs with the published export (its files too), each attempt killed after a
    seeded random delay within the length of an uninterrupted run, until ``kills`` kills; when
    an attempt ends by itself, the same goes on in a new output directory. Every directory must
    end as the uninterrupted run did."""
    overrides = _overrides(corpus, "export_published=true")
    reference = tmp_path / "reference"
    draw = random.Random(0)
    survived, runs = 0, []
    started = time.monotonic()
    assert server.run(reference, overrides) == 0, _log_tail(reference)
    length = time.monotonic() - started
    while survived < kills:
        runs.append(run := tmp_path / f"killed-{len(runs)}")
        while survived < kills:
            code = server.run(run, overrides, kill_after=draw.uniform(0, length))
            if code == 0:
                break
            assert code == -signal.SIGKILL, _log_tail(run)
            survived += 1
        else:
            assert server.run(run, overrides) == 0, _log_tail(run)
    for run in runs:
        assert_same_end(reference, run)


def assert_same_end(reference: Path, run: Path) -> None:
    """``run`` holds what ``reference`` holds, with the same bits (timings aside), and no
    temporary file."""
    files = _files(run)
    assert not [f for f in files if ".tmp-" in f], "temporary files left"
    assert files == _files(reference)
    for name in files:
        if name in ("checkpoint.pt", "checkpoint.pt.sha256", "metrics.json"):
            continue  # they hold timings: compared below without them
        assert (run / name).read_bytes() == (reference / name).read_bytes(), name
    assert _without_timings(_metrics(run)) == _without_timings(_metrics(reference))
    checkpoints = [load_checkpoint(path / "checkpoint.pt") for path in (run, reference)]
    for checkpoint in checkpoints:
        del checkpoint["config"]["output_dir"]  # the one setting that differs
    _assert_same(*checkpoints)


def _files(run: Path) -> list[str]:
    """Every file of a run's output directory but Hydra's own (its config copy and log)."""
    return sorted(str(p.relative_to(run)) for p in run.rglob("*")
                  if p.is_file() and ".hydra" not in p.parts and p.name != "train.log")  # fmt: skip


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _without_timings(value):
    """``value`` without the records' ``tokens_per_s`` (the one thing a rerun changes)."""
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k != "tokens_per_s"}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _assert_same(a, b, where: str = "checkpoint") -> None:
    """Nested dicts, lists and tensors equal bit for bit (timings aside)."""
    if isinstance(a, dict):
        a, b = _without_timings(a), _without_timings(b)
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where
