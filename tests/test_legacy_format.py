"""A pretrained directory written by the code before the biLM's refactor into parts (format 2,
tests/legacy/model_v2, made by commit 4980910) loads and embeds as it did then."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from elmo.data.characters import batch_to_ids
from elmo.pretrained import load_bilm, load_vocabulary

LEGACY = Path(__file__).parent / "legacy"
SENTENCES = [["the", "river", "bank"], ["the", "bank", "of", "money", "."]]


def test_a_directory_written_before_the_refactor_gives_the_same_layers():
    model = load_bilm(LEGACY / "model_v2")
    assert load_vocabulary(LEGACY / "model_v2") is not None and model.softmax is not None
    expected = np.load(LEGACY / "model_v2_layers.npy")  # (3, 2, 7, 16), computed by that code
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.no_grad():
            layers = model(batch_to_ids(SENTENCES)).layers.numpy()
    finally:
        torch.set_num_threads(previous)
    np.testing.assert_allclose(layers, expected, rtol=0, atol=1e-6)
