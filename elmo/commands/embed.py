"""``elmo embed``: ELMo vectors of every line of a file, written as HDF5 (``allennlp elmo`` layout).

Each input line is one sentence: whitespace-tokenized for a words model, raw text for a
sentencepiece one. The output holds one dataset per line, keyed by the line's index as a string:
``(L, n, 2D)`` with ``--all``, ``(n, 2D)`` with ``--top`` or ``--average``, plus
``sentence_to_index`` (a JSON string mapping each sentence to its key). ``n`` counts the line's
whitespace words (a sentencepiece model's word vectors are pooled from its pieces, ``--pooling``)
or, with ``--pieces``, its pieces.
Batches are consecutive lines in file order, as in ``allennlp elmo``, so ``--stateful`` with the
same ``--batch-size`` reproduces the reference tools' outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import h5py
import numpy as np

from elmo.commands.inputs import read_sentence_lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input_file", help="text file, one sentence per line (raw text for a "
                        "sentencepiece model)")
    parser.add_argument("output_file", help="HDF5 file to write")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--all", dest="output", action="store_const", const="all",
                      help="all layers: (L, n, 2D) per sentence")
    what.add_argument("--top", dest="output", action="store_const", const="top",
                      help="the top LSTM layer: (n, 2D)")
    what.add_argument("--average", dest="output", action="store_const", const="average",
                      help="the average of all layers: (n, 2D)")
    parser.add_argument("--model", help="our pretrained directory (or one with options.json + weights.hdf5)")
    parser.add_argument("--options-file", help="published-format options.json")
    parser.add_argument("--weight-file", help="published-format weights.hdf5")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per batch (default 64)")
    parser.add_argument("--stateful", action="store_true",
                        help="carry each batch row's LSTM state into the next batch (reference behaviour)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--pieces", action="store_true",
                        help="sentencepiece models: one vector per piece instead of per word")
    parser.add_argument("--fast", action="store_true",
                        help="the fast LSTM recurrence: faster, equal up to float rounding but not "
                        "bit for bit (README, Exactness)")
    parser.add_argument("--cache-size", type=int, default=50_000,
                        help="token vectors kept so the character CNN runs once per word type "
                        "(exact; 0 = off; default 50000)")
    parser.add_argument("--pooling", choices=["first", "last", "mean"],
                        help="sentencepiece models: a word's vector from its pieces' "
                        "(default: the model's setting)")


def run(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from elmo.embedder import ElmoEmbedder
    from elmo.pretrained import load_bilm, load_tokenizer

    if args.model is None and (args.options_file is None or args.weight_file is None):
        raise ValueError("give --model DIR, or both --options-file and --weight-file")
    if args.batch_size <= 0:
        raise ValueError(f"--batch-size must be > 0, got {args.batch_size}")
    if args.cache_size < 0:
        raise ValueError(f"--cache-size must be >= 0, got {args.cache_size}")
    output = Path(args.output_file)
    if not output.parent.is_dir():
        raise ValueError(f"{output}: the output directory does not exist")
    sentences = read_sentence_lines(args.input_file)
    bilm = load_bilm(args.model, args.options_file, args.weight_file, device=resolve_device(args.device))
    tokenizer = load_tokenizer(args.model) if args.model is not None else None
    embedder = ElmoEmbedder(bilm, batch_size=args.batch_size, stateful=args.stateful,
                            tokenizer=tokenizer, units="pieces" if args.pieces else "words",
                            pooling=args.pooling, cache_size=args.cache_size,
                            fast=args.fast)  # fmt: skip
    partial = output.with_name(f".{output.name}.partial-{os.getpid()}")
    try:
        with h5py.File(partial, "w") as fout, tqdm(
            total=len(sentences), unit="sent", desc="embedding", file=sys.stderr
        ) as bar:
            sentence_to_index = {}
            for start in range(0, len(sentences), args.batch_size):
                batch = sentences[start : start + args.batch_size]
                embedded = embedder.embed_batch(batch)
                layers = embedded.layers.cpu().numpy()  # (L, B, T, 2D)
                lengths = embedded.mask.sum(dim=1).tolist()  # (B,) words, or pieces with --pieces
                for row, sentence in enumerate(batch):
                    key = str(start + row)
                    vectors = _select(layers[:, row, : lengths[row]], args.output)
                    fout.create_dataset(key, vectors.shape, dtype="float32", data=vectors)
                    sentence_to_index[sentence] = key  # a repeated sentence maps to its last line
                bar.update(len(batch))
            index = fout.create_dataset("sentence_to_index", (1,), dtype=h5py.string_dtype())
            index[0] = json.dumps(sentence_to_index)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)


def _select(layers: np.ndarray, output: str) -> np.ndarray:
    """(L, n, 2D) -> the requested array, as ``allennlp elmo`` computes it."""
    if output == "all":
        return layers
    if output == "top":
        return layers[-1]
    return np.average(layers, axis=0)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device
