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
        "kernel=fused",
    )
    assert config.task.unfreeze_every == 50 and config.baselines.published == "/pub"
    assert config.kernel == "fused"
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
        "kernel=fused",
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


def test_help_lists_the_tasks_without_their_schemas():
    result = _run("--help")
    assert result.returncode == 0, result.stderr
    groups = result.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    task_line = next(line for line in groups.splitlines() if line.startswith("task:"))
    assert set(task_line[len("task:") :].replace(",", " ").split()) == set(TASKS)
    assert "_schema" not in result.stdout


def test_a_wrong_or_missing_task_lists_only_the_tasks(tmp_path):
    wrong = _run("task=nonexistent", "model=m", f"hydra.run.dir={tmp_path / 'out'}")
    assert wrong.returncode != 0 and "Could not find 'task/nonexistent'" in wrong.stderr
    assert "pos" in wrong.stderr and "_schema" not in wrong.stderr
    missing = _run("model=m", f"output_dir={tmp_path / 'out'}")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"elmo-probe: error: choose a task: task=<{'|'.join(TASK_CONFIGS)}>"
    ]
    assert not (tmp_path / "out").exists()  # a failed run leaves no folder behind


SST2_HEADER = b"sentence\tlabel\n"


@pytest.mark.parametrize(
    "task, files, bad, message",
    [
        ("sst2", {"train.tsv": b"", "dev.tsv": SST2_HEADER + b"ok\t1\n"}, "train.tsv",
         "train.tsv: the file is empty"),
        ("sst2", {"train.tsv": SST2_HEADER + b"good\t1\n\nbad\t0\n", "dev.tsv": SST2_HEADER},
         "train.tsv", "train.tsv:3: blank line"),
        ("sst2", {"train.tsv": SST2_HEADER + b"good\t1\n", "dev.tsv": SST2_HEADER + b"caf\xe9\t1\n"},
         "dev.tsv", r"dev.tsv:2: invalid UTF-8 (byte 0xe9 at column 4)"),
        ("wordsim", {"pairs.txt": b"cat dog 7\ncat dog\n"}, "pairs.txt",
         "pairs.txt:2: expected 'word1 word2 score'"),
        ("pos", {"train.conllu": None}, "train.conllu", "train.conllu: is a directory"),
    ],
)  # fmt: skip
def test_a_bad_probe_file_is_one_line_naming_it(tmp_path, tiny_bilm, task, files, bad, message):
    model = save_pretrained(tiny_bilm, tmp_path / "model")
    data = tmp_path / "data"
    data.mkdir()
    for name, content in files.items():
        if content is None:
            (data / name).mkdir()
        else:
            (data / name).write_bytes(content)
    names = {
        "sst2": ["task.train=train.tsv", "task.dev=dev.tsv"],
        "wordsim": ["+task.files.tiny=pairs.txt", "task.datasets=[tiny]"],
        "pos": ["task.train=train.conllu", "task.dev=train.conllu", "task.test=null"],
    }[task]
    out = tmp_path / "out"
    result = _run(f"task={task}", f"model={model}", f"task.data_dir={data}", *names,
                  "baselines.random=false", f"output_dir={out}")  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"elmo-probe: error: {data / bad}") and message in lines[0]
    assert not out.exists()  # nothing was written: the run leaves no folder
