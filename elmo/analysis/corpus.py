"""A corpus to look words up in, and the contextual vectors of its tokens.

A corpus is a UTF-8 text file with one sentence per line, tokens separated by whitespace (the
format of ``elmo embed`` and of WikiText). Blank lines are skipped; every other line is a sentence
and keeps its 1-based line number, so results can point back into the file.

``layer`` picks which vectors to compare, for every function of ``elmo.analysis``: a layer choice
of ``elmo.layer_choice`` that gives one vector per token, so an index 0..L-1 (0 is the
context-independent character layer), ``"top"``, ``"average"``, or a sequence of L weights (a
fixed scalar mix); not ``"all"``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from elmo.embedder import ElmoEmbedder
from elmo.layer_choice import LayerChoice, check_choice, select


class Corpus(NamedTuple):
    path: Path
    sentences: list[list[str]]  # the tokens of every non-blank line
    line_numbers: list[int]  # the 1-based line number of each sentence


def read_corpus(path: str | os.PathLike) -> Corpus:
    """Read a corpus file (see the module docstring).

    Raises:
        FileNotFoundError: no such file.
        ValueError: invalid UTF-8 (naming the line), or no sentence at all.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus {path}: no such file")
    sentences, line_numbers = [], []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                tokens = raw.decode("utf-8").split()
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"corpus {path}:{number}: invalid UTF-8 ({error.reason})"
                ) from None
            if tokens:
                sentences.append(tokens)
                line_numbers.append(number)
    if not sentences:
        raise ValueError(f"corpus {path} is empty (expected one sentence per line)")
    return Corpus(path, sentences, line_numbers)


def check_layer(layer: LayerChoice, num_layers: int) -> LayerChoice:
    """``layer`` in its canonical form (weights as a tuple), checked against ``num_layers``:
    every choice of ``elmo.layer_choice`` that gives one vector per token, indices 0..L-1."""
    return check_choice(layer, num_layers, allow_all=False, allow_negative=False)


def contextual_vectors(
    embedder: ElmoEmbedder,
    sentences: Sequence[Sequence[str]],
    layer: LayerChoice,
    progress: bool = False,
) -> list[np.ndarray]:
    """The (n, 2D) float32 vectors of every sentence's n tokens, each sentence in its own context.

    The embedder's batching decides nothing but float rounding: stateless embedders give each
    sentence's vectors as if it were alone. ``progress`` shows a bar over batches (stderr).
    """
    layer = check_layer(layer, embedder.num_layers)
    if isinstance(layer, tuple):  # a mix: weighted here, in numpy, as it always has been
        all_layers = embedder.embed_sentences(
            list(sentences), output="all", numpy=True, progress=progress
        )
        vectors = [select(layers, layer) for layers in all_layers]
    else:
        vectors = embedder.embed_sentences(
            list(sentences), output=layer, numpy=True, progress=progress
        )
    return [v.astype(np.float32, copy=False) for v in vectors]


def context_window(tokens: Sequence[str], position: int, width: int = 8) -> str:
    """Up to ``width`` tokens either side of ``tokens[position]``, which is shown as ``[word]``."""
    start, end = max(0, position - width), min(len(tokens), position + width + 1)
    words = [f"[{t}]" if i == position else t for i, t in enumerate(tokens[start:end], start)]
    return ("... " if start > 0 else "") + " ".join(words) + (" ..." if end < len(tokens) else "")
