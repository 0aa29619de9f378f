"""New code against a baseline tree in ONE process, rounds interleaved: the finer A/B.

``bench_vs_baseline.py`` runs each side in its own processes; on a VM whose speed drifts by
+-10% within minutes its medians need many runs. Here both packages are loaded into one process
(the baseline's ``elmo`` copied to a temporary folder and renamed ``elmo_old``), each round
embeds the same sentences with both (``ElmoEmbedder.embed_sentences``, a new embedder each
time, so the token cache starts empty), in alternating order, seconds apart. It prints the
medians, new/old, and whether both gave the same bits.

    git archive 4980910 | tar -x -C /tmp/eb/prev
    python scripts/bench_same_process.py --baseline /tmp/eb/prev --shape small --sentences 1000
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_embed import TEXT, load_sentences, shape_config  # a sibling script


def import_baseline(tree: Path, folder: Path):
    """The baseline tree's ``elmo`` package, importable as ``elmo_old`` (its imports renamed)."""
    target = folder / "elmo_old"
    shutil.copytree(tree / "elmo", target)
    for path in target.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"\b(from|import) elmo\b", r"\1 elmo_old", text), encoding="utf-8")
    sys.path.insert(0, str(folder))
    import elmo_old.embedder
    import elmo_old.published

    return elmo_old


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a source tree of the old code")
    parser.add_argument("--shape", default="small", help="small, medium or original")
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cache", choices=["off", "on"], default="off")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from elmo.embedder import ElmoEmbedder
    from elmo.published import load_published, write_random_published

    torch.set_num_threads(args.threads)
    sentences = load_sentences(TEXT, args.sentences)
    tokens = sum(len(s) for s in sentences)
    cache_size = 50_000 if args.cache == "on" else 0
    with tempfile.TemporaryDirectory() as folder:
        old = import_baseline(args.baseline, Path(folder) / "pkg")
        files = write_random_published(shape_config(args.shape), Path(folder) / "model", seed=0)
        sides = {
            "new": (ElmoEmbedder, load_published(*files)),
            "old": (old.embedder.ElmoEmbedder, old.published.load_published(*files)),
        }
    for embedder, bilm in sides.values():  # warm-up
        embedder(bilm, batch_size=args.batch_size).embed_sentences(sentences[: args.batch_size])
    rates: dict[str, list[float]] = {"new": [], "old": []}
    outputs = {}
    for round_ in range(args.rounds):
        for name in ("new", "old") if round_ % 2 == 0 else ("old", "new"):
            embedder, bilm = sides[name]
            run = embedder(bilm, batch_size=args.batch_size, cache_size=cache_size)
            started = time.perf_counter()
            outputs[name] = run.embed_sentences(sentences)
            rates[name].append(tokens / (time.perf_counter() - started))
            print(f"round {round_ + 1}: {name} {rates[name][-1]:.0f} tokens/s", file=sys.stderr)
    same = all(torch.equal(a, b) for a, b in zip(outputs["new"], outputs["old"]))
    new, old_rate = statistics.median(rates["new"]), statistics.median(rates["old"])
    print(f"| {args.shape} | {args.batch_size} | {args.cache} | {len(sentences)} | {args.rounds} | "
          f"{new:,.0f} | {old_rate:,.0f} | {new / old_rate:.3f} | {'yes' if same else 'NO'} |")  # fmt: skip


if __name__ == "__main__":
    main()
