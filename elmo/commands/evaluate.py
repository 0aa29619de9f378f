"""``elmo eval``: exact perplexity of a trained biLM on a text file (one sentence per line).

Prints a progress bar on stderr and ends with one JSON line on stdout:
``{"forward_ppl": .., "backward_ppl": .., "ppl": .., "tokens": .., "word_ppl": .., "words": ..}``
(``ppl`` is the geometric mean of the two directions, per unit; ``tokens`` counts every unit
(word or piece) and ``</S>`` of every sentence; ``word_ppl`` is per whitespace word, comparable
across tokenizations; docs/perplexity.md). A sentencepiece model reads raw text.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input_file", help="text file, one sentence per line (tokenized for a "
                        "words model, raw for a sentencepiece one)")
    parser.add_argument("--model", required=True, help="our pretrained directory (with vocab.txt)")
    parser.add_argument("--batch-size", type=int, default=32, help="streams per batch (default 32)")
    parser.add_argument("--unroll-steps", type=int, default=20, help="tokens per window (default 20)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, ... (default: cuda if available)")


def run(args: argparse.Namespace) -> None:
    from elmo.commands.embed import resolve_device
    from elmo.commands.inputs import read_sentence_lines
    from elmo.pretrained import from_pretrained, load_tokenizer, load_vocabulary
    from elmo.training.evaluate import evaluate_perplexity

    for name in ("batch_size", "unroll_steps"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    lines = read_sentence_lines(args.input_file, allow_blank=True)  # checks UTF-8, emptiness
    vocab = load_vocabulary(args.model)
    if vocab is None:
        raise ValueError(f"{args.model}: no vocab.txt; perplexity needs a model trained with a softmax")
    bilm = from_pretrained(args.model, device=resolve_device(args.device))
    result = evaluate_perplexity(
        bilm, lambda: lines, vocab, args.batch_size, args.unroll_steps, progress=True,
        tokenizer=load_tokenizer(args.model),
    )
    print(json.dumps(result.as_dict()))
