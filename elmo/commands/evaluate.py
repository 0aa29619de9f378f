"""``elmo eval``: exact perplexity of a trained biLM on a text file (one sentence per line).

Reports progress on stderr (a bar on a terminal, else log lines) and ends with one JSON line on
stdout:
``{"forward_ppl": .., "backward_ppl": .., "ppl": .., "tokens": .., "word_ppl": .., "words": ..}``
(``ppl`` is the geometric mean of the two directions, per unit; ``tokens`` counts every unit
(word or piece) and ``</S>`` of every sentence; ``word_ppl`` is per whitespace word, comparable
across tokenizations; docs/perplexity.md). A sentencepiece model reads raw text.
"""

from __future__ import annotations

import argparse
import json

from elmo.commands import options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input_file", help="text file, one sentence per line (tokenized for a "
                        "words model, raw for a sentencepiece one)")
    options.add_model_arguments(parser, needs_softmax=True)
    options.add_batch_size_argument(parser, default=32, unit="streams")
    parser.add_argument("--unroll-steps", type=int, default=20, help="tokens per window (default 20)")
    options.add_device_argument(parser)
    options.add_kernel_argument(parser)


def run(args: argparse.Namespace) -> None:
    from elmo.commands.inputs import read_sentence_lines
    from elmo.pretrained import load_tokenizer, load_vocabulary
    from elmo.training.evaluate import evaluate_perplexity

    options.check_arguments(args)
    if args.unroll_steps <= 0:
        raise ValueError(f"--unroll-steps must be > 0, got {args.unroll_steps}")
    lines = read_sentence_lines(args.input_file, allow_blank=True)  # checks UTF-8, emptiness
    vocab = load_vocabulary(args.model)
    if vocab is None:
        raise ValueError(f"{args.model}: no vocab.txt; perplexity needs a model trained with a softmax")
    bilm = options.load_model(args)
    if bilm.softmax is None:
        raise ValueError(f"{args.model} has no softmax; perplexity needs a model trained with one")
    result = evaluate_perplexity(
        bilm, lambda: lines, vocab, args.batch_size, args.unroll_steps, progress=True,
        tokenizer=load_tokenizer(args.model),
    )
    print(json.dumps(result.as_dict()))
