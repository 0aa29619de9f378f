"""Side by side, in one process: what the exact kernel's levers each buy, measured interleaved.

The variants are recurrence kernels (``elmo.kernels``), set on one loaded model by name:

- per-step:   the reference loop, plain products, one direction after the other (the base kernel)
- hoisted:    the exact kernel's layers (prepacked products, input projections of positions
              with >= 16 real rows from one GEMM), the directions one after the other
- concurrent: per-step plain products, the backward stack on a side thread
- both:       the exact kernel (the default)
- fused:      the fused kernel (equal up to rounding only)

Each round embeds the same sentences once per variant, in rotating order, so that the machine's
drift (a shared VM) falls on all variants alike; the table gives each variant's median tokens/s
over the rounds, its ratio to "per-step", and whether its vectors equal "per-step"'s bit for bit.

    flock /work/cpu.lock python scripts/bench_lstm_ab.py --shape original --sentences 2000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_embed import TEXT, load_sentences, shape_config

from elmo.embedder import ElmoEmbedder
from elmo.kernels import RecurrenceKernel, get_kernel
from elmo.kernels.exact import ExactKernel
from elmo.published import load_published, write_random_published


class HoistedSerial(ExactKernel):
    """The exact kernel's layers, the directions one after the other."""

    run_directions = RecurrenceKernel.run_directions


class ConcurrentPerStep(ExactKernel):
    """The reference loop's layers, the backward stack on a side thread."""

    run_layer = RecurrenceKernel.run_layer


VARIANTS = {"per-step": RecurrenceKernel, "hoisted": HoistedSerial, "concurrent": ConcurrentPerStep,
            "both": lambda: get_kernel("exact"), "fused": lambda: get_kernel("fused")}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="original", help="small, medium or original")
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cache", choices=["off", "on"], default="off")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", default="per-step,hoisted,concurrent,both",
                        help=f"a comma-separated subset of {list(VARIANTS)}")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sentences = load_sentences(TEXT, args.sentences)
    tokens = sum(len(s) for s in sentences)
    with tempfile.TemporaryDirectory() as folder:
        bilm = load_published(*write_random_published(shape_config(args.shape), folder, seed=0))
    cache_size = 50_000 if args.cache == "on" else 0
    ElmoEmbedder(bilm, batch_size=args.batch_size).embed_sentences(sentences[: args.batch_size])
    names = args.variants.split(",")
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    if "per-step" not in names:
        names.insert(0, "per-step")  # the reference every ratio is to
    rates = {name: [] for name in names}
    vectors = {}
    for round_ in range(args.rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            embedder = ElmoEmbedder(bilm, batch_size=args.batch_size, cache_size=cache_size,
                                    kernel=VARIANTS[name]())  # fmt: skip
            started = time.perf_counter()
            output = embedder.embed_sentences(sentences)
            rates[name].append(tokens / (time.perf_counter() - started))
            vectors.setdefault(name, output)
            print(f"round {round_ + 1}: {name} {rates[name][-1]:.0f} tokens/s", file=sys.stderr)
    bilm.kernel = "exact"
    print(f"{args.shape}, batch {args.batch_size}, cache {args.cache}, {args.threads} threads, "
          f"{len(sentences)} sentences ({tokens} tokens), {args.rounds} rounds\n")  # fmt: skip
    print("| variant | median tokens/s | each round | vs per-step | same bits as per-step |")
    print("| --- | ---: | --- | ---: | --- |")
    base = statistics.median(rates["per-step"])
    for name in names:
        median = statistics.median(rates[name])
        same = all(torch.equal(a, b) for a, b in zip(vectors[name], vectors["per-step"]))
        each = ", ".join(f"{rate:.0f}" for rate in rates[name])
        print(f"| {name} | {median:.0f} | {each} | {median / base:.2f}x | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
