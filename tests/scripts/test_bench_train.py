"""scripts/bench_train.py's summaries: where a step goes (--parts), and the medians and
same-round ratios of interleaved rounds (--rounds), on rows as its children report them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def bench_train():
    sys.path.insert(0, str(SCRIPTS))  # bench_train.py imports its sibling bench_embed.py
    try:
        spec = importlib.util.spec_from_file_location("bench_train", SCRIPTS / "bench_train.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPTS))


def _row(shape: str, tokens_per_s: float, fraction: float, round_number: int) -> dict:
    return {"shape": shape, "mode": "exact" if shape == "lstm" else "-", "round": round_number,
            "tokens_per_s": tokens_per_s, "fraction_of_peak": fraction, "step_ms": 400.0,
            "parts_ms": {"token encoder": 100.0, "contextualiser": 250.0, "softmax": 40.0}}  # fmt: skip


def test_medians_and_same_round_ratios(bench_train):
    # the machine speeds up in round 2: the ratio within each round stays 1.5
    rows = [_row("lstm", 1000, 0.30, 1), _row("transformer", 1500, 0.45, 1),
            _row("lstm", 2000, 0.32, 2), _row("transformer", 3000, 0.48, 2),
            _row("lstm", 1200, 0.31, 3), _row("transformer", 1800, 0.46, 3)]  # fmt: skip
    table = bench_train._medians_table(rows)
    assert "Medians over 3 interleaved rounds (ratio: to lstm exact in the same round)" in table
    assert "| lstm | exact | 1200 | 31% | 1.00 |" in table
    assert "| transformer | - | 1800 | 46% | 1.50 |" in table


def test_parts_table_gives_each_part_and_the_rest(bench_train):
    table = bench_train._parts_table([_row("lstm", 1000, 0.3, 1)])
    assert "| lstm | exact | 400 | 100 (25%) | 250 (62%) | 40 (10%) | 10 |" in table
