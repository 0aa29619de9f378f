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

Two paths (``--paths``). ``cli`` is the user's: ``elmo embed`` (stateless, ``--output``, the same
batch size, cache and kernel) in a fresh process on a text file of those sentences, one per line,
timed from the process's start until it has exited (the HDF5 file written and closed), so it
counts Python's and torch's start, the model's loading and the writing; its peak RSS is that
process's (``os.wait4``, through a small launcher: ``_LAUNCHER`` says why), each repeat a new
process. Each repeat also runs the command on the first sentence alone: the difference of the two
times is the command past its start (``past start``: the other sentences from their first batch to
the file closed, as issue 16 timed the commands; its tokens/s counts the other sentences' tokens).
``api`` is ``ElmoEmbedder.embed_sentences`` in one process, timed after a warm-up as above.

Text: wiki.valid.tokens without blank lines and ``= Heading =`` lines, cut into sentences after
each ``.``, ``?`` or ``!`` token (a paragraph's tail is a sentence too). Tokens/s counts these
tokens, not the ``<S>``/``</S>`` the biLM adds.

    flock /work/cpu.lock python scripts/bench_embed.py --threads 2            # the full table
    python scripts/bench_embed.py --shapes published_small --batch-sizes 64 --sentences 200 --json
    python scripts/bench_embed.py --shapes lstm_small,transformer_small --batch-sizes 32 --cache on
    python scripts/bench_embed.py --shapes original --batch-sizes 64 --cache on --paths cli \
        --sentences 2000 --scale original=1                      # issue 16's row, the user's path
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEXT = REPO.parent / "shared" / "data" / "wikitext-2" / "wiki.valid.tokens"
# "small" is the published small shape; "lstm_small" is configs/model/small.yaml, the LSTM of
# about transformer_small's parameters (the Transformer's like-for-like partner)
SHAPES = {"small": "published_small", "lstm_small": "small", "medium": "medium", "original": "original"}
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
    importlib.import_module("elmo")  # first, as the CLI does: the settings it makes before torch loads
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
    if spec["baseline"] and not spec.get("baseline_kernels"):  # before the kernels: a fast flag
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
        "peak_rss_mib": peak_rss_mib(),
    }


def _parse_scale(parser: argparse.ArgumentParser, text: str) -> dict[str, float]:
    """"small=1,batch1=0.1" -> {"small": 1.0, "batch1": 0.1}; a malformed item is a usage error."""
    scale = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        try:
            scale[name.strip()] = float(value)
        except ValueError:
            parser.error(f"--scale: {item!r} is not NAME=FRACTION (e.g. original=0.25,batch1=0.1)")
    return scale


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
    parser.add_argument("--paths", default="cli,api",
                        help="cli (elmo embed in a fresh process), api (ElmoEmbedder), or both")
    parser.add_argument("--output", default="top", choices=["all", "top", "average"],
                        help="what the cli path writes (elmo embed --all|--top|--average)")
    add_run_options(parser, TEXT, "time the elmo package in this source tree instead (e.g. an "
                    "older commit's `git archive`); the rows are labelled 'baseline'")  # fmt: skip
    args = parse_or_run_child(parser, run_child)
    if args is None:
        return

    import torch

    from elmo.flops import forward_flops_per_token, measure_matmul_peak

    torch.set_num_threads(args.threads)
    scale = _parse_scale(parser, args.scale)
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
                [int(b) for b in args.batch_sizes.split(",")], args.cache.split(","), modes,
                args.paths.split(","),
            )  # fmt: skip
            for batch_size, cache, mode, path in rows:
                count = args.sentences * scale.get(shape, 1.0) * (scale.get("batch1", 1.0) if batch_size == 1 else 1)
                spec = {
                    **files, "text": str(args.text),
                    "sentences": max(int(count), 1), "batch_size": batch_size, "cache": cache == "on",
                    "kernel": mode, "repeats": args.repeats, "threads": args.threads,
                    "baseline": args.baseline is not None,
                    # a baseline tree with elmo/kernels takes kernel= (older ones only fast=)
                    "baseline_kernels": bool(args.baseline and (args.baseline / "elmo" / "kernels").is_dir()),
                }  # fmt: skip
                if path == "cli":
                    result = run_command(spec, args.output, Path(folder), env)
                else:
                    result = run_in_child(__file__, spec, env)
                achieved = flops * result["tokens_per_s"] / 1e9
                past_start = result.get("past_start_tokens_per_s")
                if args.baseline:
                    mode = f"baseline ({mode})"
                row = {
                    "path": path if path == "api" else f"elmo embed --{args.output}",
                    "shape": shape, "batch_size": batch_size, "cache": cache, "mode": mode,
                    **result, "mflops_per_token": flops / 1e6, "achieved_gflops": achieved,
                    "fraction_of_peak": achieved / peak, "limit_tokens_per_s": peak * 1e9 / flops,
                    "past_start_fraction_of_peak": past_start and flops * past_start / 1e9 / peak,
                }  # fmt: skip
                print(json.dumps(row) if args.json else _markdown_row(row), flush=True)


