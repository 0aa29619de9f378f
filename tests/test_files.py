"""Atomic writes and the clean-up of their leftovers (elmo/files.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from elmo import files
from elmo.files import atomic_write, atomic_write_text, remove_leftover_temps, temp_path


def test_a_write_that_fails_leaves_the_old_file_whole_and_no_temp(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(path) as handle:
        handle.write("half of the new")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["vocab.txt"]
    atomic_write_text(path, "new\n")
    assert path.read_text() == "new\n" and os.listdir(tmp_path) == ["vocab.txt"]


def test_leftovers_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    stale = tmp_path / f".checkpoint.pt.tmp-{dead}"
    live = temp_path(tmp_path / "vocab.txt")  # this process: it may be writing it now
    other = tmp_path / f".out.hdf5.tmp-{dead}"
    for path in (stale, live, other, tmp_path / "notes.tmp-1"):
        path.write_text("x")

    assert remove_leftover_temps(tmp_path, target="checkpoint.pt") == [stale]
    assert remove_leftover_temps(tmp_path) == [other]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "notes.tmp-1"])



def _write_under_fault(folder, spec: str, times: int) -> subprocess.CompletedProcess:
    """Write ``vocab.txt`` in ``folder`` ``times`` times, in a process with ELMO_FAULT_KILL_AT.

    The process loads elmo/files.py alone (it imports nothing of elmo; ``import elmo`` would
    take seconds to load torch).
    """
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('files', {files.__file__!r})\n"
            "files = importlib.util.module_from_spec(spec); spec.loader.exec_module(files)\n"
            f"for i in range({times}): files.atomic_write_text(sys.argv[1], f'new {{i}}')")  # fmt: skip
    env = {**os.environ, files.FAULT_ENV: spec}
    return subprocess.run([sys.executable, "-c", code, str(folder / "vocab.txt")], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip


@pytest.mark.parametrize(
    "spec, kept, temps",
    [
        ("vocab.txt:before_rename:1", "old", 1),  # killed with the new file written, not renamed
        ("vocab.txt:after_rename:1", "new 0", 0),  # killed with the new file in place
        ("vocab.txt:before_rename:3", "new 1", 1),  # the third time the write gets there
    ],
)
def test_the_fault_hook_kills_the_process_at_the_point_it_names(tmp_path, spec, kept, temps):
    (tmp_path / "vocab.txt").write_text("old")
    result = _write_under_fault(tmp_path, spec, times=4)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert (tmp_path / "vocab.txt").read_text() == kept
    assert len(list(tmp_path.glob(".vocab.txt.tmp-*"))) == temps  # for remove_leftover_temps


def test_a_fault_point_of_another_file_never_fires(tmp_path, monkeypatch):
    monkeypatch.setenv(files.FAULT_ENV, "metrics.json:before_rename:1")
    atomic_write_text(tmp_path / "vocab.txt", "new")
    assert os.listdir(tmp_path) == ["vocab.txt"]


@pytest.mark.parametrize("spec", ["vocab.txt:before:1", "vocab.txt:after_rename", "x:after_rename:0"])
def test_a_mistyped_fault_point_is_an_error_not_a_point_never_reached(tmp_path, monkeypatch, spec):
    monkeypatch.setenv(files.FAULT_ENV, spec)
    with pytest.raises(ValueError, match=f"ELMO_FAULT_KILL_AT='{spec}'"):
        atomic_write_text(tmp_path / "vocab.txt", "new")
