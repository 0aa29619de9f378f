"""Tests for elmo.modules.char_cnn against a float64 numpy character CNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from shared_data import shared_path

from elmo.config import CharCNNConfig
from elmo.data.characters import token_to_char_ids
from elmo.modules.char_cnn import CharCNN, distinct_rows, length_buckets, used_slots
from elmo.published import load_published

D = 8
W = 7  # a short token width keeps the reference loop small; 3 filter widths up to 3


def small_config(activation: str) -> CharCNNConfig:
    return CharCNNConfig(
        char_embedding_dim=4,
        filters=[[1, 4], [2, 6], [3, 5]],
        num_highway_layers=1,
        activation=activation,
        max_characters_per_token=W,
    )


def reference_char_cnn(ids: np.ndarray, cnn: CharCNN, activation: str) -> np.ndarray:
    """(B, T, W) ids -> (B, T, D): embed, valid conv per width, max over positions, activation,
    highway (g * x + (1 - g) * relu(.)), projection; all in float64."""
    params = {k: v.detach().double().numpy() for k, v in cnn.state_dict().items()}
    embedded = params["char_embedding.weight"][ids]  # (B, T, W, E)
    pooled = []
    for i, (width, count) in enumerate(cnn.config.filters):
        kernel = params[f"convolutions.{i}.weight"]  # (count, E, width)
        positions = ids.shape[-1] - width + 1
        conv = (
            np.stack(
                [
                    np.einsum("btke,cek->btc", embedded[:, :, p : p + width], kernel)
                    for p in range(positions)
                ],
                axis=-1,
            )
            + params[f"convolutions.{i}.bias"][:, None]
        )  # (B, T, count, positions)
        pooled.append(conv.max(axis=-1))
    features = np.concatenate(pooled, axis=-1)  # (B, T, F)
    features = np.maximum(features, 0.0) if activation == "relu" else np.tanh(features)
    F = features.shape[-1]
    for k in range(cnn.config.num_highway_layers):
        weight, bias = params[f"highway.layers.{k}.weight"], params[f"highway.layers.{k}.bias"]
        transform = features @ weight[:F].T + bias[:F]
        gate = 1.0 / (1.0 + np.exp(-(features @ weight[F:].T + bias[F:])))
        features = gate * features + (1.0 - gate) * np.maximum(transform, 0.0)
    return features @ params["projection.weight"].T + params["projection.bias"]


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_matches_numpy_float64(activation):
    cnn = CharCNN(small_config(activation), output_dim=D).double()
    ids = torch.randint(0, 262, (2, 3, W))
    ids[1, 2] = 0  # a padding token
    expected = reference_char_cnn(ids.numpy(), cnn, activation)
    expected[1, 2] = 0.0  # padding tokens get zeros
    actual = cnn(ids)
    assert actual.shape == (2, 3, D)
    np.testing.assert_allclose(actual.detach().numpy(), expected, rtol=0, atol=1e-12)
    flat = ids.view(6, W)
    np.testing.assert_allclose(
        cnn.encode(flat).detach().numpy(), reference_char_cnn(flat[None].numpy(), cnn, activation)[0],
        rtol=0, atol=1e-12,
    )  # the plain path gives every token, padding included, a vector


def test_float32_is_close_to_the_float64_reference():
    cnn = CharCNN(small_config("relu"), output_dim=D)
    ids = torch.randint(1, 262, (4, 2, W))
    expected = reference_char_cnn(ids.numpy(), cnn, "relu")
    np.testing.assert_allclose(cnn(ids).detach().numpy(), expected, rtol=0, atol=1e-5)


def test_padding_row_of_the_char_table_is_zero_and_stays_zero():
    cnn = CharCNN(small_config("relu"), output_dim=D)
    table = cnn.char_embedding.weight
    assert table.shape == (262, 4)
    assert (table[0] == 0).all() and (table[1:] != 0).any()
    cnn(torch.randint(0, 262, (2, 3, W))).sum().backward()
    assert (table.grad[0] == 0).all()  # no gradient, so training keeps it zero


def test_output_dim():
    assert CharCNN(small_config("relu"), output_dim=D).output_dim == D


# ------------------------------------------------------------------------------------------------
# The fast path: distinct tokens, length buckets, trimmed character slots


def word_ids(words: list[str], width: int = 50) -> torch.Tensor:
    return torch.tensor([token_to_char_ids(w, width) for w in words])  # (N, W)


def test_used_slots_counts_up_to_the_last_non_padding_slot():
    ids = word_ids(["a", "abc", ""], width=8)
    assert used_slots(ids).tolist() == [3, 5, 2]  # begin-of-word, bytes, end-of-word
    assert used_slots(torch.zeros(1, 8, dtype=torch.long)).tolist() == [8]  # 0 is not padding


def test_distinct_rows_keep_first_occurrence_order():
    rows = torch.tensor([[3, 1], [2, 2], [3, 1], [0, 5], [2, 2]])
    distinct, inverse = distinct_rows(rows)
    assert distinct.tolist() == [[3, 1], [2, 2], [0, 5]]
    assert inverse.tolist() == [0, 1, 0, 2, 1]


def test_length_buckets_cover_every_token_once_sorted_by_length():
    slots = torch.randint(3, 20, (600,))
    buckets = length_buckets(slots, rows=256)
    assert [len(b) for b in buckets] == [256, 256, 88]
    assert sorted(torch.cat(buckets).tolist()) == list(range(600))
    assert (slots[torch.cat(buckets)].diff() >= 0).all()
    assert [len(b) for b in length_buckets(slots[:520], rows=256)] == [256, 264]  # no tiny tail


def test_fast_path_equals_the_plain_computation():
    words = ["the", "bank", "of", "the", "river", ",", "a", "bank", "of", "America", "and", "unbelievably", "long", "words", "."]
    config = CharCNNConfig(
        char_embedding_dim=4, filters=[[1, 4], [2, 6], [4, 5]], num_highway_layers=2
    )
    cnn = CharCNN(config, output_dim=D)
    ids = word_ids(words)  # (N, 50)
    plain = cnn.encode(ids)  # (N, D)
    assert torch.allclose(cnn.encode_distinct(ids), plain, rtol=0, atol=1e-6)
    batch = torch.zeros(2, 10, 50, dtype=torch.long)  # (B, T, W) with padding tokens
    batch[0], batch[1, :5] = ids[:10], ids[10:]
    fast = cnn(batch)
    assert torch.allclose(fast[0], plain[:10], rtol=0, atol=1e-6)
    assert torch.allclose(fast[1, :5], plain[10:], rtol=0, atol=1e-6)
    assert (fast[1, 5:] == 0).all()
    fast.sum().backward()  # the fast path trains too
    assert cnn.convolutions[2].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("threads", [1, 2])
def test_a_tokens_vector_does_not_depend_on_how_many_share_the_batch(threads):
    # The elmo-random-mid fixture is chaotic: a 1e-7 change in a token vector becomes 1e-2. So
    # the fast path must give each token the same bits however many distinct tokens a batch has
    # (down to one), which is why small GEMMs are padded to MIN_GEMM_ROWS rows.
    folder = shared_path("fixtures", "elmo-random-mid")
    cnn = load_published(folder / "options.json", folder / "weights.hdf5").char_cnn
    words = (folder / "sentences.txt").read_text(encoding="utf-8").split()
    ids = distinct_rows(word_ids(words))[0][:40]  # (40, W)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            whole = cnn.encode_distinct(ids)
            assert torch.equal(whole, cnn.encode(ids))
            for size in (1, 2, 3, 7, 13, 17):
                parts = torch.cat([cnn.encode_distinct(ids[i : i + size]) for i in range(0, 40, size)])
                assert torch.equal(parts, whole), size
    finally:
        torch.set_num_threads(previous)
