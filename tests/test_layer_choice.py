"""The layer choice: parsing, checking (with messages naming the bad value), names, and selection
on torch and numpy, each bit for bit as its callers have always computed it."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from elmo.layer_choice import (
    check_choice,
    choice_name,
    parse_choice,
    representation_layer,
    representation_names,
    select,
)


@pytest.fixture
def layers() -> np.ndarray:
    """(L, n, 2D) = (5, 7, 16) float32; L = 5 is where numpy's and torch's means differ."""
    return (np.random.default_rng(0).standard_normal((5, 7, 16)) * 3).astype(np.float32)


@pytest.mark.parametrize(
    "text, choice",
    [("2", 2), (" top ", "top"), ("average", "average"), ("0,1,1", (0.0, 1.0, 1.0)), ("-1", -1)],
)
def test_parse(text, choice):
    assert parse_choice(text) == choice


@pytest.mark.parametrize("text", ["middle", "all", "1.5", "1,", ""])
def test_parse_rejects_what_is_not_a_choice(text):
    with pytest.raises(ValueError, match=f"layer must be an index.*got {text!r}"):
        parse_choice(text)


def test_check_accepts_every_kind_in_canonical_form():
    for name in ("all", "top", "average"):
        assert check_choice(name, 3) == name
    assert check_choice(2, 3) == 2 and check_choice(-3, 3) == -3
    index = check_choice(np.int64(1), 3)
    assert index == 1 and type(index) is int
    assert check_choice([0, 1, 3], 3) == (0.0, 1.0, 3.0)
    assert check_choice(np.array([0.5, 0.5], dtype=np.float32), 2) == (0.5, 0.5)


@pytest.mark.parametrize(
    "choice, kwargs, message",
    [
        ("mix", {}, re.escape("layer must be one of ('all', 'top', 'average'), a layer index")),
        ("all", {"allow_all": False}, re.escape("layer must be one of ('top', 'average'), a")),
        ("middle", {"name": "output"}, "output must be one of .*got 'middle'"),
        (3, {}, r"layer 3 is out of range: the model has layers 0..2 \(or -3..-1 from the top\)"),
        (-4, {}, "layer -4 is out of range"),
        (-1, {"allow_negative": False}, "layer -1 is out of range: the model has layers 0..2$"),
        ((1.0, 1.0), {}, r"3 non-negative numbers, not all zero, got \(1.0, 1.0\)"),
        ((1.0, -1.0, 1.0), {}, "non-negative"),
        ((0, 0, 0), {}, "not all zero"),
        ((float("nan"), 1, 1), {}, "got \\(nan, 1.0, 1.0\\)"),
        ((float("inf"), 1, 1), {}, "non-negative numbers"),
    ],
)
def test_check_rejects_bad_values_naming_them(choice, kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_choice(choice, 3, **kwargs)


@pytest.mark.parametrize("choice", [True, 1.0, None, {"top": 1}, ("1", "2", "3"), (True, 0, 0)])
def test_check_rejects_wrong_types(choice):
    with pytest.raises(TypeError, match="layer"):
        check_choice(choice, 3)


def test_names():
    assert [choice_name(c) for c in (2, -1, "top", "average", "all")] == [
        "2",
        "-1",
        "top",
        "average",
        "all",
    ]
    assert choice_name((0.0, 1.0, 3.0)) == "mix(0,1,3)"
    assert choice_name((0.5, 0.25)) == "mix(0.5,0.25)"


def test_select_on_torch_is_the_embedders_arithmetic(layers):
    tensor = torch.from_numpy(layers)
    assert select(tensor, "all") is tensor
    assert torch.equal(select(tensor, "top"), tensor[-1])
    assert torch.equal(select(tensor, "average"), tensor.mean(dim=0))
    assert torch.equal(select(tensor, 1), tensor[1]) and torch.equal(select(tensor, -2), tensor[3])


def test_select_on_numpy_is_allennlp_elmos_arithmetic(layers):
    assert select(layers, "all") is layers
    assert np.array_equal(select(layers, "top"), layers[-1])
    average = select(layers, "average")
    assert average.dtype == np.float32
    assert np.array_equal(average.view(np.int32), np.average(layers, axis=0).view(np.int32))
    assert np.array_equal(select(layers, 2), layers[2])


def test_a_mix_is_the_normalised_weighted_sum_in_either_library(layers):
    weights = (0.0, 1.0, 0.0, 3.0, 0.0)
    expected = 0.25 * layers[1].astype(np.float64) + 0.75 * layers[3]  # (n, 2D)
    mixed = select(layers, weights)
    assert mixed.shape == (7, 16) and mixed.dtype == np.float32
    np.testing.assert_allclose(mixed, expected, rtol=1e-6, atol=1e-6)
    normalised = np.asarray(weights, dtype=np.float32) / 4.0  # elmo.analysis's numpy bits
    assert np.array_equal(mixed, np.tensordot(normalised, layers, axes=1))
    from_torch = select(torch.from_numpy(layers), weights)
    assert from_torch.dtype == torch.float32
    np.testing.assert_allclose(from_torch.numpy(), expected, rtol=1e-6, atol=1e-6)


def test_select_rejects_an_unknown_name(layers):
    with pytest.raises(ValueError, match="'middle'"):
        select(layers, "middle")


def test_representation_names_are_the_probe_rows():
    assert representation_names(3) == ["layer0", "layer1", "layer2", "mix"]
    assert representation_layer("layer2", 3) == 2 and representation_layer("mix", 3) is None
    for bad in ("layer3", "layer-1", "layertop", "top", "2", "layer²"):
        with pytest.raises(ValueError, match="mix or layer0..layer2"):
            representation_layer(bad, 3)
