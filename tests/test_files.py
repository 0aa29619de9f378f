"""Atomic writes and the clean-up of their leftovers (elmo/files.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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
