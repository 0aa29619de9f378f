"""Printing results as aligned plain-text columns."""

from __future__ import annotations

from collections.abc import Collection, Sequence

MAX_WIDTH = 32  # characters of a padded column's cell; longer cells are elided
ELLIPSIS = "…"


def elide(text: str, limit: int = MAX_WIDTH) -> str:
    """``text``, or its first ``limit - 1`` characters and an ellipsis if it is longer."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def print_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: Collection[int] = (),
    max_width: int = MAX_WIDTH,
) -> None:
    """Print rows as aligned columns; the columns numbered in ``right`` are right-aligned.

    Every column but the last is padded to its widest cell, so a cell longer than ``max_width``
    is elided there (one 10,000-character token would widen every row). The last column is not
    padded and is printed whole.
    """
    last = len(header) - 1

    def cells(row: Sequence[str]) -> list[str]:
        return [str(c) if i == last else elide(str(c), max_width) for i, c in enumerate(row)]

    header, rows = cells(header), [cells(row) for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))
        ).rstrip()

    print(line(header))
    for row in rows:
        print(line(row))
