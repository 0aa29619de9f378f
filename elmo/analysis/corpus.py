"""A corpus to look words up in, and the contextual vectors of its tokens.

A corpus is a UTF-8 text file with one sentence per line, tokens separated by whitespace (the
format of ``elmo embed`` and of WikiText). Blank lines are skipped; every other line is a sentence
and keeps its 1-based line number, so results can point back into the file.

``layer`` picks which vectors to compare, for every function of ``elmo.analysis``:

* an int k: ELMo layer k (0 is the context-independent character layer);
* ``"top"``: the last biLSTM layer (the best for word senses, Peters et al., 2018, Sec. 5.3);
* ``"average"``: the mean of all layers;
* a sequence of L weights: their normalised weighted sum of the layers (a fixed scalar mix).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from elmo.embedder import ElmoEmbedder

Layer = int | str | tuple[float, ...]


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


def parse_layer(text: str) -> Layer:
    """A command-line layer choice: ``"2"``, ``"top"``, ``"average"`` or weights ``"0,1,1"``."""
    text = text.strip()
    if text in ("top", "average"):
        return text
    try:
        if "," in text:
            return tuple(float(w) for w in text.split(","))
        return int(text)
    except ValueError:
        raise ValueError(
            f"layer must be an index, 'top', 'average' or comma-separated weights, got {text!r}"
        ) from None


def check_layer(layer: Layer, num_layers: int) -> Layer:
    """``layer`` in its canonical form (weights as a tuple), checked against ``num_layers``."""
    if isinstance(layer, str):
        if layer not in ("top", "average"):
            raise ValueError(f"layer must be an index, 'top', 'average' or weights, got {layer!r}")
        return layer
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if not 0 <= layer < num_layers:
            raise ValueError(
                f"layer {layer} is out of range: the model has layers 0..{num_layers - 1}"
            )
        return int(layer)
    weights = tuple(float(w) for w in layer)
    if len(weights) != num_layers or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(
            f"layer weights must be {num_layers} non-negative numbers, not all zero, got {weights}"
        )
    return weights


def layer_name(layer: Layer) -> str:
    """A short text form of ``layer`` (for cache keys and messages)."""
    if isinstance(layer, tuple):
        return "mix(" + ",".join(f"{w:g}" for w in layer) + ")"
    return str(layer)


def select_layer(layers: np.ndarray, layer: Layer) -> np.ndarray:
    """(L, n, 2D) all layers of a sentence -> (n, 2D) the vectors ``layer`` asks for."""
    if layer == "top":
        return layers[-1]
    if layer == "average":
        return layers.mean(axis=0)
    if isinstance(layer, tuple):
        weights = np.asarray(layer, dtype=layers.dtype) / sum(layer)  # (L,)
        return np.tensordot(weights, layers, axes=1)  # (L,) . (L, n, 2D) -> (n, 2D)
    return layers[layer]


def contextual_vectors(
    embedder: ElmoEmbedder, sentences: Sequence[Sequence[str]], layer: Layer, progress: bool = False
) -> list[np.ndarray]:
    """The (n, 2D) float32 vectors of every sentence's n tokens, each sentence in its own context.

    The embedder's batching decides nothing but float rounding: stateless embedders give each
    sentence's vectors as if it were alone. ``progress`` shows a bar over batches (stderr).
    """
    layer = check_layer(layer, embedder.num_layers)
    if isinstance(layer, tuple):  # a mix: the embedder gives every layer, weighted here
        all_layers = embedder.embed_sentences(
            list(sentences), output="all", numpy=True, progress=progress
        )
        vectors = [select_layer(layers, layer) for layers in all_layers]
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
