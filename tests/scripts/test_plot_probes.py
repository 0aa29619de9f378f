"""scripts/plot_probes.py on synthetic elmo-probe results: models of 3 and 5 ELMo layers, two
tasks, a baseline; the metric each task plots; clean errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "plot_probes.py"


@pytest.fixture(scope="module")
def plot_probes():
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location("plot_probes", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _scores(num_layers: int, base: float) -> dict[str, float]:
    return {f"layer{k}": base + 0.05 * k for k in range(num_layers)} | {"mix": base + 0.2}


def write_results(directory: Path, task: str, num_layers: int, test: bool = True) -> Path:
    """A results.json as elmo-probe writes it (report.summary), for a model of L layers."""
    directory.mkdir(parents=True)
    key = {"pos": "accuracy", "chunk": "f1"}[task]
    def metrics(base: float) -> dict:
        scores = {f"dev_{key}": _scores(num_layers, base)}
        return scores | ({f"test_{key}": _scores(num_layers, base + 0.1)} if test else {})

    line = {"task": task, "model": f"runs/{directory.name}/model", **metrics(0.5),
            "baselines": {"random": metrics(0.3)}, "details": {"ignored": 1},
            "output_dir": str(directory)}  # fmt: skip
    (directory / "results.json").write_text(json.dumps(line, indent=2))
    return directory


def test_one_png_with_a_line_per_contextualiser_and_task(tmp_path, plot_probes, capsys):
    runs = [
        f"lstm={write_results(tmp_path / 'pos-lstm', 'pos', 3)}",
        f"lstm={write_results(tmp_path / 'chunk-lstm', 'chunk', 3) / 'results.json'}",
        f"transformer={write_results(tmp_path / 'pos-tf', 'pos', 5)}",
        f"transformer={write_results(tmp_path / 'chunk-tf', 'chunk', 5, test=False)}",
    ]
    out = tmp_path / "probes.png"
    assert plot_probes.main([*runs, "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width = matplotlib.image.imread(out).shape[:2]
    assert (width, height) == (1200, 540)  # 10 x 4.5 inches at 120 dpi

    series = plot_probes.read_runs(runs, {})
    assert [(s.contextualizer, s.task, s.metric) for s in series] == [
        ("lstm", "pos", "test_accuracy"),
        ("lstm", "chunk", "test_f1"),
        ("transformer", "pos", "test_accuracy"),
        ("transformer", "chunk", "dev_f1"),  # no test split in that run: dev
    ]
    assert list(series[2].layers) == [0, 1, 2, 3, 4] and series[2].mix == pytest.approx(0.8)


def test_overrides_baselines_and_bare_paths(tmp_path, plot_probes):
    run = str(write_results(tmp_path / "pos-lstm", "pos", 3))
    series = plot_probes.read_runs([run], {"pos": "dev_accuracy"}, ["random"])
    assert [(s.contextualizer, s.metric, s.baseline) for s in series] == [
        ("runs/pos-lstm/model", "dev_accuracy", None),  # a bare path: labelled by its model
        ("runs/pos-lstm/model", "dev_accuracy", "random"),
    ]
    assert series[1].layers == pytest.approx({0: 0.3, 1: 0.35, 2: 0.4})
    out = tmp_path / "b.png"
    assert plot_probes.main([run, "--baseline", "random", "--out", str(out)]) == 0
    assert out.is_file()


@pytest.mark.parametrize(
    "argv_tail, message",
    [
        (["lstm=missing"], "missing: no such results file"),
        (["=x"], "a run must be LABEL=PATH"),
        (["RUN", "--metric", "pos=test_f1"], "task 'pos' has none of ['test_f1']"),
        (["RUN", "--metric", "pos"], "--metric must be TASK=KEY"),
        (["RUN", "--baseline", "published"], "no baseline 'published'"),
        (["NOT_RESULTS"], "not an elmo-probe results file"),
        (["NO_TEST_BASELINE", "--baseline", "random"], "the random baseline has no 'test_accuracy'"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, plot_probes, capsys, argv_tail, message):
    run = str(write_results(tmp_path / "pos-lstm", "pos", 3))
    (tmp_path / "other.json").write_text("[1, 2]")
    line = json.loads((Path(run) / "results.json").read_text())
    del line["baselines"]["random"]["test_accuracy"]
    (tmp_path / "no_test.json").write_text(json.dumps(line))
    paths = {"RUN": run, "NOT_RESULTS": str(tmp_path / "other.json"),
             "NO_TEST_BASELINE": str(tmp_path / "no_test.json")}  # fmt: skip
    argv = [paths.get(item, item) for item in argv_tail]
    assert plot_probes.main([*argv, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("plot_probes: error: ") and message in err
    assert not (tmp_path / "x.png").exists()
