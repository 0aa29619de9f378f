"""The main job on a busy machine: its time alone and beside 1 and 2 CPU-bound processes.

Runs the README's main training job (by default ``elmo-train experiment=quickstart
trainer.max_steps=100 data.valid=null``) in a fresh process, alone and beside ``k`` busy-looping
Python processes, for each variant of its environment (``--variants``), in interleaved rounds,
and prints the median wall time, the slowdown against running alone, and that slowdown against
the fair share.

Fair share: the job wants every core (C torch threads on C cores); beside k single-threaded loops
each of the C + k runnable threads gets C / (C + k) of a core, so the job's fair slowdown is
(C + k) / C (1.5x beside one loop on 2 cores, 2x beside two). "vs fair" is measured / fair:
1.0 is a perfectly fair scheduler, issue 15's target is <= 1.3.

    python scripts/bench_busy.py --rounds 3
    python scripts/bench_busy.py --variants default,passive --busy 0,1,2 --rounds 3

Variants (the environment of the job's process):
    default   as installed: elmo sets GOMP_SPINCOUNT=1000 (elmo/openmp.py)
    before    ELMO_OPENMP_DEFAULTS=1: libgomp's own defaults (spin 300,000), as before elmo/openmp.py
    passive   OMP_WAIT_POLICY=PASSIVE (threads sleep while they wait)
    one       trainer.num_threads=1 (one torch thread)
    spinN     GOMP_SPINCOUNT=N (libgomp spins N iterations, then sleeps; e.g. spin10000)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOB = ["elmo-train", "experiment=quickstart", "trainer.max_steps=100", "data.valid=null"]
VARIANTS: dict[str, tuple[dict[str, str], list[str]]] = {
    "default": ({}, []),
    "before": ({"ELMO_OPENMP_DEFAULTS": "1"}, []),
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, []),
    "one": ({}, ["trainer.num_threads=1"]),
}
BUSY_LOOP = [sys.executable, "-c", "while True: pass"]


def variant_settings(variant: str) -> tuple[dict[str, str], list[str]]:
    """(environment, overrides) of a variant name."""
    if variant in VARIANTS:
        return VARIANTS[variant]
    if re.fullmatch(r"spin\d+", variant):
        return {"GOMP_SPINCOUNT": variant[4:]}, []
    raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)} or spinN")


def run_job(variant: str, busy: int, scratch: Path, timeout: float) -> float:
    """Seconds of wall time of one job run beside ``busy`` loops (inf: it ran past ``timeout``)."""
    env_extra, overrides = variant_settings(variant)
    unset = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "ELMO_OPENMP_DEFAULTS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(env_extra)
    out = tempfile.mkdtemp(dir=scratch)
    loops = [subprocess.Popen(BUSY_LOOP) for _ in range(busy)]
    try:
        time.sleep(0.5 if busy else 0)  # the loops are running before the job starts
        start = time.perf_counter()
        try:
            subprocess.run(
                [*JOB, *overrides, f"output_dir={out}", "trainer.checkpoint_every=1000"],
                env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return float("inf")
        return time.perf_counter() - start
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="before,default", help="comma-separated: " + ",".join(VARIANTS))
    parser.add_argument("--busy", default="0,1,2", help="numbers of busy loops beside the job")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300, help="seconds before a run counts as inf")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "elmo_bench_busy")
    args = parser.parse_args()
    variants = args.variants.split(",")
    busies = [int(b) for b in args.busy.split(",")]
    for variant in variants:
        try:
            variant_settings(variant)
        except ValueError as error:
            parser.error(str(error))
    args.scratch.mkdir(parents=True, exist_ok=True)
    cores = len(os.sched_getaffinity(0))
    times: dict[tuple[str, int], list[float]] = {}
    for round_index in range(args.rounds):
        for busy in busies:
            for variant in variants:
                seconds = run_job(variant, busy, args.scratch, args.timeout)
                times.setdefault((variant, busy), []).append(seconds)
                print(f"round {round_index + 1}: {variant:8s} beside {busy}: {seconds:6.1f} s", flush=True)
    print(f"\n{cores} cores; {' '.join(JOB)}; medians of {args.rounds} rounds\n")
    print("| variant | busy loops | wall s | vs alone | fair share | vs fair |")
    print("|---|---:|---:|---:|---:|---:|")
    for variant in variants:
        alone = statistics.median(times[(variant, 0)]) if 0 in busies else None
        for busy in busies:
            seconds = statistics.median(times[(variant, busy)])
            fair = (cores + busy) / cores
            slowdown = seconds / alone if alone else float("nan")
            print(f"| {variant} | {busy} | {seconds:.1f} | {slowdown:.2f}x | {fair:.2f}x | {slowdown / fair:.2f} |")


if __name__ == "__main__":
    main()
