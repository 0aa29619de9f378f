"""Peak memory of ``elmo-train`` on 1x and on Nx a corpus: streaming data keeps it flat.

Trains the tiny model for a fixed number of steps twice, each run in a fresh subprocess: on
WikiText-2's training text, and on a glob of ``--scale`` shards that are each a copy (a symlink)
of it. The vocabulary is built by streaming over every shard and batches are read lazily, so the
peak resident memory should barely change with the corpus size; the wall time grows only by the
extra counting pass. Prints a Markdown table (peak RSS from ``wait4``'s ``ru_maxrss`` of each
child, and wall time) and the ratios.

    python scripts/bench_memory.py --steps 200 --scale 10
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "wikitext-2" / "wiki.train.tokens"


def vocab_seconds(log: str) -> tuple[float, str]:
    """(seconds spent building the vocabulary, its size) from a run's Hydra log."""
    stamps = {}
    for line in log.splitlines():
        match = re.match(r"\[([\d-]+ [\d:]+,\d+)\]\[elmo\.training\.run\]\[INFO\] - (.*)", line)
        if match and match.group(2).startswith(("building the vocabulary", "vocabulary: ")):
            key = "start" if match.group(2).startswith("building") else "end"
            stamps[key] = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
            if key == "end":
                stamps["size"] = match.group(2).split()[1]
    return (stamps["end"] - stamps["start"]).total_seconds(), stamps["size"]


def train_once(train: str, output_dir: Path, steps: int, extra: list[str]) -> tuple:
    """Run elmo-train in a fresh process.

    Returns:
        (peak RSS in MiB, wall seconds, vocabulary-building seconds, vocabulary size).
    """
    command = [
        sys.executable, "-m", "elmo.train", f"output_dir={output_dir}", f"data.train={train}",
        "data.valid=null", "data.test=null", "model=tiny", "model.softmax.kind=sampled",
        "model.softmax.num_samples=1024", "trainer=cpu", "trainer.num_threads=1",
        f"trainer.max_steps={steps}", f"trainer.checkpoint_every={steps}",
        f"trainer.log_every={steps}", "export_published=false", *extra,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(f"{output_dir}.log", "wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage, not all children's
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    log = Path(f"{output_dir}.log").read_text(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"elmo-train failed ({process.returncode}):\n{log[-2000:]}")
    return usage.ru_maxrss / 1024, seconds, *vocab_seconds(log)  # ru_maxrss: KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps per run")
    parser.add_argument("--scale", type=int, default=10, help="number of shards of the big run")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="the 1x training text")
    parser.add_argument(
        "overrides", nargs="*", help="extra elmo-train overrides, e.g. data.batch_size=16"
    )
    args = parser.parse_args()
    corpus = args.corpus.resolve()
    if not corpus.is_file():
        raise SystemExit(f"no such file: {corpus}")

    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        tmp = Path(tmp)
        shards = tmp / "shards"
        shards.mkdir()
        for i in range(args.scale):
            (shards / f"shard-{i:03d}.txt").symlink_to(corpus)
        size = corpus.stat().st_size / 2**20
        runs = [
            ("1x", str(corpus), size),
            (f"{args.scale}x", str(shards / "shard-*.txt"), size * args.scale),
        ]
        results = []
        for label, train, megabytes in runs:
            print(
                f"training on {label} ({megabytes:.0f} MiB of text) ...",
                file=sys.stderr,
                flush=True,
            )
            results.append(
                (
                    label,
                    megabytes,
                    *train_once(train, tmp / f"run-{label}", args.steps, args.overrides),
                )
            )

    print(f"elmo-train model=tiny (sampled softmax, 1024 samples), batch 32 x 20, {args.steps} "
          f"steps, 1 thread; {platform.node()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}\n")  # fmt: skip
    print(
        "| corpus | text (MiB) | peak RSS (MiB) | wall time (s) | of which vocabulary (s) | vocabulary |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, megabytes, rss, seconds, vocab_s, vocab_size in results:
        print(
            f"| {label} | {megabytes:.1f} | {rss:.0f} | {seconds:.1f} | {vocab_s:.1f} | {vocab_size} |"
        )
    (_, small_mb, small_rss, small_s, *_), (_, big_mb, big_rss, big_s, *_) = results
    print(f"\n{big_mb / small_mb:.0f}x the text: peak RSS x{big_rss / small_rss:.2f}, "
          f"wall time x{big_s / small_s:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
