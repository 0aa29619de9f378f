"""How far a non-exact recurrence kernel moves the vectors from the exact kernel's, on real text.

Embeds the first N sentences of WikiText-2 valid (``bench_embed.load_sentences``) with the exact
kernel and with each kernel named, in one process and the same batches, and prints per kernel
and layer: the largest absolute difference, the relative error over all tokens
(``||other - exact|| / ||exact||``, Frobenius), and the cosine of each token's two vectors
(smallest, 0.1th percentile, median). Layer 0 is the token encoder's (no recurrence: 0 for
every kernel).

    python scripts/kernel_accuracy.py /tmp/model --kernels fused,bf16 --sentences 500
    python scripts/kernel_accuracy.py outputs/quickstart/model --batch-size 64 --threads 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from bench_embed import TEXT, load_sentences


def compare(exact: list[torch.Tensor], other: list[torch.Tensor]) -> list[dict]:
    """Per layer, the statistics of the module docstring; each list: one (L, n, 2D) per sentence."""
    rows = []
    for layer in range(exact[0].shape[0]):
        expected = torch.cat([vectors[layer] for vectors in exact]).double()  # (tokens, 2D)
        actual = torch.cat([vectors[layer] for vectors in other]).double()
        cosine = torch.nn.functional.cosine_similarity(actual, expected, dim=-1)  # (tokens,)
        rows.append({
            "layer": layer,
            "max_abs": (actual - expected).abs().max().item(),
            "relative": (torch.linalg.norm(actual - expected) / torch.linalg.norm(expected)).item(),
            "cos_min": cosine.min().item(),
            "cos_p001": torch.quantile(cosine, 0.001).item(),
            "cos_median": cosine.median().item(),
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a model directory: ours, or options.json + weights.hdf5")
    parser.add_argument("--kernels", default="fused,bf16", help="the kernels to compare with exact")
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--text", type=Path, default=TEXT)
    args = parser.parse_args()

    from elmo import ElmoEmbedder
    from elmo.pretrained import load_bilm

    torch.set_num_threads(args.threads)
    sentences = load_sentences(args.text, args.sentences)
    bilm = load_bilm(args.model)
    embedder = ElmoEmbedder(bilm, batch_size=args.batch_size, kernel="exact")
    exact = embedder.embed_sentences(sentences, output="all")
    tokens = sum(map(len, sentences))
    print(f"{args.model}: {len(sentences)} sentences ({tokens:,} tokens), batch {args.batch_size}, "
          f"{args.threads} threads\n")  # fmt: skip
    print("| kernel | layer | max abs difference | relative error | cosine: smallest | 0.1th "
          "percentile | median |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |")  # fmt: skip
    for kernel in args.kernels.split(","):
        bilm.kernel = kernel
        for row in compare(exact, embedder.embed_sentences(sentences, output="all")):
            print(f"| {kernel} | {row['layer']} | {row['max_abs']:.2e} | {row['relative']:.2e} | "
                  f"{row['cos_min']:.6f} | {row['cos_p001']:.6f} | {row['cos_median']:.6f} |")  # fmt: skip


if __name__ == "__main__":
    main()
