"""Cached features are the embedder's own vectors, in input order, whatever the batching."""

from __future__ import annotations

import pytest
import torch
from progress_log import log_every_update, progress_lines

from elmo.embedder import ElmoEmbedder
from elmo.tasks.features import sentence_features, target_features, token_features, type_vectors

SENTENCES = [["the", "bank"], ["a", "river", "bank", "."], ["x"], ["we", "sat", "down"]]


def test_token_features_concatenate_sentences_in_input_order(tiny_bilm):
    embedder = ElmoEmbedder(tiny_bilm, batch_size=2)  # batches of sorted lengths
    features = token_features(embedder, SENTENCES)
    assert features.shape == (10, 3, 16)  # (N tokens, L, 2D)
    expected = torch.cat([embedder.embed_sentence(s).transpose(0, 1) for s in SENTENCES])
    torch.testing.assert_close(features, expected, atol=1e-6, rtol=0)


def test_target_and_sentence_features(tiny_bilm):
    embedder = ElmoEmbedder(tiny_bilm, batch_size=3)
    targets = target_features(embedder, SENTENCES, [1, 2, 0, 2])
    for row, (sentence, position) in enumerate(zip(SENTENCES, [1, 2, 0, 2])):
        alone = embedder.embed_sentence(sentence)  # (L, n, 2D)
        torch.testing.assert_close(targets[row], alone[:, position], atol=1e-6, rtol=0)
    per_sentence = sentence_features(embedder, SENTENCES)
    assert [f.shape for f in per_sentence] == [(3, len(s), 16) for s in SENTENCES]
    with pytest.raises(ValueError, match="3 positions for 4 sentences"):
        target_features(embedder, SENTENCES, [0, 0, 0])


def test_type_vectors_are_layer_zero_of_the_word_alone(tiny_bilm):
    embedder = ElmoEmbedder(tiny_bilm)
    vectors = type_vectors(embedder, ["bank", "Bank", "river"])
    assert vectors.shape == (3, 16)
    torch.testing.assert_close(vectors[1], embedder.embed_sentence(["Bank"])[0, 0])
    with pytest.raises(ValueError, match="one non-empty token"):
        type_vectors(embedder, ["two words"])


def test_features_need_a_stateless_embedder_and_real_sentences(tiny_bilm):
    with pytest.raises(ValueError, match="stateless"):
        token_features(ElmoEmbedder(tiny_bilm, stateful=True), SENTENCES)
    with pytest.raises(ValueError, match="sentence 1 has no tokens"):
        token_features(ElmoEmbedder(tiny_bilm), [["a"], []])


def test_embedding_reports_progress_in_sentences(tiny_bilm, monkeypatch, caplog):
    log_every_update(monkeypatch, caplog)
    token_features(ElmoEmbedder(tiny_bilm, batch_size=3), SENTENCES, "model train")
    assert progress_lines(caplog, "embedding model train") == [
        "embedding model train: 3/4 sentences (75%), 1 min 00 s, 0.05 sentences/s, about "
        + "20 s left",
        "embedding model train: 4/4 sentences (100%), 2 min 00 s, 0.0333 sentences/s",
    ]
