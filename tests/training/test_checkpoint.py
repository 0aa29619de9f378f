"""Training checkpoints: atomic writes, loading without running code, exact RNG restore, resume."""

from __future__ import annotations

import dataclasses
import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from elmo.config import TrainConfig, TrainerConfig
from elmo.files import ModelFileError
from elmo.model import BiLM
from elmo.training.checkpoint import (
    capture_rng_state,
    checkpoint_payload,
    load_checkpoint,
    restore_rng_state,
    resume,
    save_checkpoint,
)
from elmo.training.distributed import World
from elmo.training.loop import RunState
from elmo.training.optim import build_optimizer, build_scheduler


def _payload() -> dict:
    """Everything a training checkpoint holds: tensors, nested dicts and lists of plain data."""
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adagrad(model.parameters(), lr=0.2)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    return {
        "step": 7,
        "world_size": 1,
        "config": {"model": {"dropout": 0.1, "lstm": {"cell_clip": None}}, "output_dir": "out"},
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "history": [{"step": 7, "loss": 1.5}],
        "ranks": [
            {
                "data": [{"epoch": 0, "rows": [["<S>", "a"], None]}],
                "forward_state": [torch.zeros(2, 4), torch.ones(2, 4)],
                "rng": capture_rng_state(),
            }
        ],
    }


def _assert_equal(a, b) -> None:
    """Nested equality where tensors must match exactly."""
    assert type(a) is type(b)
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_equal(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_equal(x, y)
    else:
        assert a == b


def test_save_then_load_roundtrips(tmp_path):
    payload = _payload()
    path = tmp_path / "checkpoint.pt"

    save_checkpoint(path, payload)

    _assert_equal(load_checkpoint(path), payload)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt", "checkpoint.pt.sha256"]  # no temp file


def test_save_replaces_an_existing_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"step": 1})
    save_checkpoint(path, {"step": 2})

    assert load_checkpoint(path) == {"step": 2}


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot pickle this")


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"step": 1})

    with pytest.raises(RuntimeError, match="cannot pickle this"):
        save_checkpoint(path, {"step": 2, "unpicklable": _Unpicklable()})

    assert load_checkpoint(path) == {"step": 1}
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt", "checkpoint.pt.sha256"]


class _Arbitrary:
    pass


def test_load_refuses_arbitrary_objects(tmp_path):
    # weights_only: a checkpoint cannot make the loader build (or run) arbitrary classes.
    path = tmp_path / "checkpoint.pt"
    torch.save({"step": 1, "thing": _Arbitrary()}, path)

    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(path)


def _draws() -> tuple:
    return (
        [random.random() for _ in range(3)],
        [random.gauss(0, 1) for _ in range(3)],
        np.random.rand(3).tolist(),
        np.random.standard_normal(3).tolist(),
        torch.rand(3).tolist(),
        torch.nn.functional.dropout(torch.ones(8), 0.5).tolist(),
    )


def test_restored_rng_state_reproduces_the_draws(tmp_path):
    random.gauss(0, 1)  # leave a cached Gaussian in Python's and numpy's generators
    np.random.standard_normal()
    state = capture_rng_state()
    expected = _draws()

    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"rng": state})
    _draws()  # move every generator on
    restore_rng_state(load_checkpoint(path)["rng"])

    assert _draws() == expected


def test_captured_state_is_a_snapshot():
    state = capture_rng_state()
    first = _draws()
    restore_rng_state(state)
    second = _draws()
    restore_rng_state(state)  # the same state restores twice: capture did not alias live state

    assert first == second == _draws()


def _training_parts(tiny_config):
    bilm = BiLM(dataclasses.replace(tiny_config, vocab_size=10))
    optimizer = build_optimizer(bilm.parameters(), TrainerConfig())
    return bilm, optimizer, build_scheduler(optimizer, TrainerConfig())


