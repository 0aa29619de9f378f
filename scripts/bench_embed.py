"""Inference throughput of ``ElmoEmbedder`` on WikiText-2 sentences, against the matmul peak.

For each model shape (random weights written in the published format; a Transformer shape such as
``transformer_small``, which that format cannot hold, as our directory), batch size, token cache
on/off and recurrence kernel (``elmo.kernels``: exact, fused; a Transformer has none, so its rows
run once, kernel "-"; it matches configs/model/small.yaml, while the "small" rows here are the
published small shape), a fresh child process embeds the first N sentences of
WikiText-2 valid ``--repeats`` times, each time with a new embedder (an empty cache), after one
warm-up batch. It reports the median tokens/s and sentences/s, the child's peak RSS, the model's
forward FLOPs per token, the achieved model-FLOP rate and its fraction of the fp32 matmul peak
(2048 x 2048, measured in the same run with the same thread count), and the fraction of the
matmul-bound limit (peak / FLOPs per token).

Text: wiki.valid.tokens without blank lines and ``= Heading =`` lines, cut into sentences after
each ``.``, ``?`` or ``!`` token (a paragraph's tail is a sentence too). Tokens/s counts these
tokens, not the ``<S>``/``</S>`` the biLM adds.

    flock /work/cpu.lock python scripts/bench_embed.py --threads 2            # the full table
    python scripts/bench_embed.py --shapes published_small --batch-sizes 64 --sentences 200 --json
    python scripts/bench_embed.py --shapes small,transformer_small --batch-sizes 32 --cache on
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEXT = REPO.parent / "shared" / "data" / "wikitext-2" / "wiki.valid.tokens"
SHAPES = {"small": "published_small", "medium": "medium", "original": "original"}
NO_KERNEL = "-"  # the kernel column of a contextualiser without a recurrence (a Transformer)


def load_sentences(path: Path, count: int) -> list[list[str]]:
    """The first ``count`` sentences of a WikiText file (see the module docstring)."""
    sentences: list[list[str]] = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            stripped = line.strip()
            if not stripped or stripped.startswith("= "):
                continue
            current: list[str] = []
            for token in stripped.split():
                current.append(token)
                if token in (".", "?", "!"):
                    sentences.append(current)
                    current = []
            if current:
                sentences.append(current)
            if len(sentences) >= count:
                return sentences[:count]
    return sentences


def shape_config(name: str):
    from omegaconf import OmegaConf

    from elmo.config import bilm_config_from_dict

    data = OmegaConf.to_container(OmegaConf.load(REPO / "configs" / "model" / f"{SHAPES.get(name, name)}.yaml"))
    return bilm_config_from_dict(data)


def run_child(spec: dict) -> dict:
    """Time one configuration in this process (called in a fresh child)."""
    import torch

    from elmo.embedder import ElmoEmbedder

    torch.set_num_threads(spec["threads"])
    if "model" in spec:  # our directory (a Transformer)
        from elmo.pretrained import load_bilm

        bilm = load_bilm(model=spec["model"])
    else:  # the published format, which every tree of this code reads (--baseline)
        from elmo.published import load_published

        bilm = load_published(spec["options"], spec["weights"])
    sentences = load_sentences(Path(spec["text"]), spec["sentences"])
    tokens = sum(len(s) for s in sentences)
    options = {"batch_size": spec["batch_size"]}
    options["cache_size"] = 50_000 if spec["cache"] else 0
    if spec["baseline"]:  # the code from before the kernels took a fast flag instead
        options["fast"] = spec["kernel"] == "fused"
    elif spec["kernel"] != NO_KERNEL:
        options["kernel"] = spec["kernel"]
    ElmoEmbedder(bilm, **options).embed_sentences(sentences[: spec["batch_size"]])  # warm-up
    seconds, hit_rate = [], 0.0
    for _ in range(spec["repeats"]):
        embedder = ElmoEmbedder(bilm, **options)  # an empty cache each time
        started = time.perf_counter()
        embedder.embed_sentences(sentences)
        seconds.append(time.perf_counter() - started)
        cache = getattr(embedder, "token_cache", None)
        hit_rate = cache.hits / max(cache.hits + cache.misses, 1) if cache else 0.0
    median = statistics.median(seconds)
    return {
        "sentences": len(sentences),
        "tokens": tokens,
        "seconds": median,
        "seconds_all": seconds,
        "tokens_per_s": tokens / median,
        "sentences_per_s": len(sentences) / median,
        "cache_hit_rate": hit_rate,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="small,transformer_small,medium,original",
                        help="small, medium, original, or a configs/model/ name "
                        "(transformer_small, ...)")  # fmt: skip
    parser.add_argument("--batch-sizes", default="1,32,64")
    parser.add_argument("--cache", default="off,on", help="off, on or both (off,on)")
    parser.add_argument("--modes", default="exact", help="recurrence kernels (elmo.kernels): exact, fused")
    parser.add_argument("--sentences", type=int, default=2000, help="N for the small shape")
    parser.add_argument(
        "--scale", default="small=1,medium=0.25,original=0.1,batch1=0.1",
        help="fraction of N per shape, and for batch size 1 (keeps the run short)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    add_run_options(parser, TEXT, "time the elmo package in this source tree instead (e.g. an "
                    "older commit's `git archive`); the rows are labelled 'baseline'")  # fmt: skip
    args = parse_or_run_child(parser, run_child)
    if args is None:
        return

    import torch

    from elmo.flops import forward_flops_per_token, measure_matmul_peak

    torch.set_num_threads(args.threads)
    scale = {k: float(v) for k, v in (item.split("=") for item in args.scale.split(","))}
    peak = measure_matmul_peak()
    header = {
        "torch": torch.__version__, "threads": args.threads, "matmul_peak_gflops": round(peak, 1),
        "python": platform.python_version(), "cpu": _cpu_model(), "cores": os.cpu_count(),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "default"),
    }  # fmt: skip
    print(json.dumps(header) if args.json else _markdown_header(header), flush=True)
    env = child_environment(args.threads, args.baseline)
    with tempfile.TemporaryDirectory() as folder:
        for shape in args.shapes.split(","):
            config = shape_config(shape)
            files = write_random_model(config, Path(folder) / shape)
            flops = forward_flops_per_token(config)
            modes = args.modes.split(",") if config.contextualizer == "lstm" else [NO_KERNEL]
            rows = itertools.product(
                [int(b) for b in args.batch_sizes.split(",")], args.cache.split(","), modes
            )
            for batch_size, cache, mode in rows:
                count = args.sentences * scale.get(shape, 1.0) * (scale["batch1"] if batch_size == 1 else 1)
                spec = {
                    **files, "text": str(args.text),
                    "sentences": max(int(count), 1), "batch_size": batch_size, "cache": cache == "on",
                    "kernel": mode, "repeats": args.repeats, "threads": args.threads,
                    "baseline": args.baseline is not None,
                }  # fmt: skip
                result = run_in_child(__file__, spec, env)
                achieved = flops * result["tokens_per_s"] / 1e9
                if args.baseline:
                    mode = f"baseline ({mode})"
                row = {
                    "shape": shape, "batch_size": batch_size, "cache": cache, "mode": mode,
                    **result, "mflops_per_token": flops / 1e6, "achieved_gflops": achieved,
                    "fraction_of_peak": achieved / peak, "limit_tokens_per_s": peak * 1e9 / flops,
                }  # fmt: skip
                print(json.dumps(row) if args.json else _markdown_row(row), flush=True)


def write_random_model(config, folder: Path) -> dict[str, str]:
    """A randomly initialised model of ``config`` (seed 0) in ``folder``: the published format for
    an LSTM ({"options", "weights"}), our directory for another contextualiser ({"model"})."""
    from elmo.published import write_random_published

    if config.contextualizer == "lstm":
        options, weights = write_random_published(config, folder, seed=0)
        return {"options": str(options), "weights": str(weights)}
    import dataclasses

    import torch

    from elmo.model import BiLM
    from elmo.pretrained import save_pretrained

    torch.manual_seed(0)
    return {"model": str(save_pretrained(BiLM(dataclasses.replace(config, vocab_size=0)), folder))}


def add_run_options(parser: argparse.ArgumentParser, text: Path, baseline_help: str) -> None:
    """The options both benchmark scripts share: threads, text, JSON rows, a baseline tree."""
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--text", type=Path, default=text)
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    parser.add_argument("--baseline", type=Path, help=baseline_help)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # set by ``run_in_child``


def parse_or_run_child(parser: argparse.ArgumentParser, run_child) -> argparse.Namespace | None:
    """The parsed options; or, in a child (``--child SPEC``), print ``run_child(SPEC)`` -> None."""
    args = parser.parse_args()
    if not args.child:
        return args
    print(json.dumps(run_child(json.loads(args.child))))
    return None


def run_in_child(script: str, spec: dict, env: dict) -> dict:
    """Run ``script --child SPEC`` in a fresh process (its own peak RSS); its last JSON line."""
    done = subprocess.run(
        [sys.executable, script, "--child", json.dumps(spec)],
        capture_output=True, text=True, env=env, cwd=REPO, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"child failed for {spec}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_environment(threads: int, baseline: Path | None) -> dict:
    """The children's environment: the thread count, and the baseline source tree if any."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if baseline is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(baseline.resolve()), env.get("PYTHONPATH", "")])
    return env


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _markdown_header(header: dict) -> str:
    return (
        f"{header['cpu']}, {header['cores']} cores, torch {header['torch']}, {header['threads']} "
        f"threads, oneDNN ISA {header['onednn_max_cpu_isa']}; fp32 matmul peak "
        f"{header['matmul_peak_gflops']} GFLOP/s\n\n"
        "| shape | batch | cache | LSTM | sentences | tokens | tokens/s | sentences/s | peak RSS (MiB) "
        "| MFLOP/token | GFLOP/s | of peak | hit rate |\n"
        "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )


def _markdown_row(row: dict) -> str:
    return (
        f"| {row['shape']} | {row['batch_size']} | {row['cache']} | {row['mode']} | "
        f"{row['sentences']} | {row['tokens']} | {row['tokens_per_s']:.0f} | "
        f"{row['sentences_per_s']:.1f} | {row['peak_rss_mib']:.0f} | {row['mflops_per_token']:.1f} | "
        f"{row['achieved_gflops']:.1f} | {100 * row['fraction_of_peak']:.0f}% | "
        f"{100 * row['cache_hit_rate']:.0f}% |"
    )


if __name__ == "__main__":
    main()
