"""Training throughput of the biLM on WikiText-2, against the matmul peak.

For each model shape (tiny, small: the published small shape, medium, lstm_small:
configs/model/small.yaml, or any configs/model/ name, such as transformer_small, which has about
lstm_small's parameters outside the softmax) and recurrence kernel
(``elmo.kernels``: exact, fused; a Transformer shape has none and runs once, kernel "-"), a fresh
child process builds the model with the shape's softmax over WikiText-2's training vocabulary,
takes ``--warmup`` optimizer steps, then times ``--steps`` more (``elmo.training.loop.train_step``:
a forward and a backward window, backpropagation, gradient clipping, the optimizer). It reports
the median step's tokens/s (both directions' real tokens), the child's peak RSS, the model's
training FLOPs per token (forward + backward of the character CNN, one direction's LSTM or
Transformer stack and the softmax; ``elmo.flops``), and the achieved FLOP rate as a fraction of
the matmul peak measured in the same run (fp32 on CPU; bf16 on CUDA, where the steps run under
bf16 autocast).

    flock /work/cpu.lock python scripts/bench_train.py --threads 2
    python scripts/bench_train.py --shapes tiny --steps 5 --json
    python scripts/bench_train.py --shapes lstm_small,transformer_small --modes exact
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from bench_embed import (
    NO_KERNEL,
    _cpu_model,
    add_run_options,
    child_environment,
    parse_or_run_child,
    peak_rss_mib,
    run_in_child,
    shape_config,
)

TEXT = REPO.parent / "shared" / "data" / "wikitext-2" / "wiki.train.tokens"


def run_child(spec: dict) -> dict:
    """Time training steps of one configuration in this process (called in a fresh child)."""
    import contextlib

    import torch

    from elmo.config import TrainerConfig
    from elmo.data.stream import LMBatcher
    from elmo.data.vocab import Vocabulary
    from elmo.model import BiLM
    from elmo.training.loop import RunState, train_step
    from elmo.training.objective import LMObjective
    from elmo.training.optim import build_optimizer, build_scheduler

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    device = torch.device(spec["device"])
    with open(spec["text"], encoding="utf-8") as lines:
        vocab = Vocabulary.build(lines)
    config = dataclasses.replace(shape_config(spec["shape"]), vocab_size=len(vocab))
    bilm = BiLM(config).to(device).train()
    if not spec.get("baseline") and spec["kernel"] != NO_KERNEL:  # (before kernels: a fast flag)
        bilm.kernel = spec["kernel"]
    objective = LMObjective(bilm)
    trainer = TrainerConfig(max_steps=10**6)
    optimizer = build_optimizer(objective.parameters(), trainer)
    scheduler = build_scheduler(optimizer, trainer)
    batchers = [
        iter(LMBatcher(spec["text"], vocab, spec["batch_size"], spec["unroll_steps"], reverse=r))
        for r in (False, True)
    ]
    autocast = (
        (lambda: torch.autocast("cuda", dtype=torch.bfloat16))
        if device.type == "cuda" else contextlib.nullcontext
    )  # fmt: skip
    run, rates = RunState(), []
    for step in range(spec["warmup"] + spec["steps"]):
        batches = [type(b)(*(t.to(device) for t in b)) for b in (next(i) for i in batchers)]
        tokens = int(batches[0].mask.sum() + batches[1].mask.sum())
        _synchronize(device)
        started = time.perf_counter()
        train_step(objective, optimizer, scheduler, batches, run, trainer.grad_clip, autocast)
        _synchronize(device)
        if step >= spec["warmup"]:
            rates.append(tokens / (time.perf_counter() - started))
    return {
        "vocab_size": len(vocab),
        "softmax": config.softmax.kind,
        "tokens_per_s": statistics.median(rates),
        "peak_rss_mib": peak_rss_mib(),  # VmHWM: ru_maxrss would start at the parent's size
    }


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="tiny,small,transformer_small,medium",
                        help="configs/model/ names: tiny, small, transformer_small, medium, ...")
    parser.add_argument("--modes", default="exact,fused", help="recurrence kernels (elmo.kernels)")
    parser.add_argument("--batch-size", type=int, default=32, help="B, streams per direction")
    parser.add_argument("--unroll-steps", type=int, default=20, help="T, tokens per window")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    add_run_options(parser, TEXT, "time the elmo package in this source tree instead (rows "
                    "labelled 'baseline'; use with --modes exact)")  # fmt: skip
    args = parse_or_run_child(parser, run_child)
    if args is None:
        return

    import torch

    from elmo.flops import measure_matmul_peak, training_flops_per_token

    torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    peak = measure_matmul_peak(dtype=dtype, device=device)
    header = {
        "torch": torch.__version__, "threads": args.threads, "device": device,
        "cpu": _cpu_model(), "cores": os.cpu_count(), "peak_dtype": str(dtype).split(".")[-1],
        "matmul_peak_gflops": round(peak, 1), "batch_size": args.batch_size,
        "unroll_steps": args.unroll_steps,
    }  # fmt: skip
    print(json.dumps(header) if args.json else _markdown_header(header), flush=True)
    env = child_environment(args.threads, args.baseline)
    shapes = {shape: shape_config(shape) for shape in args.shapes.split(",")}
    runs = [
        (shape, mode) for shape, config in shapes.items()
        for mode in (args.modes.split(",") if config.contextualizer == "lstm" else [NO_KERNEL])
    ]  # fmt: skip
    for shape, mode in runs:
        spec = {
            "shape": shape, "kernel": mode, "device": device, "text": str(args.text),
            "baseline": args.baseline is not None,
            "batch_size": args.batch_size, "unroll_steps": args.unroll_steps,
            "warmup": args.warmup, "steps": args.steps, "threads": args.threads,
        }  # fmt: skip
        result = run_in_child(__file__, spec, env)
        flops = training_flops_per_token(
            dataclasses.replace(shapes[shape], vocab_size=result["vocab_size"])
        )
        achieved = flops * result["tokens_per_s"] / 1e9
        row = {
            "shape": shape, "mode": "baseline" if args.baseline else mode, **result, "mflops_per_token": flops / 1e6,
            "achieved_gflops": achieved, "fraction_of_peak": achieved / peak,
        }  # fmt: skip
        print(json.dumps(row) if args.json else _markdown_row(row), flush=True)


def _markdown_header(header: dict) -> str:
    return (
        f"{header['cpu']}, {header['cores']} cores, torch {header['torch']}, {header['threads']} "
        f"threads, device {header['device']}; {header['peak_dtype']} matmul peak "
        f"{header['matmul_peak_gflops']} GFLOP/s; B {header['batch_size']} x T "
        f"{header['unroll_steps']} per direction\n\n"
        "| shape | LSTM | softmax | tokens/s | peak RSS (MiB) | MFLOP/token (train) | GFLOP/s "
        "| of peak |\n| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
    )


def _markdown_row(row: dict) -> str:
    return (
        f"| {row['shape']} | {row['mode']} | {row['softmax']} | {row['tokens_per_s']:.0f} | "
        f"{row['peak_rss_mib']:.0f} | {row['mflops_per_token']:.1f} | "
        f"{row['achieved_gflops']:.1f} | {100 * row['fraction_of_peak']:.0f}% |"
    )


if __name__ == "__main__":
    main()
