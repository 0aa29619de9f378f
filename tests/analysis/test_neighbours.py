"""The corpus index (built once, cached, invalidated) and nearest contextual neighbours."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import elmo.analysis.index as index_module
from elmo.analysis.corpus import read_corpus
from elmo.analysis.index import build_index, cache_key
from elmo.analysis.neighbours import find_neighbours
from elmo.analysis.query import parse_marked_query
from elmo.embedder import ElmoEmbedder


@pytest.fixture
def count_embeddings(monkeypatch):
    """Count the calls of the function that embeds corpus sentences while an index is built."""
    calls = []
    real = index_module.contextual_vectors

    def counting(*args, **kwargs):
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(index_module, "contextual_vectors", counting)
    return calls


def _cache_files(corpus_file):
    return sorted(corpus_file.parent.glob(corpus_file.name + ".elmo-index-*.npz"))


def test_the_query_occurrence_itself_comes_first(lm_bilm, corpus_file):
    index = build_index(lm_bilm, corpus_file)
    for line, text in [
        (2, "We sat on the [bank] of the river ."),
        (7, "The boat drifted towards the [bank] ."),
        (4, "[The] bank raised its interest rates ."),
    ]:
        query = parse_marked_query(text)
        best = find_neighbours(lm_bilm, index, query, top_k=3)
        assert (best[0].line, best[0].tokens, best[0].position) == (
            line,
            query.tokens,
            query.position,
        )
        assert best[0].word == query.word
        assert best[0].similarity == pytest.approx(1.0, abs=1e-3)
        assert best[0].similarity >= best[1].similarity >= best[2].similarity
        assert best[1].similarity < 0.999  # the tiny model's vectors do tell contexts apart


def test_the_index_holds_every_occurrence_with_unit_vectors(lm_bilm, corpus_file):
    index = build_index(lm_bilm, corpus_file, layer="average", use_cache=False)
    corpus = read_corpus(corpus_file)
    assert len(index) == sum(len(s) for s in corpus.sentences)
    expected = ElmoEmbedder(lm_bilm).embed_sentences(corpus.sentences, output="average", numpy=True)
    for row in [0, 5, len(index) - 1]:
        vector = expected[index.sentence_ids[row]][index.positions[row]]
        np.testing.assert_allclose(index.vectors[row], vector / np.linalg.norm(vector), atol=2e-3)


def test_a_mix_of_layers_is_their_normalised_weighted_sum(lm_bilm, corpus_file):
    index = build_index(lm_bilm, corpus_file, layer=(0.0, 1.0, 3.0), use_cache=False)
    layers = ElmoEmbedder(lm_bilm).embed_sentence(read_corpus(corpus_file).sentences[0], numpy=True)
    vector = 0.25 * layers[1, 0] + 0.75 * layers[2, 0]
    np.testing.assert_allclose(index.vectors[0], vector / np.linalg.norm(vector), atol=2e-3)


def test_the_cache_is_reused_then_invalidated_when_the_corpus_changes(
    lm_bilm, corpus_file, count_embeddings
):
    first = build_index(lm_bilm, corpus_file)
    assert count_embeddings and len(_cache_files(corpus_file)) == 1
    count_embeddings.clear()
    second = build_index(lm_bilm, corpus_file)
    assert count_embeddings == []  # loaded, not recomputed
    np.testing.assert_array_equal(first.vectors, second.vectors)
    np.testing.assert_array_equal(first.positions, second.positions)

    with open(corpus_file, "a", encoding="utf-8") as handle:
        handle.write("A new bank opened downtown .\n")
    third = build_index(lm_bilm, corpus_file)
    assert count_embeddings  # recomputed
    assert len(third) == len(first) + 6
    assert len(_cache_files(corpus_file)) == 1  # the outdated cache was removed
    best = find_neighbours(lm_bilm, third, "A new [bank] opened downtown .", top_k=1)[0]
    assert best.line == 10 and best.word == "bank"


def test_the_cache_key_covers_the_mtime_the_weights_and_the_layer(
    lm_bilm, corpus_file, count_embeddings
):
    build_index(lm_bilm, corpus_file)
    count_embeddings.clear()
    stat = corpus_file.stat()
    os.utime(corpus_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same size, touched
    build_index(lm_bilm, corpus_file)
    assert count_embeddings
    count_embeddings.clear()
    build_index(lm_bilm, corpus_file, layer=1)
    assert count_embeddings
    count_embeddings.clear()
    with torch.no_grad():
        lm_bilm.char_cnn.projection.bias.add_(0.01)
    build_index(lm_bilm, corpus_file, layer=1)
    assert count_embeddings
    count_embeddings.clear()
    build_index(lm_bilm, corpus_file, layer=1)
    assert count_embeddings == []


def test_only_a_kernel_that_is_not_bit_exact_changes_the_cache_key(lm_bilm, corpus_file):
    exact = cache_key(corpus_file, lm_bilm, "top")
    lm_bilm.kernel = "fused"  # equal up to float rounding: its vectors are cached apart
    assert cache_key(corpus_file, lm_bilm, "top") != exact
    lm_bilm.kernel = "exact"
    assert cache_key(corpus_file, lm_bilm, "top") == exact


def test_cache_dir_and_unusable_caches(lm_bilm, corpus_file, tmp_path, count_embeddings):
    cache_dir = tmp_path / "cache"
    build_index(lm_bilm, corpus_file, cache_dir=cache_dir)
    (cached,) = cache_dir.glob("corpus.txt.elmo-index-*.npz")
    assert _cache_files(corpus_file) == []
    cached.write_bytes(b"not a zip file")  # a damaged cache is rebuilt
    count_embeddings.clear()
    build_index(lm_bilm, corpus_file, cache_dir=cache_dir)
    assert count_embeddings
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    index = build_index(lm_bilm, corpus_file, cache_dir=blocker / "sub")  # cannot be written
    assert len(index) > 0


def test_same_word_only_returns_occurrences_of_the_marked_word(lm_bilm, corpus_file):
    index = build_index(lm_bilm, corpus_file)
    result = find_neighbours(
        lm_bilm, index, "a grassy [bank] by the water", top_k=20, same_word=True
    )
    assert [n.word for n in result] == ["bank"] * 8
    with pytest.raises(ValueError, match="'levee' does not occur in the corpus"):
        find_neighbours(lm_bilm, index, "a grassy [levee] by the water", same_word=True)


def test_errors(lm_bilm, corpus_file, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(ValueError, match="is empty"):
        build_index(lm_bilm, empty)
    with pytest.raises(FileNotFoundError, match="no such file"):
        build_index(lm_bilm, tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="out of range"):
        build_index(lm_bilm, corpus_file, layer=3)
    index = build_index(lm_bilm, corpus_file)
    with pytest.raises(ValueError, match="no marked word"):
        find_neighbours(lm_bilm, index, "the bank of the river")
    with pytest.raises(ValueError, match="marks 2 words"):
        find_neighbours(lm_bilm, index, "the [bank] of the [river]")
