"""Plot probe scores by ELMo layer: one line per (contextualiser, task), from elmo-probe results.

    python scripts/plot_probes.py --out docs/probes_by_layer.png \\
        lstm=outputs/probe/pos-lstm lstm=outputs/probe/chunk-lstm lstm=outputs/probe/wic-lstm \\
        transformer=outputs/probe/pos-tf transformer=outputs/probe/chunk-tf ...

Each run is LABEL=PATH: LABEL names the contextualiser (the first part of the legend entry) and
PATH is a ``results.json`` written by ``elmo-probe`` or the output directory that holds it (a
bare PATH is labelled with the run's ``model``). The task is read from the file.

x is the ELMo layer: 0 the token (character) layer, 1..L the contextual layers (each model has
its own L), then "mix", the learned scalar mix (a hollow marker). y is the task's score: the
first of ``METRICS[task]`` the file has (test where the run has a test split), or
``--metric TASK=KEY``.
``--baseline random`` adds each run's random-biLM baseline as a faint line of the same style.
Lines share a colour per task and a line style and marker per contextualiser.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# task -> the per-layer metrics to plot, the first one present wins
METRICS = {
    "pos": ["test_accuracy", "dev_accuracy"],
    "chunk": ["test_f1", "dev_f1"],
    "wic": ["dev_accuracy_logreg", "dev_accuracy_threshold"],
    "sst2": ["dev_accuracy"],
}
LAYER = re.compile(r"^layer(\d+)$")
MIX = "mix"
STYLES = [("-", "o"), ("--", "s"), ("-.", "^"), (":", "D")]  # per contextualiser


class Series(NamedTuple):
    """One line: a model's score for each layer it has, and for the mix."""

    contextualizer: str  # the run's LABEL
    task: str
    metric: str  # the results key plotted, e.g. test_f1
    layers: dict[int, float]  # ELMo layer index -> score
    mix: float | None
    baseline: str | None = None  # None for the model itself, else the baseline's name


def results_file(path: str | Path) -> Path:
    """``path`` itself, or ``path/results.json`` when ``path`` is a directory."""
    path = Path(path)
    file = path / "results.json" if path.is_dir() else path
    if not file.is_file():
        raise ValueError(f"{file}: no such results file (give results.json or its directory)")
    return file


def parse_run(text: str) -> tuple[str | None, Path]:
    """``LABEL=PATH`` -> (label, results file); a bare PATH -> (None, results file)."""
    label, equals, path = text.partition("=")
    if not equals:
        return None, results_file(text)
    if not label or not path:
        raise ValueError(f"a run must be LABEL=PATH or PATH, got {text!r}")
    return label, results_file(path)


def pick_metric(task: str, metrics: dict, override: dict[str, str], file: Path) -> str:
    """The results key to plot for ``task``: ``override[task]`` or the first of METRICS[task]."""
    candidates = [override[task]] if task in override else METRICS.get(task, [])
    for key in candidates:
        if isinstance(metrics.get(key), dict):
            return key
    per_layer = sorted(k for k, v in metrics.items() if isinstance(v, dict) and _has_layers(v))
    raise ValueError(
        f"{file}: task {task!r} has none of {candidates} (per-layer metrics here: {per_layer}; "
        f"choose one with --metric {task}=KEY)"
    )


def _has_layers(values: dict) -> bool:
    return any(LAYER.match(key) or key == MIX for key in values)


def series_of(
    metrics: dict, contextualizer: str, task: str, metric: str, baseline: str | None = None
) -> Series:
    """The layer and mix scores of one model's ``metrics[metric]`` (other columns ignored)."""
    values = metrics.get(metric)
    if not isinstance(values, dict):
        who = f"the {baseline} baseline" if baseline else "the model"
        raise ValueError(  # noqa: TRY004  (a bad file, reported as the others)
            f"{contextualizer} {task}: {who} has no {metric!r} scores"
        )
    layers = {int(m.group(1)): float(v) for k, v in values.items() if (m := LAYER.match(k))}
    mix = float(values[MIX]) if MIX in values else None
    return Series(contextualizer, task, metric, dict(sorted(layers.items())), mix, baseline)


def read_runs(
    runs: Sequence[str], override: dict[str, str], baselines: Sequence[str] = ()
) -> list[Series]:
    """Every run's series (and its baselines' where asked), in the order given."""
    result = []
    for text in runs:
        label, file = parse_run(text)
        line = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(line, dict) or not isinstance(line.get("task"), str):
            raise ValueError(  # noqa: TRY004  (a bad file, reported as the others)
                f"{file}: not an elmo-probe results file (no 'task')"
            )
        task = line["task"]
        label = label or str(line.get("model", file.parent))
        metric = pick_metric(task, line, override, file)
        result.append(series_of(line, label, task, metric))
        for name in baselines:
            metrics = line.get("baselines", {}).get(name)
            if metrics is None:
                raise ValueError(f"{file}: no baseline {name!r} (it has {list(line['baselines'])})")
            result.append(series_of(metrics, label, task, metric, baseline=name))
    if not result:
        raise ValueError("give at least one run (LABEL=PATH)")
    return result


def plot(series: Sequence[Series], output: str | Path, title: str) -> Path:
    """Draw every series into one PNG at ``output``; returns its path."""
    top = max((max(s.layers, default=0) for s in series), default=0)
    mix_x = top + 1  # "mix" after the deepest model's top layer
    tasks = list(dict.fromkeys(s.task for s in series))
    labels = list(dict.fromkeys(s.contextualizer for s in series))
    colours = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=120)
    for s in series:
        colour = colours(tasks.index(s.task) % 10)
        linestyle, marker = STYLES[labels.index(s.contextualizer) % len(STYLES)]
        faint = {"alpha": 0.35} if s.baseline else {}
        name = f"{s.contextualizer} {s.task} ({s.metric})"
        name += f", {s.baseline} biLM" if s.baseline else ""
        xs, ys = list(s.layers), list(s.layers.values())
        ax.plot(xs, ys, linestyle=linestyle, marker=marker, color=colour, label=name, **faint)
        if s.mix is not None:  # the mix: a hollow marker of the line's style, not joined to it
            ax.plot([mix_x], [s.mix], marker=marker, markerfacecolor="white", color=colour,
                    linestyle="none", **faint)  # fmt: skip
    ax.set_xticks(list(range(top + 1)) + [mix_x])
    ax.set_xticklabels(["0\ntoken"] + [str(k) for k in range(1, top + 1)] + ["mix"])
    ax.set_xlabel("ELMo layer")
    ax.set_ylabel("probe score (accuracy / F1)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes
    fig.tight_layout()
    fig.savefig(output)
    plt.close(fig)
    return Path(output)


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """``["pos=dev_accuracy", ...]`` -> ``{"pos": "dev_accuracy"}``."""
    result = {}
    for item in items:
        task, equals, key = item.partition("=")
        if not equals or not task or not key:
            raise ValueError(f"--metric must be TASK=KEY, got {item!r}")
        result[task] = key
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="LABEL=PATH: results.json or its directory")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--metric", action="append", default=[],
                        help="TASK=KEY: the results key to plot for TASK (repeatable)")
    parser.add_argument("--baseline", action="append", default=[],
                        help="a baseline to add as faint lines, e.g. random (repeatable)")
    parser.add_argument("--title", default="Linear probes by ELMo layer")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        series = read_runs(args.runs, parse_overrides(args.metric), args.baseline)
        output = plot(series, args.out, args.title)
    except (ValueError, OSError) as error:
        print(f"plot_probes: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {output} ({len(series)} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
