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
    python scripts/bench_train.py --shapes lstm_small,transformer_small --modes exact --parts
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
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
    importlib.import_module("elmo")  # first, as the CLI does: the settings it makes before torch loads
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
    run, rates, steps = RunState(), [], []
    for step in range(spec["warmup"] + spec["steps"]):
        batches = [type(b)(*(t.to(device) for t in b)) for b in (next(i) for i in batchers)]
        tokens = int(batches[0].mask.sum() + batches[1].mask.sum())
        _synchronize(device)
        started = time.perf_counter()
        train_step(objective, optimizer, scheduler, batches, run, trainer.grad_clip, autocast)
        _synchronize(device)
        if step >= spec["warmup"]:
            steps.append(time.perf_counter() - started)
            rates.append(tokens / steps[-1])
    parts = _time_parts(bilm, batchers, spec, device) if spec.get("parts") else None
    return {
        "vocab_size": len(vocab),
        "softmax": config.softmax.kind,
        "tokens_per_s": statistics.median(rates),
        "step_ms": 1000 * statistics.median(steps),
        "parts_ms": parts,
        "peak_rss_mib": peak_rss_mib(),  # VmHWM: ru_maxrss would start at the parent's size
    }


def _time_parts(bilm, batchers, spec: dict, device) -> dict:
    """Where a step's time goes: the median ms of the forward and backward passes of each part
    alone, over both directions' windows of a step, with the inputs the part gets in training
    (the token encoder's characters; a leaf (B, T, D) for the contextualiser and for the
    softmax, so that their input gradients are computed as in a step). What the step takes
    beyond their sum is the optimizer, gradient clipping and the glue between the parts."""
    import torch

    iterators = [iter(b) for b in batchers]
    parts: dict[str, list[float]] = {"token encoder": [], "contextualiser": [], "softmax": []}
    for step in range(spec["warmup"] + spec["steps"]):
        batches = [type(b)(*(t.to(device) for t in b)) for b in (next(i) for i in iterators)]
        times = dict.fromkeys(parts, 0.0)
        for direction, batch in zip(bilm.directions, batches):
            started = time.perf_counter()
            bilm.char_cnn(batch.char_ids).sum().backward()
            _synchronize(device)
            times["token encoder"] += time.perf_counter() - started
            tokens = torch.randn(*batch.mask.shape, bilm.config.token_dim, device=device,
                                 requires_grad=True)  # fmt: skip
            started = time.perf_counter()
            sum(layer.sum() for layer in direction(tokens, batch.mask, None).layers).backward()
            _synchronize(device)
            times["contextualiser"] += time.perf_counter() - started
            hidden = torch.randn(int(batch.mask.sum()), bilm.config.token_dim, device=device,
                                 requires_grad=True)  # fmt: skip
            started = time.perf_counter()
            bilm.softmax.loss(hidden, batch.next_token_ids[batch.mask]).backward()
            _synchronize(device)
            times["softmax"] += time.perf_counter() - started
        if step >= spec["warmup"]:
            for name, seconds in times.items():
                parts[name].append(seconds)
    return {name: 1000 * statistics.median(seconds) for name, seconds in parts.items()}


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
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every row this many times, interleaved, and add a table of "
                        "medians and ratios (the machine's speed drifts; compare within rounds)")  # fmt: skip
    parser.add_argument("--parts", action="store_true",
                        help="also time the token encoder, the contextualiser and the softmax "
                        "alone (forward + backward): where a step's time goes")  # fmt: skip
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
    rows = []
    for round_number in range(1, args.rounds + 1):  # interleaved: each round runs every row
        if round_number > 1:  # the peak of this round, beside its rows (the machine drifts)
            peak = measure_matmul_peak(dtype=dtype, device=device)
        for shape, mode in runs:
            spec = {
                "shape": shape, "kernel": mode, "device": device, "text": str(args.text),
                "baseline": args.baseline is not None,
                "batch_size": args.batch_size, "unroll_steps": args.unroll_steps,
                "warmup": args.warmup, "steps": args.steps, "threads": args.threads,
                "parts": args.parts,
            }  # fmt: skip
            result = run_in_child(__file__, spec, env)
            flops = training_flops_per_token(
                dataclasses.replace(shapes[shape], vocab_size=result["vocab_size"])
            )
            achieved = flops * result["tokens_per_s"] / 1e9
            row = {
                "shape": shape, "mode": "baseline" if args.baseline else mode, **result,
                "mflops_per_token": flops / 1e6, "achieved_gflops": achieved,
                "fraction_of_peak": achieved / peak, "round": round_number,
                "matmul_peak_gflops": round(peak, 1),
            }  # fmt: skip
            rows.append(row)
            print(json.dumps(row) if args.json else _markdown_row(row), flush=True)
    if args.parts and not args.json:
        print(_parts_table(rows), flush=True)
    if args.rounds > 1 and not args.json:
        print(_medians_table(rows), flush=True)


def _medians_table(rows: list[dict]) -> str:
    """Markdown: per (shape, kernel), the median over rounds of tokens/s and of the fraction of
    the round's peak, and the median of its per-round ratio to the first row's tokens/s."""
    keys = list(dict.fromkeys((r["shape"], r["mode"]) for r in rows))
    first = [r for r in rows if (r["shape"], r["mode"]) == keys[0]]
    title = (f"Medians over {len(first)} interleaved rounds (ratio: to {keys[0][0]} {keys[0][1]} "
             "in the same round)")  # fmt: skip
    lines = ["", title, "",
             "| shape | LSTM | tokens/s | of peak | ratio |", "| --- | --- | ---: | ---: | ---: |"]  # fmt: skip
    for key in keys:
        mine = [r for r in rows if (r["shape"], r["mode"]) == key]
        ratios = [m["tokens_per_s"] / f["tokens_per_s"] for m, f in zip(mine, first)]
        lines.append(
            f"| {key[0]} | {key[1]} | {statistics.median(r['tokens_per_s'] for r in mine):.0f} | "
            f"{100 * statistics.median(r['fraction_of_peak'] for r in mine):.0f}% | "
            f"{statistics.median(ratios):.2f} |"
        )
    return "\n".join(lines)


def _parts_table(rows: list[dict]) -> str:
    """Markdown: each row's step time and how much of it each part takes alone."""
    names = list(rows[0]["parts_ms"])
    lines = ["", "| shape | LSTM | step (ms) | " + " | ".join(f"{n} (ms)" for n in names)
             + " | rest (ms) |", "| --- | --- | ---: |" + " ---: |" * (len(names) + 1)]  # fmt: skip
    for row in rows:
        parts = row["parts_ms"]
        rest = row["step_ms"] - sum(parts.values())
        cells = " | ".join(f"{parts[n]:.0f} ({100 * parts[n] / row['step_ms']:.0f}%)" for n in names)
        lines.append(f"| {row['shape']} | {row['mode']} | {row['step_ms']:.0f} | {cells} | {rest:.0f} |")
    return "\n".join(lines)


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
