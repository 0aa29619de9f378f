"""Learning curves of training recipes: valid perplexity after 300, 1,000, 4,000 steps, and time.

Each point is its own run, `elmo-train model=M data=wikitext2 trainer.max_steps=S` plus the
recipe's overrides (its schedule decays over its own S steps, as a user's run would), in a fresh
process, one after the other. The point is the run's final whole-file validation perplexity
(metrics.json) and its wall time. Results are appended to a JSON file as they come, so an
interrupted sweep continues where it stopped; `--plot` draws perplexity against steps and against
wall-clock time, one line per (model, recipe).

    python scripts/learning_curves.py --models tiny --steps 300,1000,4000 \
        --recipes bilm_tf,adam_2e-3,adam_5e-3,adam_1e-2 --results docs/learning_curves.json
    python scripts/learning_curves.py --results docs/learning_curves.json --plot docs/learning_curves.png

Recipes are named sets of overrides (RECIPES below); `optim=...` picks a file of configs/optim/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

# Runs argv[1:] quietly and prints its wall seconds (inside flock, so the wait is not counted).
TIMER = (
    "import subprocess, sys, time; start = time.perf_counter(); subprocess.run(sys.argv[1:], "
    "check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
    "print(time.perf_counter() - start)"
)
ZERO, UNIGRAM = "model.softmax.init_bias=zero", "model.softmax.init_bias=unigram"
LINEAR, B64 = "trainer.schedule=linear", "data.batch_size=64"


def adam(lr: float, bias: str, *more: str) -> list[str]:
    """AdamW (100 warm-up steps, cosine decay to 0 at max_steps) at peak ``lr``, biases ``bias``."""
    return ["optim=adam", f"trainer.lr={lr}", bias, *more]


RECIPES: dict[str, list[str]] = {
    # The paper's recipe (bilm-tf): Adagrad, lr 0.2, initial accumulator 1.0, constant rate,
    # softmax biases from zero.
    "bilm_tf": ["optim=bilm_tf"],
    # AdamW by peak learning rate, softmax biases from zero (as the first sweep ran, before
    # optim=adam started them at unigram).
    **{f"adam_{name}": adam(lr, ZERO) for name, lr in
       [("2e-3", 0.002), ("3e-3", 0.003), ("5e-3", 0.005), ("1e-2", 0.01), ("2e-2", 0.02)]},
    # The same with a linear decay instead of cosine.
    "adam_5e-3_linear": adam(0.005, ZERO, LINEAR),
    "adam_1e-2_linear": adam(0.01, ZERO, LINEAR),
    # The softmax biases start at the log unigram frequencies (model.softmax.init_bias);
    # adam_3e-3_unigram is the default recipe (configs/optim/adam.yaml).
    **{f"adam_{name}_unigram": adam(lr, UNIGRAM) for name, lr in
       [("3e-3", 0.003), ("5e-3", 0.005), ("1e-2", 0.01), ("2e-2", 0.02), ("3e-2", 0.03)]},
    # Twice the streams per step (twice the tokens, and about twice the time, per step).
    "adam_5e-3_b64": adam(0.005, ZERO, B64),
    "adam_1e-2_unigram_b64": adam(0.01, UNIGRAM, B64),
    "adam_2e-2_unigram_b64": adam(0.02, UNIGRAM, B64),
    # A wider LSTM (tiny's 64 cells / 16-dim projection made 128 / 32).
    "adam_1e-2_unigram_wide": adam(0.01, UNIGRAM, "model.lstm.projection_dim=32", "model.lstm.cell_size=128"),
}


def run_point(model: str, recipe: str, steps: int, threads: int, extra: list[str],
              lock: Path | None = None) -> dict:  # fmt: skip
    """Train one run (holding ``lock`` with flock, if given: the wall time counts from when the
    lock is held); -> its valid perplexity, wall seconds and settings."""
    out = Path(tempfile.mkdtemp(prefix=f"lc_{model}_{recipe}_{steps}_"))
    command = [
        "elmo-train", f"model={model}", "data=wikitext2", f"trainer.max_steps={steps}",
        "data.test=null", "export_published=false", "trainer.eval_every=0",
        f"trainer.checkpoint_every={10 * steps}", f"trainer.num_threads={threads}",
        f"trainer.log_every={max(10, steps // 20)}", f"output_dir={out}", *RECIPES[recipe], *extra,
    ]  # fmt: skip
    timed = [sys.executable, "-c", TIMER, *command]
    if lock is not None:
        timed = ["flock", str(lock), *timed]
    seconds = float(subprocess.run(timed, check=True, capture_output=True, text=True).stdout)
    metrics = json.loads((out / "metrics.json").read_text())
    data = yaml.safe_load((out / ".hydra" / "config.yaml").read_text())["data"]
    shutil.rmtree(out, ignore_errors=True)
    return {
        "model": model, "recipe": recipe, "steps": steps, "wall_s": round(seconds, 1),
        "train_s": round(training_seconds(metrics["history"], steps * data["batch_size"] * data["unroll_steps"]), 1), "threads": threads,
        "valid_ppl": metrics["valid"]["ppl"],
        "command": " ".join(part for part in command if not part.startswith("output_dir=")),
    }  # fmt: skip


def training_seconds(history: list[dict], tokens_per_direction: int) -> float:
    """Seconds spent in training steps (validation excluded): the run's tokens (both directions)
    over the last step record's tokens/s, which counts from the run's start."""
    last = [r for r in history if "tokens_per_s" in r][-1]
    return 2 * tokens_per_direction / last["tokens_per_s"]


def sweep(args: argparse.Namespace) -> None:
    results = json.loads(args.results.read_text()) if args.results.is_file() else []
    done = {(r["model"], r["recipe"], r["steps"]) for r in results}
    for model in args.models.split(","):
        for steps in [int(s) for s in args.steps.split(",")]:
            for recipe in args.recipes.split(","):
                if (model, recipe, steps) in done:
                    continue
                point = run_point(model, recipe, steps, args.threads, args.extra, args.lock)
                print(f"{model:6s} {recipe:18s} {steps:5d} steps: valid ppl {point['valid_ppl']:9.1f}"
                      f"  {point['wall_s']:7.1f} s", flush=True)  # fmt: skip
                results.append(point)
                args.results.write_text(json.dumps(results, indent=1) + "\n")


def table(results: list[dict]) -> str:
    """Markdown: one row per (model, recipe), one column per step count (valid ppl, time)."""
    steps = sorted({r["steps"] for r in results})
    lines = ["| model | recipe | " + " | ".join(f"{s} steps" for s in steps) + " |",
             "|---|---|" + "---:|" * len(steps)]  # fmt: skip
    keys = list(dict.fromkeys((r["model"], r["recipe"]) for r in results))
    for model, recipe in keys:
        cells = []
        for s in steps:
            hit = [r for r in results if (r["model"], r["recipe"], r["steps"]) == (model, recipe, s)]
            cells.append(f"{hit[0]['valid_ppl']:.1f} ({hit[0]['wall_s'] / 60:.1f} min)" if hit else "")
        lines.append(f"| {model} | {recipe} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: list[dict], path: Path, unigram: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    figure, (by_steps, by_time) = plt.subplots(1, 2, figsize=(13, 5.6), sharey=True)
    keys = list(dict.fromkeys((r["model"], r["recipe"]) for r in results))
    colors = plt.get_cmap("tab20").colors  # one colour per (model, recipe), up to 20
    for index, (model, recipe) in enumerate(keys):
        points = sorted((r for r in results if (r["model"], r["recipe"]) == (model, recipe)),
                        key=lambda r: r["steps"])  # fmt: skip
        style = "-" if model == "small" else "--"
        threads = sorted({str(p.get("threads", 2)) for p in points})
        label = f"{model}, {recipe} ({'/'.join(threads)} thr)"
        look = {"color": colors[index % len(colors)], "marker": "os^Dv"[index % 5], "label": label}
        by_steps.plot([p["steps"] for p in points], [p["valid_ppl"] for p in points], style, **look)
        by_time.plot([p["wall_s"] / 60 for p in points], [p["valid_ppl"] for p in points], style,
                     **look)  # fmt: skip
    for axes, xlabel in ((by_steps, "optimizer steps (each run decays over its own max_steps)"),
                         (by_time, "wall-clock minutes of the whole run (training + scoring)")):  # fmt: skip
        axes.set_xscale("log")
        axes.set_yscale("log")
        for axis in (axes.xaxis, axes.yaxis):  # plain numbers, and none on the minor ticks
            axis.set_major_locator(LogLocator(subs=(1, 2, 3, 5)))
            axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            axis.set_minor_formatter(NullFormatter())
        axes.set_xlabel(xlabel)
        axes.grid(True, which="both", alpha=0.3)
        if unigram:
            axes.axhline(unigram, color="grey", linestyle=":", label="add-one unigram")
    by_steps.set_ylabel("WikiText-2 valid perplexity (whole file)")
    by_time.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.suptitle("Training recipes on WikiText-2: validation perplexity at the end of each run")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="tiny")
    parser.add_argument("--steps", default="300,1000,4000")
    parser.add_argument("--recipes", default="bilm_tf,adam_2e-3,adam_5e-3,adam_1e-2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--results", type=Path, required=True, help="JSON file: read, extended, written")
    parser.add_argument("--lock", type=Path, help="hold this file's flock during each run")
    parser.add_argument("--plot", type=Path, help="draw the results into this PNG instead of running")
    parser.add_argument("--unigram", type=float, default=None, help="a horizontal line at this ppl")
    parser.add_argument("extra", nargs="*", help="more overrides for every run")
    args = parser.parse_args()
    for recipe in args.recipes.split(","):
        if recipe not in RECIPES:
            parser.error(f"unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    if args.plot:
        results = json.loads(args.results.read_text())
        plot(results, args.plot, args.unigram)
        print(table(results))
        return
    sweep(args)
    print(table(json.loads(args.results.read_text())))


if __name__ == "__main__":
    main()
