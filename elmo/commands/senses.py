"""``elmo senses``: every occurrence of a word, embedded in context, clustered and plotted.

    elmo senses --model DIR --corpus FILE --word bank --out bank.png [--k 3] [--csv bank.csv]

The occurrences' vectors (unit length) are clustered with k-means (--k, or the k in 2..6 with
the best silhouette) and projected to 2-D by PCA. Writes a PNG scatter plot coloured by cluster
(needs matplotlib: pip install 'elmo[plot]') and, with --csv, one row per occurrence:
sentence (the word marked [word]), cluster, x, y, line, position.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from elmo.commands import options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_model_arguments(parser)
    parser.add_argument("--corpus", required=True, help="text file, one sentence per line")
    parser.add_argument("--word", required=True, help="the word to look at (exact, case-sensitive)")
    parser.add_argument("--out", required=True, help="the PNG file to write")
    parser.add_argument("--csv", help="also write the occurrences as CSV here")
    parser.add_argument(
        "--k", type=int, help="number of clusters (default: best silhouette in 2..6)"
    )
    options.add_layer_argument(parser)
    parser.add_argument(
        "--max-occurrences",
        type=int,
        default=1000,
        help="use at most the first N occurrences (default 1000; 0 = all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="k-means seed (default 0)")
    options.add_device_argument(parser)
    options.add_kernel_argument(parser)


def run(args: argparse.Namespace) -> None:
    from elmo.analysis.corpus import context_window
    from elmo.analysis.senses import find_senses, plot_senses, write_senses_csv
    from elmo.commands.table import elide, print_table
    from elmo.layer_choice import choice_name, parse_choice
    from elmo.pretrained import require_word_tokenizer

    layer = parse_choice(args.layer)
    for path in [args.out, args.csv]:
        if path is not None and not Path(path).parent.is_dir():
            raise ValueError(f"{path}: the output directory does not exist")
    if args.max_occurrences < 0:
        raise ValueError(f"--max-occurrences must be >= 0, got {args.max_occurrences}")
    try:
        import matplotlib  # noqa: F401  (fail before the work, not after)
    except ImportError:
        raise ValueError("the plot needs matplotlib: pip install 'elmo[plot]'") from None
    require_word_tokenizer(args.model, "elmo senses")
    bilm = options.load_model(args)
    senses = find_senses(
        bilm,
        args.corpus,
        args.word,
        layer=layer,
        k=args.k,
        max_occurrences=args.max_occurrences or None,
        seed=args.seed,
        progress=True,
    )
    shown = len(senses.occurrences)
    capped = (
        ""
        if shown == senses.total_occurrences
        else f" (the first {shown} of {senses.total_occurrences})"
    )
    layer = choice_name(senses.layer)
    print(f"{args.word!r}: {shown} occurrences{capped} in {senses.corpus}, layer {layer}")
    if senses.silhouettes:
        scores = ", ".join(f"k={k}: {s:.3f}" for k, s in senses.silhouettes.items())
        print(f"silhouette {scores} -> k={senses.k}")
    ratio = senses.explained_variance_ratio
    print(f"PCA: the two axes hold {100 * ratio[0]:.1f}% and {100 * ratio[1]:.1f}% of the variance")
    rows = []
    for cluster, central in enumerate(senses.representatives):
        occurrence = senses.occurrences[central]
        size = int((senses.labels == cluster).sum())
        tokens = [elide(token) for token in occurrence.tokens]  # one huge token: one long line
        rows.append((str(cluster), str(size), context_window(tokens, occurrence.position, 6)))
    print_table(["cluster", "size", "most central occurrence"], rows, right=(0, 1))
    print(f"wrote {plot_senses(senses, args.out)}")
    if args.csv:
        print(f"wrote {write_senses_csv(senses, args.csv)}")
