"""Tests for elmo.modules.transformer (and its attention and position encodings): shapes and
masks, no leakage across the direction's boundary on every layer, padding invariance, the
backward direction as reversed reading, statelessness, and the small shape's size."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from elmo.config import TransformerConfig, bilm_config_from_dict
from elmo.model import BiLM
from elmo.modules.attention import causal_mask
from elmo.modules.positions import POSITION_ENCODINGS, alibi_slopes, sinusoid_table
from elmo.modules.sequence import reverse_padded
from elmo.modules.transformer import TransformerStack

D = 8
LENGTHS = [5, 3, 6, 1]  # unsorted, with padding in every row but one
ENCODINGS = list(POSITION_ENCODINGS)
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "model"


def make_stack(encoding: str = "alibi", layers: int = 3, dropout: float = 0.0) -> TransformerStack:
    config = TransformerConfig(num_layers=layers, num_heads=2, model_dim=D, feedforward_dim=16,
                               dropout=dropout, position_encoding=encoding)  # fmt: skip
    return TransformerStack(config, input_dim=D).eval()


def padded_batch(lengths=LENGTHS) -> tuple[torch.Tensor, torch.Tensor]:
    """Random token vectors (B, T, D), zero at padding, and their mask (B, T)."""
    steps = max(lengths)
    mask = torch.arange(steps)[None, :] < torch.tensor(lengths)[:, None]  # (B, T)
    tokens = torch.randn(len(lengths), steps, D) * mask.unsqueeze(-1)
    return tokens, mask


def run(stack: TransformerStack, tokens, mask, reverse=False) -> torch.Tensor:
    with torch.no_grad():
        return torch.stack(stack(tokens, mask, reverse=reverse).layers)  # (N, B, T, D)


def test_the_mask_allows_earlier_real_keys_and_always_the_query_itself():
    mask = torch.tensor([[True, True, True], [True, False, False], [False, False, False]])
    allowed = causal_mask(mask)
    assert allowed.shape == (3, 1, 3, 3)
    assert allowed[0, 0].tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert allowed[1, 0].tolist() == [
        [True, False, False],
        [True, True, False],
        [True, False, True],
    ]
    assert allowed[2, 0].tolist() == [
        [True, False, False],
        [False, True, False],
        [False, False, True],
    ]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_shapes_zero_padding_and_no_state(encoding):
    stack = make_stack(encoding)
    tokens, mask = padded_batch(LENGTHS + [0])  # a row of padding only: finite, zero
    output = stack(tokens, mask)
    assert stack.num_layers == 3 and stack.output_dim == D and output.state is None
    assert len(output.layers) == 3
    for layer in output.layers:
        assert layer.shape == tokens.shape and torch.isfinite(layer).all()
        assert (layer[~mask] == 0).all()
    assert stack.initial_state(4, tokens) is None


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "backward"])
def test_no_leakage_from_the_other_side_on_every_layer(encoding, reverse):
    """Forward: changing token t+1 leaves every layer at positions <= t exactly as it was (and
    changes position t+1). Backward, the mirror: changing token t-1 leaves positions >= t. The
    batch has padding, and the changed row is not the longest."""
    stack = make_stack(encoding)
    tokens, mask = padded_batch()
    before = run(stack, tokens, mask, reverse)
    row = 0  # 5 tokens in a batch 6 long
    for changed in range(LENGTHS[row]):
        edited = tokens.clone()
        edited[row, changed] += torch.randn(D)
        after = run(stack, edited, mask, reverse)
        kept = slice(0, changed) if not reverse else slice(changed + 1, None)
        assert torch.equal(after[:, row, kept], before[:, row, kept]), f"position {changed}"
        assert (after[:, row, changed] != before[:, row, changed]).any(dim=-1).all()
        others = [r for r in range(len(LENGTHS)) if r != row]
        assert torch.equal(after[:, others], before[:, others])  # rows never mix


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "backward"])
def test_gradients_flow_only_from_the_side_the_direction_reads(reverse):
    """The same property through autograd: an output at t has zero gradient with respect to
    every token on the other side of t, and a nonzero one for each token on its own side."""
    stack = make_stack("sinusoidal")
    tokens, mask = padded_batch([6, 4])
    tokens.requires_grad_(True)
    top = stack(tokens, mask, reverse=reverse).layers[-1]  # (B, T, D)
    t = 2
    # (a random projection: the final LayerNorm's outputs sum to 0, whatever the input)
    (gradient,) = torch.autograd.grad(top[0, t] @ torch.randn(D), tokens)
    norms = gradient[0].norm(dim=-1)  # (T,)
    seen = range(t + 1) if not reverse else range(t, 6)
    for position in range(6):
        assert (norms[position] > 0) == (position in seen), position
    assert (gradient[1] == 0).all()


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "backward"])
def test_each_row_alone_equals_the_padded_batch(encoding, reverse):
    stack = make_stack(encoding)
    tokens, mask = padded_batch()
    batch = run(stack, tokens, mask, reverse)
    for row, n in enumerate(LENGTHS):
        alone = run(stack, tokens[row : row + 1, :n], mask[row : row + 1, :n], reverse)
        assert torch.allclose(batch[:, row, :n], alone[:, 0], atol=1e-6, rtol=0), row


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_the_backward_direction_reads_each_row_reversed(encoding):
    """reverse=True is reading the reversed text left to right (as a training stream's backward
    windows hold it), with the outputs put back in reading order."""
    stack = make_stack(encoding)
    tokens, mask = padded_batch()
    lengths = mask.sum(dim=1)
    backward = run(stack, tokens, mask, reverse=True)
    reversed_text = run(stack, reverse_padded(tokens, lengths), mask)
    for layer in range(3):
        assert torch.equal(backward[layer], reverse_padded(reversed_text[layer], lengths))


def test_a_state_is_refused_and_the_width_must_match():
    stack = make_stack()
    tokens, mask = padded_batch()
    with pytest.raises(ValueError, match="carries no state"):
        stack(tokens, mask, state=(torch.zeros(1, 4, D),))
    with pytest.raises(ValueError, match="transformer.model_dim is 8"):
        TransformerStack(stack.config, input_dim=D + 1)


def test_dropout_only_in_training_mode():
    stack = make_stack(dropout=0.5)
    tokens, mask = padded_batch()
    assert torch.equal(run(stack, tokens, mask), run(stack, tokens, mask))
    stack.train()
    assert not torch.equal(run(stack, tokens, mask), run(stack, tokens, mask))


def test_layer_parameters_cover_every_parameter_once():
    stack = make_stack()
    groups = [stack.layer_parameters(index) for index in range(stack.num_layers)]
    flat = [id(p) for group in groups for p in group]
    assert len(flat) == len(set(flat)) == len(list(stack.parameters()))
    assert any(p is stack.final_norm.weight for p in groups[-1])


def test_alibi_slopes_follow_the_paper():
    np.testing.assert_allclose(alibi_slopes(8).numpy(), [2.0**-k for k in range(1, 9)])
    # not a power of two: the 4 heads' slopes, then every other one of the 8 heads' slopes
    np.testing.assert_allclose(alibi_slopes(6).numpy(), [2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3])


def test_the_sinusoid_table_matches_its_formula():
    table = sinusoid_table(7, 5).numpy()
    for position in range(7):
        for i in range(5):
            angle = position / 10000 ** (2 * (i // 2) / 5)
            expected = math.sin(angle) if i % 2 == 0 else math.cos(angle)
            assert table[position, i] == pytest.approx(expected, abs=1e-6)


def _model_config(name: str):
    return bilm_config_from_dict(OmegaConf.to_container(OmegaConf.load(CONFIGS / f"{name}.yaml")))


def _parameters_outside_the_softmax(config) -> int:
    model = BiLM(dataclasses.replace(config, vocab_size=0))
    return sum(p.numel() for p in model.parameters())


def test_transformer_small_has_about_the_parameters_of_small():
    """model=transformer_small: 2,752,352 parameters outside the softmax, small's LSTM 2,740,064."""
    lstm, transformer = _model_config("small"), _model_config("transformer_small")
    assert transformer.contextualizer == "transformer" and transformer.token_dim == lstm.token_dim
    counts = _parameters_outside_the_softmax(lstm), _parameters_outside_the_softmax(transformer)
    assert counts == (2_740_064, 2_752_352)
    assert abs(counts[1] / counts[0] - 1) < 0.01
