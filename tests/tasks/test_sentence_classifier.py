"""The SST-2 classifier: pooling by hand, padding invariance, gradients into the biLM or not."""

from __future__ import annotations

import pytest
import torch

from elmo.data.characters import batch_to_ids
from elmo.tasks.sentence_classifier import ElmoClassifier, SentenceClassifier, masked_mean_max


def test_masked_mean_max_ignores_padding():
    values = torch.tensor([[[1.0, -2.0], [3.0, 4.0], [100.0, 100.0]]])  # (B=1, T=3, K=2)
    mask = torch.tensor([[True, True, False]])
    torch.testing.assert_close(masked_mean_max(values, mask), torch.tensor([[2.0, 1.0, 3.0, 4.0]]))


@pytest.mark.parametrize("encoder", ["pool", "bilstm"])
def test_logits_do_not_depend_on_padding(encoder):
    classifier = SentenceClassifier(3, 8, None, encoder=encoder, hidden_size=5).eval()
    layers = torch.randn(2, 6, 3, 8)  # (B, T, L, 2D)
    mask = torch.tensor([[True] * 6, [True] * 2 + [False] * 4])
    batched = classifier(layers, mask)
    alone = classifier(layers[1:, :2], mask[1:, :2])
    assert batched.shape == (2, 2)
    torch.testing.assert_close(batched[1:], alone, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="pool or bilstm"):
        SentenceClassifier(3, 8, None, encoder="cnn")


def test_the_bilm_gets_gradients_only_when_it_may_learn(tiny_bilm):
    model = ElmoClassifier(tiny_bilm, SentenceClassifier(3, 16, None)).train()
    char_ids = batch_to_ids([["a", "fine", "film"], ["dull"]])
    assert not model.bilm.training  # no biLM dropout while fine-tuning either
    tiny_bilm.requires_grad_(False)
    model(char_ids).sum().backward()
    assert all(p.grad is None for p in tiny_bilm.parameters())
    assert model.classifier.output.weight.grad is not None
    tiny_bilm.requires_grad_(True)
    model(char_ids).sum().backward()
    assert tiny_bilm.char_cnn.projection.weight.grad is not None
