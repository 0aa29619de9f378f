"""The summary line and the markdown tables."""

from __future__ import annotations

import json

from elmo.tasks.report import markdown_tables, summary, write_results

RESULTS = {
    "model": {"dev_accuracy": {"layer0": 0.5, "mix": 0.75}, "details": {"n": 3}},
    "random": {"dev_accuracy": {"layer0": 0.25, "mix": float("nan")}},
}


def test_summary_puts_the_model_on_top_and_baselines_below():
    line = summary("pos", "dir", RESULTS)
    assert line == {
        "task": "pos",
        "model": "dir",
        "dev_accuracy": {"layer0": 0.5, "mix": 0.75},
        "details": {"n": 3},
        "baselines": {"random": RESULTS["random"]},
    }


def test_markdown_has_a_row_per_model_and_skips_non_numeric_metrics():
    assert markdown_tables(RESULTS, digits=2) == (
        "**dev_accuracy**\n\n| model | layer0 | mix |\n|---|---:|---:|\n"
        "| model | 0.50 | 0.75 |\n| random | 0.25 | nan |\n"
    )


def test_write_results(tmp_path):
    line = summary("pos", "dir", RESULTS)
    write_results(tmp_path / "out", line, RESULTS, "title")
    assert json.loads((tmp_path / "out" / "results.json").read_text())["task"] == "pos"
    assert (tmp_path / "out" / "results.md").read_text().startswith("# title\n\n**dev_accuracy**")
