"""Aligned columns: a cell longer than the column cap is elided, not padded into every row."""

from __future__ import annotations

from elmo.commands.table import MAX_WIDTH, elide, print_table


def test_elide():
    assert elide("bank") == "bank"
    assert elide("x" * MAX_WIDTH) == "x" * MAX_WIDTH
    assert elide("x" * 10_000) == "x" * (MAX_WIDTH - 1) + "…"
    assert elide("abcdef", 4) == "abc…"


def test_columns_are_aligned_and_capped(capsys):
    rows = [("1", "bank", "the [bank] of the river"), ("2", "y" * 10_000, "z " * 100)]
    print_table(["rank", "word", "context"], rows, right=(0,))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "rank  " + "word".ljust(MAX_WIDTH) + "  context"
    assert lines[1] == "   1  " + "bank".ljust(MAX_WIDTH) + "  the [bank] of the river"
    assert lines[2] == "   2  " + "y" * (MAX_WIDTH - 1) + "…  " + ("z " * 100).rstrip()
