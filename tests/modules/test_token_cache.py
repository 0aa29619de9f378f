"""Tests for elmo.modules.token_cache: exact hits, invalidation on weight changes, the bound, no
grads; the cache as an option of the token encoder (``BiLM.use_token_cache``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixture_checks import fixture_model, random_mid_reference, random_mid_sentences
from shared_data import shared_path

from elmo.data.characters import batch_to_ids
from elmo.embedder import ElmoEmbedder
from elmo.modules.token_cache import TokenVectorCache
from elmo.published import load_published

SENTENCES = [["the", "bank", "of", "the", "river"], ["a", "bank"], ["river", "banks", "flood", "."]]


def cached(cnn, cache: TokenVectorCache, ids: torch.Tensor) -> torch.Tensor:
    """``cnn(ids)`` through ``cache`` (the encoder's option), the encoder left without one."""
    cnn.token_cache = cache
    try:
        return cnn(ids)
    finally:
        cnn.token_cache = None


def test_hits_equal_the_uncached_vectors(tiny_bilm):
    # Bit for bit at the fixture's sizes (the last test); GEMMs as narrow as the tiny model's
    # (F = 10) round by row position in MKL, which moves a vector by ~1e-7.
    cache = TokenVectorCache()
    cnn = tiny_bilm.char_cnn
    with torch.no_grad():
        for sentences in (SENTENCES[:2], SENTENCES, SENTENCES[1:]):
            ids = batch_to_ids(sentences)  # (B, T, W)
            torch.testing.assert_close(cached(cnn, cache, ids), cnn(ids), rtol=0, atol=1e-6)
    assert cache.hits > 0 and cache.misses == len({w for s in SENTENCES for w in s})


def test_a_weight_change_empties_the_cache(tiny_bilm, tiny_config):
    cache = TokenVectorCache()
    cnn = tiny_bilm.char_cnn
    ids = batch_to_ids(SENTENCES)
    with torch.no_grad():
        cached(cnn, cache, ids)
        cnn.projection.bias.add_(1.0)  # in place, as an optimizer step
        torch.testing.assert_close(cached(cnn, cache, ids), cnn(ids), rtol=0, atol=1e-6)
        other = type(tiny_bilm)(tiny_config).eval()  # fresh random weights
        cnn.load_state_dict(other.char_cnn.state_dict())
        torch.testing.assert_close(
            cached(cnn, cache, ids), other.char_cnn(ids), rtol=0, atol=1e-6
        )


def test_the_cache_keeps_at_most_max_entries_most_recent_first(tiny_bilm):
    cache = TokenVectorCache(max_entries=3)
    cnn = tiny_bilm.char_cnn
    with torch.no_grad():
        cached(cnn, cache, batch_to_ids([["a", "b", "c", "d"]]))
        assert len(cache) == 3
        misses = cache.misses
        cached(cnn, cache, batch_to_ids([["d"]]))  # kept: the most recent
        assert cache.misses == misses
        cached(cnn, cache, batch_to_ids([["a"]]))  # dropped first
        assert cache.misses == misses + 1
    assert cached(cnn, TokenVectorCache(max_entries=0), batch_to_ids([["a"]])).shape == (1, 1, 8)


def test_no_cache_while_gradients_can_flow(tiny_bilm):
    cache = TokenVectorCache()
    cnn = tiny_bilm.char_cnn
    ids = batch_to_ids(SENTENCES)
    assert cached(cnn, cache, ids).grad_fn is not None  # grad enabled, trainable weights
    cnn.train()
    with torch.no_grad():
        cached(cnn, cache, ids)
    assert len(cache) == 0 and cache.misses == 0


def test_max_entries_must_not_be_negative():
    with pytest.raises(ValueError, match="max_entries"):
        TokenVectorCache(max_entries=-1)


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful_batch8"])
def test_cached_embedder_reproduces_the_chaotic_fixture(stateful, reference_threads):
    # elmo-random-mid turns any 1e-7 change of a token vector into 1e-2 (README, Exactness): the
    # cache passes only if its vectors are bit-identical to the ones computed in the batch.
    reference = random_mid_reference(stateful)  # the fixture, or this CPU's reference loop
    sentences = random_mid_sentences()
    bilm = fixture_model("elmo-random-mid")
    embedder = ElmoEmbedder(bilm, stateful=stateful)
    for repeat in range(2):  # the second pass is all cache hits
        embedder.reset_state()
        for start in range(0, len(sentences), 8):
            batch = embedder.embed_batch(sentences[start : start + 8])
            for row, sentence in enumerate(sentences[start : start + 8]):
                actual = batch.layers[:, row, : len(sentence)].numpy()
                wanted = reference.arrays[start + row]
                np.testing.assert_allclose(
                    actual, wanted, rtol=0, atol=reference.atol, err_msg=f"{start + row}"
                )
    assert embedder.token_cache.hits > embedder.token_cache.misses > 0
    reference.skip_if_substituted()


def test_the_biLM_owns_one_cache_and_each_embedder_starts_it_empty(tiny_bilm):
    first = ElmoEmbedder(tiny_bilm)
    first.embed_sentences(SENTENCES)
    assert tiny_bilm.token_cache is first.token_cache and len(first.token_cache) > 0
    second = ElmoEmbedder(tiny_bilm, cache_size=7)
    assert tiny_bilm.token_cache is second.token_cache and len(second.token_cache) == 0
    assert second.token_cache.max_entries == 7
    ElmoEmbedder(tiny_bilm, cache_size=0)
    assert tiny_bilm.token_cache is None


def test_a_window_is_encoded_ahead_in_one_pass_with_the_same_bits(monkeypatch, reference_threads):
    # One sentence per batch: the window's words go through the character CNN together, before
    # the batches; the chaotic fixture's weights show any rounding difference.
    folder = shared_path("fixtures", "elmo-random-mid")
    text = (folder / "sentences.txt").read_text(encoding="utf-8")
    sentences = [line.split() for line in text.rstrip("\n").split("\n")]
    bilm = load_published(folder / "options.json", folder / "weights.hdf5")
    plain = ElmoEmbedder(bilm, batch_size=1, cache_size=0).embed_sentences(sentences)
    embedder = ElmoEmbedder(bilm, batch_size=1)
    passes, encode = [], bilm.char_cnn.encode_distinct
    monkeypatch.setattr(
        bilm.char_cnn, "encode_distinct", lambda ids: passes.append(len(ids)) or encode(ids)
    )
    ahead = embedder.embed_sentences(sentences)
    assert all(torch.equal(a, b) for a, b in zip(ahead, plain, strict=True))
    assert passes == [len({word for sentence in sentences for word in sentence})]  # one pass


def test_encoding_ahead_skips_a_window_that_would_not_fit(tiny_bilm):
    cache = TokenVectorCache(max_entries=2)
    with torch.no_grad():
        cache.encode_ahead(tiny_bilm.char_cnn, batch_to_ids([["a", "b", "c"]])[0])
        assert len(cache) == 0
        cache.encode_ahead(tiny_bilm.char_cnn, batch_to_ids([["a", "b"]])[0])
    assert len(cache) == 2 and cache.misses == 2


def test_encoding_ahead_keeps_the_windows_hits_when_the_cache_is_full(tiny_bilm):
    cache = TokenVectorCache(max_entries=3)
    cnn = tiny_bilm.char_cnn
    with torch.no_grad():
        cache.encode_ahead(cnn, batch_to_ids([["a", "b", "c"]])[0])  # full; "a" the oldest
        cache.encode_ahead(cnn, batch_to_ids([["a", "d"]])[0])  # "a" a hit, "d" new
        misses = cache.misses
        cached(cnn, cache, batch_to_ids([["a", "d"]]))  # the window's batch: all hits
    assert cache.misses == misses == 4 and len(cache) == 3
