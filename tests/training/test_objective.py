"""Tests for elmo.training.objective: the fused kernel trains the same model up to rounding."""

from __future__ import annotations

import dataclasses

import torch

from elmo.data.characters import batch_to_ids
from elmo.data.stream import Batch
from elmo.model import BiLM
from elmo.training.objective import LMObjective

WORDS = ["<S>", "</S>", "<UNK>", "the", "bank", "of", "river", "a", "flows", "."]


def window(sentences: list[list[str]]) -> Batch:
    """A (B, T) window whose targets are each row's next word (the last one predicts '.')."""
    char_ids = batch_to_ids(sentences)  # (B, T, W)
    ids = torch.tensor([[WORDS.index(w) for w in s] for s in sentences])  # (B, T)
    return Batch(ids, char_ids, torch.roll(ids, -1, dims=1), torch.ones_like(ids, dtype=torch.bool))


def test_the_fused_kernel_objective_matches_the_exact_one(tiny_config):
    torch.manual_seed(0)
    bilm = BiLM(dataclasses.replace(tiny_config, vocab_size=len(WORDS), dropout=0.0)).train()
    forward = window([["the", "bank", "of", "the"], ["a", "river", "flows", "."]])
    backward = window([["river", "the", "of", "bank"], [".", "flows", "river", "a"]])
    results = []
    for kernel in ("exact", "fused"):
        bilm.zero_grad()
        bilm.kernel = kernel
        output = LMObjective(bilm)(forward, backward)
        output.loss.backward()
        results.append((output, {n: p.grad.clone() for n, p in bilm.named_parameters()}))
    (exact, exact_grads), (fast, fast_grads) = results
    torch.testing.assert_close(fast.loss, exact.loss, rtol=0, atol=1e-6)
    torch.testing.assert_close(fast.forward_state.hidden, exact.forward_state.hidden, rtol=0, atol=1e-6)
    for name, grad in exact_grads.items():
        torch.testing.assert_close(fast_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
