"""Printing results as aligned plain-text columns."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def print_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = ()
) -> None:
    """Print rows as aligned columns; the columns numbered in ``right`` are right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def line(cells) -> str:
        return "  ".join(
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    print(line(header))
    for row in rows:
        print(line(row))
