"""A probe run's results: one JSON file, a markdown table per metric, and the summary line.

Results are ``{model name: {metric: {column: value}}}``, e.g.
``{"model": {"dev_accuracy": {"layer0": 0.81, "mix": 0.93}}, "random": {...}}``. Every metric
whose value is a dict of numbers becomes a table, except ``details`` (thresholds, sizes), which
is only in the JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from elmo.tasks.models import MAIN

Results = dict[str, dict[str, object]]
DETAILS = "details"  # the metric key of extra, untabled information
RESULTS_FILE = "results.json"  # in the output directory, with results.md


def summary(task: str, model: str, results: Results) -> dict:
    """The one-line JSON: the model's metrics at the top level and every baseline's under it."""
    line: dict = {"task": task, "model": model}
    line.update(results[MAIN])
    line["baselines"] = {name: metrics for name, metrics in results.items() if name != MAIN}
    return line


def _is_table(metric: str, value: object) -> bool:
    return (
        metric != DETAILS
        and isinstance(value, dict)
        and bool(value)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values())
    )


def markdown_tables(results: Results, digits: int = 4) -> str:
    """One markdown table per metric: a row per model, a column per representation or dataset."""
    metrics: list[str] = []
    for per_model in results.values():
        metrics += [m for m, value in per_model.items() if _is_table(m, value) and m not in metrics]
    blocks = []
    for metric in metrics:
        columns: list[str] = []
        for per_model in results.values():
            columns += [c for c in per_model.get(metric, {}) if c not in columns]
        lines = [
            f"**{metric}**",
            "",
            "| model | " + " | ".join(columns) + " |",
            "|---|" + "---:|" * len(columns),
        ]
        for name, per_model in results.items():
            values = per_model.get(metric, {})
            cells = [_format(values.get(column), digits) for column in columns]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _format(value, digits: int) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.{digits}f}"


def write_results(output_dir: str | Path, line: dict, results: Results, title: str) -> Path:
    """Write ``results.json`` (the summary line, indented) and ``results.md``; returns the dir."""
    directory = Path(output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / RESULTS_FILE).write_text(json.dumps(line, indent=2) + "\n")
    (directory / "results.md").write_text(f"# {title}\n\n" + markdown_tables(results))
    return directory
