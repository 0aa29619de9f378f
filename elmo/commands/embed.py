"""``elmo embed``: ELMo vectors of every line of a file, written as HDF5 (``allennlp elmo`` layout).

Each input line is one sentence: whitespace-tokenized for a words model, raw text for a
sentencepiece one. The output holds one dataset per line, keyed by the line's index as a string:
``(L, n, 2D)`` with ``--all``, ``(n, 2D)`` with ``--top`` or ``--average``, plus
``sentence_to_index`` (a JSON string mapping each sentence to its key). ``n`` counts the line's
whitespace words (a sentencepiece model's word vectors are pooled from its pieces, ``--pooling``)
or, with ``--pieces``, its pieces.
The order of computation is free, the output's is not. By default (stateless) the command reads
``WINDOW`` batches of lines at a time, embeds them longest first (``ElmoEmbedder.stream_sentences``:
batches of similar lengths run faster) and writes them in file order, so memory holds one window.
With ``--batch-size 1`` a window's lines run side by side as lanes, each line's vectors bit for
bit those of a batch of its own (``ElmoEmbedder``, ``elmo.kernels.lanes``).
With ``--stateful`` each batch row continues the row before it, so batches are consecutive lines
in file order, as in ``allennlp elmo``: with the same ``--batch-size`` it reproduces the reference
tools' outputs.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from elmo.commands import options
from elmo.commands.inputs import read_sentence_lines
from elmo.files import remove_leftover_temps, temp_path
from elmo.layer_choice import select
from elmo.progress import progress

if TYPE_CHECKING:
    import torch

# Batches a stateless run reads, sorts by length and embeds together. On 2,000 WikiText-2
# sentences in batches of 64, windows of 16 leave 987 LSTM steps of the 2,140 of file order (936
# sorted all at once); on the original shape a step of 1-3 rows costs a quarter of one of 64
# (docs/benchmarks.md, GEMMs by row count). A window's vectors wait in memory until written: for
# 1,024 sentences (25,600 words) 75 MiB of --all vectors of the published small shape, 300 MiB of
# the original (a third of that with --top or --average).
WINDOW = 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input_file", help="text file, one sentence per line (raw text for a "
                        "sentencepiece model)")
    parser.add_argument("output_file", help="HDF5 file to write (see --overwrite)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace OUTPUT_FILE if it exists (without it, an existing file is "
                        "an error)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--all", dest="output", action="store_const", const="all",
                      help="all layers: (L, n, 2D) per sentence")
    what.add_argument("--top", dest="output", action="store_const", const="top",
                      help="the top LSTM layer: (n, 2D)")
    what.add_argument("--average", dest="output", action="store_const", const="average",
                      help="the average of all layers: (n, 2D)")
    options.add_model_arguments(parser, published_files=True)
    options.add_batch_size_argument(parser, default=64, unit="sentences")
    parser.add_argument("--stateful", action="store_true",
                        help="carry each batch row's LSTM state into the next batch (reference behaviour)")
    options.add_device_argument(parser)
    parser.add_argument("--pieces", action="store_true",
                        help="sentencepiece models: one vector per piece instead of per word")
    options.add_kernel_argument(parser, fast_alias=True)
    options.add_cache_size_argument(parser)
    parser.add_argument("--pooling", choices=["first", "last", "mean"],
                        help="sentencepiece models: a word's vector from its pieces' "
                        "(default: the model's setting)")


def run(args: argparse.Namespace) -> None:
    from elmo.cli import raise_if_signalled
    from elmo.embedder import ElmoEmbedder
    from elmo.pretrained import load_tokenizer

    options.check_arguments(args)
    output = Path(args.output_file)
    _check_output(output, args.overwrite)
    sentences = read_sentence_lines(args.input_file)
    remove_leftover_temps(output.parent, target=output.name)  # of an earlier, killed embed
    partial = temp_path(output)
    try:
        partial.touch()  # an output folder we cannot write to is found now, not after the work
    except OSError as error:
        raise ValueError(f"{output}: cannot write there ({error.strerror})") from None
    try:
        bilm = options.load_model(args)
        tokenizer = load_tokenizer(args.model) if args.model is not None else None
        embedder = ElmoEmbedder(bilm, batch_size=args.batch_size, stateful=args.stateful,
                                tokenizer=tokenizer, units="pieces" if args.pieces else "words",
                                pooling=args.pooling, cache_size=args.cache_size,
                                kernel=args.kernel)  # fmt: skip
        with h5py.File(partial, "w") as fout, progress(
            total=len(sentences), desc="embedding", unit="sentences"
        ) as bar:
            def on_batch(count: int) -> None:
                raise_if_signalled()  # a SIGINT/SIGTERM whose exception was lost still ends the run
                bar.update(count)

            stream = embedder.stream_sentences(sentences, window=WINDOW, on_batch=on_batch,
                                               keep=functools.partial(_vectors, args.output))  # fmt: skip
            for line, vectors in enumerate(stream):  # in file order
                fout.create_dataset(str(line), vectors.shape, dtype="float32", data=vectors)
            # a repeated sentence maps to its last line
            sentence_to_index = {sentence: str(line) for line, sentence in enumerate(sentences)}
            index = fout.create_dataset("sentence_to_index", (1,), dtype=h5py.string_dtype())
            index[0] = json.dumps(sentence_to_index)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)


def _vectors(choice: str, layers: torch.Tensor) -> np.ndarray:
    """(L, n, 2D), a view of a batch -> a copy of the vectors ``choice`` asks for, in numpy
    arithmetic, as ``allennlp elmo`` computes them."""
    return np.array(select(layers.numpy(), choice))


def _check_output(output: Path, overwrite: bool) -> None:
    """Refuse an output that is a directory, in a folder that does not exist, or (without
    ``--overwrite``) that exists already."""
    if output.is_dir():
        raise ValueError(f"{output}: is a directory (give the HDF5 file to write)")
    if not output.parent.is_dir():
        raise ValueError(f"{output}: the output directory does not exist")
    if output.exists() and not overwrite:
        raise ValueError(f"{output} exists already; pass --overwrite to replace it")

