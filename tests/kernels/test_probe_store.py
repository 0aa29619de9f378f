"""Tests for elmo.kernels.probe_store: probe answers kept across processes, never misapplied."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np
import pytest
import torch

from elmo.kernels import cpu, probe_store
from elmo.published import export_published


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh process's view of a store kept in tmp_path (the tests run with it off)."""
    monkeypatch.setenv(probe_store.STORE_ENV, str(tmp_path))
    probe_store.forget()
    yield tmp_path
    probe_store.forget()


def never() -> bool:
    raise AssertionError("the probe ran although its answer was kept")


def test_an_answer_is_kept_for_the_next_process(store):
    calls = []
    key = ((3, 4), torch.float32, 2)
    compute = lambda: calls.append(1) or frozenset({1, 5})
    assert probe_store.remembered("rows", key, compute, frozenset) == frozenset({1, 5})
    assert probe_store.remembered("rows", key, compute, frozenset) == frozenset({1, 5})
    assert calls == [1]  # once per process
    probe_store.forget()  # the next process
    assert probe_store.remembered("rows", key, never, frozenset) == frozenset({1, 5})
    assert probe_store.remembered("flag", key, lambda: False, bool) is False
    probe_store.forget()
    assert probe_store.remembered("flag", key, never, bool) is False
    kept = json.loads(probe_store.store_path().read_text())["answers"]
    assert kept == {"rows ((3, 4), torch.float32, 2)": [1, 5], "flag ((3, 4), torch.float32, 2)": False}


@pytest.mark.parametrize("setting", ["MKL_CBWR", "OMP_NUM_THREADS", "ONEDNN_MAX_CPU_ISA"])
def test_another_library_setting_reads_another_file(store, monkeypatch, setting):
    key = ((3, 4), torch.float32, 2)
    assert probe_store.remembered("flag", key, lambda: True, bool) is True
    first = probe_store.store_path()
    monkeypatch.setenv(setting, "something else")
    probe_store.forget()
    assert probe_store.store_path() != first
    assert probe_store.remembered("flag", key, lambda: False, bool) is False  # probed again


def test_the_fingerprint_names_the_cpu_and_the_libraries(store):
    parts = probe_store.fingerprint_parts()
    assert parts["torch"] == torch.__version__
    assert "Math Kernel Library" in parts["build"] or "MKL" not in parts["build"]
    if parts["cpu"]:  # Linux
        assert parts["cpu"]["model name"] and parts["cpu"]["flags"]


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"answers": []}',
        '{"answers": {"flag ((3, 4), torch.float32, 2)": "yes"}}',  # not an answer
        '{"answers": {"flag ((3, 4), torch.float32, 2)": [1, 2]}}',  # a list where a bool belongs
    ],
)
def test_a_damaged_file_is_probed_again_and_rewritten(store, content):
    path = probe_store.store_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    key = ((3, 4), torch.float32, 2)
    assert probe_store.remembered("flag", key, lambda: True, bool) is True
    probe_store.forget()
    assert probe_store.remembered("flag", key, never, bool) is True


def test_answers_of_other_processes_are_kept_beside_ours(store):
    key = ((3, 4), torch.float32, 2)
    probe_store.remembered("a", key, lambda: True, bool)  # this process has read the file
    other = json.loads(probe_store.store_path().read_text())
    other["answers"]["b ((3, 4), torch.float32, 2)"] = False  # another process adds one
    probe_store.store_path().write_text(json.dumps(other))
    probe_store.remembered("c", key, lambda: True, bool)
    kept = json.loads(probe_store.store_path().read_text())["answers"]
    assert sorted(kept) == [f"{kind} ((3, 4), torch.float32, 2)" for kind in "abc"]


def test_off_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(probe_store.STORE_ENV, "off")
    monkeypatch.setenv("ELMO_CACHE", str(tmp_path))
    probe_store.forget()
    calls = []
    for _ in range(2):
        probe_store.forget()
        probe_store.remembered("flag", ((1,),), lambda: calls.append(1) or True, bool)
    assert calls == [1, 1] and list(tmp_path.iterdir()) == []
    assert probe_store.store_path() is None


def test_a_folder_that_cannot_be_written_only_costs_time(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv(probe_store.STORE_ENV, str(blocker / "probes"))  # under a file: no folder
    probe_store.forget()
    assert probe_store.remembered("flag", ((1,),), lambda: True, bool) is True
    probe_store.forget()


def test_the_cpu_probes_keep_what_they_found(store):
    weight = torch.randn(64, 32)
    found = cpu.packing_keeps_bits(weight), cpu.rows_are_independent(weight)
    rows = {n for n in cpu.FEW_ROWS if cpu.few_row_products_exact(weight, n)}
    probe_store.forget()
    with pytest.MonkeyPatch.context() as patch:
        for name in ("_packing_probe", "_independence_probe", "_blocked_probe"):
            patch.setattr(cpu, name, lambda *args: never())
        assert (cpu.packing_keeps_bits(weight), cpu.rows_are_independent(weight)) == found
        assert {n for n in cpu.FEW_ROWS if cpu.few_row_products_exact(weight, n)} == rows


# The second process runs `elmo embed` with every probe replaced by a failure.
NO_PROBES = """
import sys
import elmo.kernels.cpu as cpu
def probed(*args):
    raise AssertionError("probed although the answer was kept")
for name in [n for n in vars(cpu) if n.startswith("_") and n.endswith("_probe")]:
    setattr(cpu, name, probed)
from elmo.cli import main
sys.argv[0] = "elmo"
sys.exit(main())
"""


def test_elmo_embed_reads_the_kept_answers_and_writes_the_same_bits(tiny_bilm, tmp_path):
    """Two processes in a row: the second probes nothing (its answers come from the file) and
    writes the first's vectors bit for bit."""
    export_published(tiny_bilm, tmp_path / "options.json", tmp_path / "weights.hdf5")
    text = tmp_path / "in.txt"
    text.write_text("the river bank\nthe bank of America\na\n" + "a long line of words " * 8 + "\n")
    store = tmp_path / "store"
    env = {**os.environ, probe_store.STORE_ENV: str(store)}
    outputs = []
    for start in (["-m", "elmo.cli"], ["-c", NO_PROBES]):
        out = tmp_path / f"out{len(outputs)}.hdf5"
        subprocess.run(
            [sys.executable, *start, "embed", "--all", "--batch-size", "1",
             "--options-file", str(tmp_path / "options.json"),
             "--weight-file", str(tmp_path / "weights.hdf5"), str(text), str(out)],
            check=True, env=env,
        )  # fmt: skip
        with h5py.File(out) as handle:
            outputs.append({k: handle[k][()] for k in handle if k != "sentence_to_index"})
    (kept,) = store.iterdir()
    answers = json.loads(kept.read_text())["answers"]
    assert any(name.startswith("few_row_products_exact") for name in answers)
    assert outputs[0].keys() == outputs[1].keys()
    for key in outputs[0]:
        assert np.array_equal(outputs[0][key], outputs[1][key]), key


def test_answers_kept_from_two_threads_at_once_are_all_kept(store):
    """The exact kernel's side thread probes beside the caller's."""
    names = [f"t{n}" for n in range(16)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda name: probe_store.remembered(name, ((1,),), lambda: True, bool), names))
    kept = json.loads(probe_store.store_path().read_text())["answers"]
    assert sorted(kept) == sorted(f"{name} ((1,),)" for name in names)
    assert [p.name for p in store.iterdir()] == [probe_store.store_path().name]  # no temp left
