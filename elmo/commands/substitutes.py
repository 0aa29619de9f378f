"""``elmo substitutes``: the words that best fit a marked position, from both language models.

    elmo substitutes --model DIR "I live near the [bank] of America" --top-k 10

The forward LM predicts the marked slot from the words on its left, the backward LM from the
words on its right; the combined score is the product of their probabilities, renormalised over
the vocabulary without <S>, </S> and <UNK>. The model must have been trained with a softmax
(our format with vocab.txt).
"""

from __future__ import annotations

import argparse

from elmo.commands import options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "query", help='a sentence with one word in brackets: "the [bank] of the river"'
    )
    options.add_model_arguments(parser, needs_softmax=True)
    parser.add_argument("--top-k", type=int, default=10, help="how many words to show (default 10)")
    parser.add_argument(
        "--exclude", nargs="+", default=[], metavar="WORD",
        help="words never to suggest, e.g. a corpus's unknown-word placeholder: --exclude '<unk>'",
    )  # fmt: skip
    options.add_device_argument(parser)
    options.add_kernel_argument(parser)


def run(args: argparse.Namespace) -> None:
    from elmo.analysis.query import parse_marked_query
    from elmo.analysis.substitutes import find_substitutes
    from elmo.commands.table import print_table
    from elmo.pretrained import load_vocabulary, require_word_tokenizer

    query = parse_marked_query(args.query)  # a bad query fails before the model is loaded
    if args.top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {args.top_k}")
    require_word_tokenizer(args.model, "elmo substitutes")
    bilm = options.load_model(args)
    vocab = load_vocabulary(args.model)
    if bilm.softmax is None or vocab is None:
        raise ValueError(
            f"{args.model} has no softmax and vocab.txt: substitutes need a language model trained "
            "with elmo-train (embedding-only and published models cannot predict words)"
        )
    result = find_substitutes(bilm, vocab, query, top_k=args.top_k, exclude=args.exclude)
    print(f"query: {result.query}")
    rows = [
        (str(i), s.word, f"{s.prob:.4f}", f"{s.forward_prob:.4f}", f"{s.backward_prob:.4f}")
        for i, s in enumerate(result.candidates, start=1)
    ]
    print_table(["rank", "word", "combined", "forward", "backward"], rows, right=(0, 2, 3, 4))
    if result.marked is not None:
        m = result.marked
        print(
            f"the marked word {m.word!r}: rank {result.marked_rank}, combined {m.prob:.4f}, "
            f"forward {m.forward_prob:.4f}, backward {m.backward_prob:.4f}"
        )
    else:
        print(f"the marked word {result.query.word!r} is not in the vocabulary")
