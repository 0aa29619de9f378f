"""``elmo neighbours``: the corpus occurrences nearest to a word in context, by cosine.

    elmo neighbours --model DIR --corpus FILE "the [bank] of the river" --layer top --top-k 10

The corpus has one sentence per line. Its index (a vector for every token occurrence) is built
once, with a progress bar, and cached next to the corpus as FILE.elmo-index-<key>.npz, or in
--cache-dir; the key changes when the corpus, the model weights or the layer change (or the
kernel, to one that is not bit-exact).
"""

from __future__ import annotations

import argparse

from elmo.commands import options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "query", help='a sentence with one word in brackets: "the [bank] of the river"'
    )
    options.add_model_arguments(parser)
    parser.add_argument("--corpus", required=True, help="text file, one sentence per line")
    options.add_layer_argument(parser)
    parser.add_argument("--top-k", type=int, default=10, help="how many occurrences (default 10)")
    parser.add_argument(
        "--same-word", action="store_true", help="only occurrences of the marked word itself"
    )
    parser.add_argument("--cache-dir", help="where to keep the index (default: next to the corpus)")
    parser.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the index cache"
    )
    parser.add_argument(
        "--width", type=int, default=8, help="context words shown each side (default 8)"
    )
    options.add_device_argument(parser)
    options.add_kernel_argument(parser)


def run(args: argparse.Namespace) -> None:
    from elmo.analysis.index import build_index
    from elmo.analysis.neighbours import find_neighbours
    from elmo.analysis.query import parse_marked_query
    from elmo.commands.table import print_table
    from elmo.layer_choice import choice_name, parse_choice
    from elmo.pretrained import require_word_tokenizer

    query = parse_marked_query(args.query)  # a bad query fails before the model is loaded
    layer = parse_choice(args.layer)
    if args.top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {args.top_k}")
    require_word_tokenizer(args.model, "elmo neighbours")
    bilm = options.load_model(args)
    index = build_index(
        bilm,
        args.corpus,
        layer,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        progress=True,
    )
    neighbours = find_neighbours(bilm, index, query, top_k=args.top_k, same_word=args.same_word)
    print(
        f"query: {query}  (layer {choice_name(index.layer)}; {len(index)} occurrences in "
        f"{index.corpus.path})"
    )
    rows = [
        (str(i), f"{n.similarity:.3f}", n.word, str(n.line), _context(n, args.width))
        for i, n in enumerate(neighbours, start=1)
    ]
    print_table(["rank", "cosine", "word", "line", "context"], rows, right=(0, 1, 3))


def _context(neighbour, width: int) -> str:
    """The occurrence in its window, every token elided to the table's column width."""
    from elmo.analysis.corpus import context_window
    from elmo.commands.table import elide

    return context_window([elide(t) for t in neighbour.tokens], neighbour.position, width)
