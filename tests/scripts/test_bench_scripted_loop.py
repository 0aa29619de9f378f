"""scripts/bench_scripted_loop.py: its table, on a short sentence of the published small shape."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_scripted_loop.py"


def test_the_table_has_both_loops_alone_and_side_by_side():
    command = [sys.executable, str(SCRIPT), "--shapes", "small", "--steps", "3", "--repeats", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    rows = [line for line in result.stdout.splitlines() if line.startswith("| small |")]
    assert [row.split("|")[2].strip() for row in rows] == ["Python", "TorchScript"]
    for row in rows:
        alone, both, ratio = (float(cell) for cell in row.split("|")[3:6])
        assert alone > 0 and both > 0
        assert abs(ratio - both / alone) < 0.02  # the printed times are rounded to 1 us