def test_a_run_payload_resumes_into_fresh_objects(tmp_path, tiny_config):
    bilm, optimizer, scheduler = _training_parts(tiny_config)
    state = bilm.initial_state(3)
    forward = type(state.forward)(*(torch.randn_like(t) for t in state.forward))
    run = RunState(step=4, forward_state=forward, history=[{"step": 4, "loss": 2.5}])
    world = World(rank=0, size=1, local_rank=0)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(
        path, checkpoint_payload(TrainConfig(), bilm, optimizer, scheduler, [], run, world)
    )

    payload = load_checkpoint(path)  # the format: plain data only, the states as tensor lists
    assert sorted(payload) == ["config", "history", "model", "optimizer", "ranks", "scheduler",
                               "step", "units", "world_size"]  # fmt: skip
    assert sorted(payload["ranks"][0]) == ["backward_state", "data", "forward_state", "rng"]
    assert payload["ranks"][0]["backward_state"] is None
    assert [type(t) for t in payload["ranks"][0]["forward_state"]] == [torch.Tensor] * 2

    fresh, fresh_optimizer, fresh_scheduler = _training_parts(tiny_config)
    restored = RunState()
    resume(path, fresh, fresh_optimizer, fresh_scheduler, [], restored, world, torch.device("cpu"))
    assert (restored.step, restored.history, restored.backward_state) == (4, run.history, None)
    for actual, expected in zip(restored.forward_state, forward):
        assert torch.equal(actual, expected)
    for name, tensor in bilm.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], tensor), name
    with pytest.raises(ValueError, match="written by 1 processes; resume with as many"):
        resume(path, fresh, fresh_optimizer, fresh_scheduler, [], restored, World(0, 2, 0), "cpu")


def _saved_run(tmp_path, tiny_config, units=None, vocab_size=10):
    bilm, optimizer, scheduler = _training_parts(tiny_config)
    world = World(rank=0, size=1, local_rank=0)
    path = tmp_path / "checkpoint.pt"
    payload = checkpoint_payload(TrainConfig(), bilm, optimizer, scheduler, [], RunState(), world,
                                 units)  # fmt: skip
    save_checkpoint(path, payload)
    return path, world


def _resume_fresh(path, world, tiny_config, units=None, vocab_size=10):
    bilm = BiLM(dataclasses.replace(tiny_config, vocab_size=vocab_size))
    optimizer = build_optimizer(bilm.parameters(), TrainerConfig())
    scheduler = build_scheduler(optimizer, TrainerConfig())
    resume(path, bilm, optimizer, scheduler, [], RunState(), world, torch.device("cpu"),
           units)  # fmt: skip


def test_a_vocabulary_other_than_the_checkpoints_is_refused_saying_what_to_delete(
    tmp_path, tiny_config
):
    path, world = _saved_run(tmp_path, tiny_config, units={"vocab.txt": "a" * 64})
    _resume_fresh(path, world, tiny_config, units={"vocab.txt": "a" * 64})  # the same: resumes
    with pytest.raises(ModelFileError, match=r"vocab\.txt is not the file .*checkpoint\.pt was "
                       r"trained with .*delete .*checkpoint\.pt to start the run over"):
        _resume_fresh(path, world, tiny_config, units={"vocab.txt": "b" * 64})


def test_an_older_checkpoint_checks_the_vocabulary_by_its_softmax_size(tmp_path, tiny_config):
    path, world = _saved_run(tmp_path, tiny_config)  # records no sums, as before
    with pytest.raises(ModelFileError, match=r"checkpoint\.pt does not fit this run's model"):
        _resume_fresh(path, world, tiny_config, units={"vocab.txt": "b" * 64}, vocab_size=7)


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_a_damaged_checkpoint_is_a_clear_error(tmp_path, tiny_config, damage):
    path, world = _saved_run(tmp_path, tiny_config)
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # the zip's middle zeroed
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"checkpoint\.pt"):
        _resume_fresh(path, world, tiny_config)


def test_killed_between_the_sums_and_the_rename_the_old_checkpoint_still_resumes(
    tmp_path, tiny_config, monkeypatch
):
    path, world = _saved_run(tmp_path, tiny_config)
    real_replace = os.replace

    def killed_at_the_rename(source, target):
        if Path(target) == path:
            raise KeyboardInterrupt("SIGKILL")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", killed_at_the_rename)
    with pytest.raises(KeyboardInterrupt):
        _saved_run(tmp_path, tiny_config)
    monkeypatch.setattr(os, "replace", real_replace)
    _resume_fresh(path, world, tiny_config)  # the new sum is recorded, and the old one too
