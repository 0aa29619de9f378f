"""Where the embedder spends its time: a torch profiler table for one shape and batch.

    python scripts/profile_embed.py --shape original --batch-size 64 --threads 2

Random weights of configs/model/<shape>.yaml (written in the published format, read back as
the benchmarks do); one warm-up batch, then one profiled batch of the next sentences of
WikiText-2 valid (scripts/bench_embed.py's sentences), token cache off.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_embed import TEXT, load_sentences, shape_config

from elmo.embedder import ElmoEmbedder
from elmo.published import load_published, write_random_published


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="original", help="small, medium or original")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=18, help="rows of the profiler table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sentences = load_sentences(TEXT, 2 * args.batch_size)
    with tempfile.TemporaryDirectory() as folder:
        bilm = load_published(*write_random_published(shape_config(args.shape), folder))
    embedder = ElmoEmbedder(bilm, batch_size=args.batch_size, cache_size=0)
    embedder.embed_sentences(sentences[: args.batch_size])  # warm-up
    timed = sentences[args.batch_size :]
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        embedder.embed_sentences(timed)
    seconds = time.perf_counter() - started
    tokens = sum(len(s) for s in timed)
    print(f"{args.shape}, batch {args.batch_size}, {args.threads} threads: {tokens} tokens, "
          f"{tokens / seconds:.0f} tokens/s (under the profiler)")  # fmt: skip
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
