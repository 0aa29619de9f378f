"""New code against a baseline tree, row by row, interleaved: the "must not move" check.

Runs the rows of docs/benchmarks.md's final table (``bench_embed.py``) and the training row
(``bench_train.py``) for this tree ("new") and for ``--baseline DIR`` ("old", e.g. the previous
commit's ``git archive``) in ABBA order (new, old, old, new; ``--cycles`` times), so that the
machine's drift falls on both alike. Prints each run's tokens/s as it goes (stderr), then a
table of the medians and new/old.

    git archive 4980910 | tar -x -C /tmp/eb/prev
    python scripts/bench_vs_baseline.py --baseline /tmp/eb/prev
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
E = ["bench_embed.py", "--threads", "2", "--repeats", "3", "--json", "--paths", "api"]
ROWS = {  # name -> command (the final table's rows, and training)
    "small b64 cache off/on": E + ["--shapes", "small", "--batch-sizes", "64", "--cache", "off,on",
                                   "--sentences", "2000"],
    "original b64 cache off/on": E + ["--shapes", "original", "--batch-sizes", "64", "--cache", "off,on",
                                      "--sentences", "2000", "--scale", "original=1.0", "--repeats", "1"],
    "small b1": E + ["--shapes", "small", "--batch-sizes", "1", "--cache", "off", "--sentences", "2000",
                     "--scale", "batch1=0.1"],
    "medium b64 cache off/on": E + ["--shapes", "medium", "--batch-sizes", "64", "--cache", "off,on",
                                    "--sentences", "2000", "--scale", "medium=0.2"],
    "train small": ["bench_train.py", "--threads", "2", "--shapes", "small", "--modes", "exact", "--json"],
}  # fmt: skip


def run(command: list[str], baseline: Path | None) -> list[dict]:
    """One bench command's JSON rows (the header line dropped)."""
    extra = ["--baseline", str(baseline)] if baseline else []
    done = subprocess.run([sys.executable, str(SCRIPTS / command[0]), *command[1:], *extra],
                          capture_output=True, text=True, check=True)  # fmt: skip
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return [row for row in rows if "tokens_per_s" in row]


def key(row: dict) -> str:
    cache = "" if row.get("cache") in (None, "-") else f" cache {row['cache']}"
    return f"{row['shape']} batch {row.get('batch_size', 'train')}{cache}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--rows", default=",".join(ROWS), help=f"a subset of {list(ROWS)}")
    parser.add_argument("--cycles", type=int, default=1, help="ABBA cycles per row")
    args = parser.parse_args()
    rates: dict[tuple[str, str], list[float]] = {}
    for name in args.rows.split(","):
        for _ in range(args.cycles):
            for label in ("new", "old", "old", "new"):
                for row in run(ROWS[name], args.baseline if label == "old" else None):
                    rates.setdefault((key(row), label), []).append(row["tokens_per_s"])
                    print(f"{key(row)} {label}: {row['tokens_per_s']:.0f} tokens/s", file=sys.stderr)
    print("| row | new tokens/s (median) | old tokens/s (median) | new/old | runs each |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in dict.fromkeys(k for k, _ in rates):
        new, old = (statistics.median(rates[(row, label)]) for label in ("new", "old"))
        print(f"| {row} | {new:,.0f} | {old:,.0f} | {new / old:.3f} | {len(rates[(row, 'new')])} |")


if __name__ == "__main__":
    main()