def run_command(spec: dict, output: str, folder: Path, env: dict) -> dict:
    """Time ``elmo embed`` on the spec's sentences, each repeat in a fresh process (see the module
    docstring): the median wall time, and the largest peak RSS of the repeats."""
    sentences = load_sentences(Path(spec["text"]), spec["sentences"])
    text = folder / f"sentences-{len(sentences)}.txt"
    text.write_text("".join(" ".join(sentence) + "\n" for sentence in sentences), encoding="utf-8")
    first = folder / "sentences-first.txt"
    first.write_text(" ".join(sentences[0]) + "\n", encoding="utf-8")
    vectors = folder / "vectors.hdf5"
    command = [*elmo_command(), "embed", str(text), str(vectors), f"--{output}",
               "--batch-size", str(spec["batch_size"]), "--cache-size", "50000" if spec["cache"] else "0"]  # fmt: skip
    if "model" in spec:
        command += ["--model", spec["model"]]
    else:
        command += ["--options-file", spec["options"], "--weight-file", spec["weights"]]
    if spec["baseline"] and not spec.get("baseline_kernels"):  # before the kernels: --fast
        command += ["--fast"] if spec["kernel"] == "fused" else []
    elif spec["kernel"] != NO_KERNEL:
        command += ["--kernel", spec["kernel"]]
    at = command.index(str(text))
    seconds, start_seconds, peaks = [], [], []
    for _ in range(spec["repeats"]):
        for times, file in ((seconds, text), (start_seconds, first)):
            vectors.unlink(missing_ok=True)
            elapsed, peak_kib, _ = timed_process([*command[:at], str(file), *command[at + 1 :]], env)
            times.append(elapsed)
            if file is text:
                peaks.append(peak_kib / 1024)
    vectors.unlink(missing_ok=True)
    tokens = sum(len(s) for s in sentences)
    median = statistics.median(seconds)
    past_start = median - statistics.median(start_seconds)  # all but the first sentence
    return {
        "sentences": len(sentences), "tokens": tokens, "seconds": median,
        "seconds_all": seconds, "tokens_per_s": tokens / median,
        "sentences_per_s": len(sentences) / median, "cache_hit_rate": None,
        "peak_rss_mib": max(peaks), "peak_rss_mib_all": peaks,
        "start_seconds_all": start_seconds,
        "past_start_tokens_per_s": (tokens - len(sentences[0])) / past_start if past_start > 0 else None,
    }  # fmt: skip


# Linux starts a child's high-water mark of resident memory (ru_maxrss) at its parent's resident
# size, and keeps it across exec: a child of this script, which holds torch and a model, would
# read at least this script's size. Two ways around it: a process reads its own VmHWM, which
# exec resets (``peak_rss_mib``); a command is started by this small launcher, whose size is
# the floor instead (``timed_process``). It writes "seconds peak_KiB" to argv[1].
_LAUNCHER = (
    "import os, sys, time\n"
    "started = time.perf_counter()\n"
    "pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "with open(sys.argv[1], 'w') as report:\n"
    "    report.write(f'{time.perf_counter() - started} {usage.ru_maxrss}')\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def peak_rss_mib() -> float:
    """This process's peak resident memory (MiB): VmHWM, or ru_maxrss where there is no /proc."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_process(command: list[str], env: dict, cwd: Path = REPO) -> tuple[float, int, str]:
    """Run ``command`` to its end: its wall time (s, from start to exit), its peak RSS (KiB, its
    own: see ``_LAUNCHER``) and its stdout. A failure exits with the end of its stderr."""
    with tempfile.TemporaryFile() as output, tempfile.TemporaryFile() as errors, \
            tempfile.NamedTemporaryFile("r") as report:  # fmt: skip
        launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, report.name]
        done = subprocess.run([*launcher, *command], env=env, cwd=cwd, stdout=output, stderr=errors,
                              check=False)  # fmt: skip
        if done.returncode != 0:
            errors.seek(0)
            tail = errors.read()[-3000:].decode("utf-8", "replace")
            raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{tail}")
        seconds, peak_kib = report.read().split()
        output.seek(0)
        return float(seconds), int(peak_kib), output.read().decode("utf-8", "replace")


def elmo_command() -> list[str]:
    """The ``elmo`` console script next to this Python (not a shell shim in front of it)."""
    script = Path(sys.executable).parent / "elmo"
    return [str(script)] if script.exists() else [sys.executable, "-m", "elmo.cli"]


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
        env = without_elmo_settings(env)  # the older tree makes its own, as it would alone
    return env


def without_elmo_settings(env: dict) -> dict:
    """``env`` less the settings `import elmo` added to this process's environment (not the
    user's): elmo/openmp.py's spin count, elmo/hugepages.py's huge pages."""
    from elmo import hugepages, openmp

    added = {"GOMP_SPINCOUNT": openmp.added, hugepages.SETTING: hugepages.added}
    return {name: value for name, value in env.items() if not added.get(name)}


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
        "| path | shape | batch | cache | LSTM | sentences | tokens | tokens/s | sentences/s "
        "| peak RSS (MiB) | MFLOP/token | GFLOP/s | of peak | hit rate | tokens/s past start "
        "| of peak past start |\n"
        "| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | ---: |"
    )


def _markdown_row(row: dict) -> str:
    hit_rate = row["cache_hit_rate"]
    past_start, past_fraction = row.get("past_start_tokens_per_s"), row.get("past_start_fraction_of_peak")
    return (
        f"| {row['path']} | {row['shape']} | {row['batch_size']} | {row['cache']} | {row['mode']} | "
        f"{row['sentences']} | {row['tokens']} | {row['tokens_per_s']:.0f} | "
        f"{row['sentences_per_s']:.1f} | {row['peak_rss_mib']:.0f} | {row['mflops_per_token']:.1f} | "
        f"{row['achieved_gflops']:.1f} | {100 * row['fraction_of_peak']:.0f}% | "
        f"{'-' if hit_rate is None else f'{100 * hit_rate:.0f}%'} | "
        f"{'-' if past_start is None else f'{past_start:.0f}'} | "
        f"{'-' if past_fraction is None else f'{100 * past_fraction:.0f}%'} |"
    )


if __name__ == "__main__":
    main()
