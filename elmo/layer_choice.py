"""Which ELMo layer(s) to read: the one layer-choice type, parsed, checked, named and applied here.

A layer choice is one of

* an int k: layer k (0 is the context-independent character layer; -1 the top one, where the
  caller allows counting from the top);
* ``"top"``: the last biLSTM layer (the best for word senses, Peters et al., 2018, Sec. 5.3);
* ``"average"``: the mean of all L layers;
* ``"all"``: every layer, (L, n, 2D), where the caller can use them all (``ElmoEmbedder``);
* a tuple of L non-negative weights, not all zero: their normalised weighted sum of the layers
  (a fixed scalar mix, ``w / sum(w)``).

The probes of ``elmo.tasks`` report a row per layer and one for a *learned* scalar mix (Eq. 1 of
the paper), which is trained, not chosen; ``representation_names`` names those rows.

``select`` works on torch tensors and on numpy arrays, each with its own arithmetic: the two
libraries' means of float32 layers can differ in the last bit (e.g. for L = 5), and each caller
keeps the bits it has always produced (``ElmoEmbedder`` averages in torch, ``elmo embed`` in
numpy, as ``allennlp elmo`` does).
"""

from __future__ import annotations

import math
from numbers import Real
from typing import TypeVar

import numpy as np
import torch

LayerChoice = int | str | tuple[float, ...]
NAMED_CHOICES = ("all", "top", "average")
LEARNED_MIX = "mix"  # the probe row of a learned scalar mix (elmo.tasks)

Layers = TypeVar("Layers", torch.Tensor, np.ndarray)


def parse_choice(text: str) -> LayerChoice:
    """A command-line layer choice: ``"2"``, ``"top"``, ``"average"`` or weights ``"0,1,1"``.

    Only the syntax is checked here; ``check_choice`` checks the value against a model.
    """
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


def check_choice(
    choice: LayerChoice,
    num_layers: int,
    *,
    allow_all: bool = True,
    allow_negative: bool = True,
    name: str = "layer",
) -> LayerChoice:
    """``choice`` in its canonical form (an int, a name, or weights as a tuple of floats).

    Args:
        choice: a layer choice (see the module docstring); weights may be any sequence.
        num_layers: L, the layers of the model.
        allow_all: accept ``"all"`` (callers that need one vector per token say no).
        allow_negative: accept indices counted from the top, -L..-1.
        name: what the caller calls the argument, for the error messages.

    Raises:
        TypeError: ``choice`` (or a weight) is of the wrong type.
        ValueError: an unknown name, an index out of range, or bad weights.
    """
    names = NAMED_CHOICES if allow_all else tuple(n for n in NAMED_CHOICES if n != "all")
    expected = f"one of {names}, a layer index or {num_layers} weights"
    if isinstance(choice, str):
        if choice not in names:
            raise ValueError(f"{name} must be {expected}, got {choice!r}")
        return choice
    if isinstance(choice, bool) or choice is None:
        raise TypeError(f"{name} must be {expected}, got {choice!r}")
    if isinstance(choice, (int, np.integer)):
        lowest = -num_layers if allow_negative else 0
        if not lowest <= choice < num_layers:
            from_top = f" (or {-num_layers}..-1 from the top)" if allow_negative else ""
            raise ValueError(
                f"{name} {choice} is out of range: the model has layers 0..{num_layers - 1}"
                f"{from_top}"
            )
        return int(choice)
    if not isinstance(choice, (tuple, list, np.ndarray)):
        raise TypeError(f"{name} must be {expected}, got {choice!r}")
    return _check_weights(choice, num_layers, name)


def _check_weights(weights, num_layers: int, name: str) -> tuple[float, ...]:
    """Mix weights as a tuple of floats: L of them, finite, non-negative, not all zero."""
    if not all(isinstance(w, Real) and not isinstance(w, bool) for w in weights):
        raise TypeError(f"{name} weights must be numbers, got {weights!r}")
    weights = tuple(float(w) for w in weights)
    valid = all(math.isfinite(w) and w >= 0 for w in weights) and sum(weights) > 0
    if len(weights) != num_layers or not valid:
        raise ValueError(
            f"{name} weights must be {num_layers} non-negative numbers, not all zero, got {weights}"
        )
    return weights


def choice_name(choice: LayerChoice) -> str:
    """A short text form of a checked ``choice``: ``2``, ``top``, ``mix(0,1,1)`` (cache keys,
    messages)."""
    if isinstance(choice, tuple):
        return "mix(" + ",".join(f"{w:g}" for w in choice) + ")"
    return str(choice)


def select(layers: Layers, choice: LayerChoice) -> Layers:
    """(L, n, 2D) all layers of a sentence -> (n, 2D) the vectors ``choice`` asks for
    ((L, n, 2D) itself for ``"all"``).

    ``layers`` is a torch tensor or a numpy array, and the result is of the same kind, computed
    with that library's arithmetic (see the module docstring). ``choice`` is a checked choice
    (``check_choice``).
    """
    if isinstance(choice, str):
        if choice == "all":
            return layers
        if choice == "top":
            return layers[-1]
        if choice == "average":
            if isinstance(layers, torch.Tensor):
                return layers.mean(dim=0)
            return np.average(layers, axis=0)
        raise ValueError(
            f"layer must be one of {NAMED_CHOICES}, an index or weights, got {choice!r}"
        )
    if isinstance(choice, tuple):
        return _mix(layers, choice)
    return layers[choice]


def _mix(layers: Layers, weights: tuple[float, ...]) -> Layers:
    """The normalised weighted sum of the layers: (L, n, 2D) -> (n, 2D)."""
    if isinstance(layers, torch.Tensor):
        normalised = torch.tensor(weights, dtype=layers.dtype, device=layers.device) / sum(weights)
        return torch.tensordot(normalised, layers, dims=1)  # (L,) . (L, n, 2D) -> (n, 2D)
    normalised = np.asarray(weights, dtype=layers.dtype) / sum(weights)  # (L,)
    return np.tensordot(normalised, layers, axes=1)  # (L,) . (L, n, 2D) -> (n, 2D)


def representation_names(num_layers: int) -> list[str]:
    """``layer0 .. layer{L-1}`` and ``mix`` (a learned scalar mix): the rows every probe table
    reports."""
    return [f"layer{choice_name(k)}" for k in range(num_layers)] + [LEARNED_MIX]


def representation_layer(representation: str, num_layers: int) -> int | None:
    """The layer index a probe row reads (``layer2`` -> 2), None for ``mix``, the learned mix."""
    if representation == LEARNED_MIX:
        return None
    digits = representation[len("layer") :]
    if representation.startswith("layer") and digits.isdecimal() and int(digits) < num_layers:
        return int(digits)
    raise ValueError(
        f"representation must be {LEARNED_MIX} or layer0..layer{num_layers - 1}, "
        f"got {representation!r}"
    )
