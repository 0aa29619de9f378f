"""``elmo-probe``: every config composes into its dataclass; the command's output and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from elmo.pretrained import save_pretrained
from elmo.probe import CONFIG_DIR, register_schemas, to_probe_config
from elmo.tasks.config import TASK_CONFIGS

TASKS = sorted(path.stem for path in (Path(CONFIG_DIR) / "task").glob("*.yaml"))


def _compose(*overrides: str):
    register_schemas()  # as elmo-probe's main() does
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return to_probe_config(compose(config_name="probe", overrides=list(overrides)))


@pytest.mark.parametrize("task", TASKS)
def test_every_task_config_composes_into_its_schema(task):
    config = _compose(f"task={task}", "model=some/dir")
    assert isinstance(config.task, TASK_CONFIGS[task]) and config.task.name == task
    assert config.model == "some/dir" and config.output_dir.startswith(f"outputs/probe/{task}-")


def test_overrides_are_typed_and_unknown_keys_rejected():
    config = _compose(
        "task=sst2",
        "model=m",
        "task.mode=finetune",
        "task.unfreeze_every=50",
        "baselines.published=/pub",
    )
    assert config.task.unfreeze_every == 50 and config.baselines.published == "/pub"
    with pytest.raises(Exception, match="no_such_key"):
        _compose("task=pos", "model=m", "task.no_such_key=1")
    with pytest.raises(Exception, match="task"):
        _compose("model=m")  # the task is required


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "elmo.probe", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_the_command_ends_with_one_json_line_and_fails_cleanly(tmp_path, tiny_bilm):
    model = save_pretrained(tiny_bilm, tmp_path / "model")
    (tmp_path / "pairs.txt").write_text("cat\tdog\t7\nsun\tmoon\t5\nold\tnew\t1\n")
    out = tmp_path / "out"
    result = _run(
        "task=wordsim",
        f"model={model}",
        f"task.data_dir={tmp_path}",
        "+task.files.tiny=pairs.txt",
        "task.datasets=[tiny]",
        "baselines.random=false",
        f"output_dir={out}",
    )
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["task"] == "wordsim" and line["coverage"] == {"tiny": 1.0}
    assert json.loads((out / "results.json").read_text())["spearman"] == line["spearman"]

    missing = _run("task=pos", f"model={tmp_path / 'nope'}", f"output_dir={out}")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1] == (
        f"elmo-probe: error: model directory does not exist: {tmp_path / 'nope'}"
    )
