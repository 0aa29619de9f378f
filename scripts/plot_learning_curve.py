"""Plot a run's learning curve (training loss as perplexity, validation perplexity) to a PNG.

    python scripts/plot_learning_curve.py outputs/wikitext2_cpu_1h/metrics.json docs/learning_curve.png
"""

import argparse
import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics", help="metrics.json written by elmo-train")
    parser.add_argument("output", help="PNG to write")
    parser.add_argument("--title", default="ELMo biLM on WikiText-2")
    args = parser.parse_args()
    with open(args.metrics, encoding="utf-8") as handle:
        history = json.load(handle)["history"]
    train = [(h["step"], math.exp(h["loss"])) for h in history if "loss" in h]
    valid = [(h["step"], h["valid_ppl"]) for h in history if "valid_ppl" in h]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    ax.plot(*zip(*train), label="training (batch, both directions)", alpha=0.6, linewidth=1)
    if valid:
        ax.plot(*zip(*valid), "o-", label="validation (forward/backward geometric mean)")
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("perplexity")
    ax.set_title(args.title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
