"""ElmoEmbedder and Elmo: shapes, order, statefulness, output choices, and the README example."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from elmo.data.characters import batch_to_ids
from elmo.embedder import Elmo, ElmoEmbedder
from elmo.model import BiLM
from elmo.pretrained import save_pretrained

SENTENCES = ["I live near the bank of America", "the bank", "We sat on the bank of the river", "x"]


def test_vectors_come_back_in_input_order(tiny_bilm):
    embedder = ElmoEmbedder(tiny_bilm, batch_size=2)
    batched = embedder.embed_sentences(SENTENCES)
    for sentence, vectors in zip(SENTENCES, batched):
        alone = embedder.embed_sentence(sentence)
        assert vectors.shape == (3, len(sentence.split()), 16)
        torch.testing.assert_close(vectors, alone, atol=1e-6, rtol=0)


def _recording_batch_lengths(embedder: ElmoEmbedder) -> list[list[int]]:
    """Record the sentence lengths of each batch ``embedder`` computes, in the order computed."""
    seen, embed_batch = [], embedder.embed_batch
    embedder.embed_batch = lambda batch: seen.append([len(s) for s in batch]) or embed_batch(batch)
    return seen


@pytest.mark.parametrize("stateful", [False, True])
def test_a_stream_sorts_each_window_and_yields_in_input_order(tiny_bilm, stateful):
    lengths = [1, 5, 2, 4, 3, 6, 2, 7, 1]  # windows of 2 batches of 2: 4 sentences
    sentences = [["bank"] * n for n in lengths]
    embedder = ElmoEmbedder(tiny_bilm, batch_size=2, stateful=stateful)
    seen = _recording_batch_lengths(embedder)
    counts = []
    vectors = list(embedder.stream_sentences(iter(sentences), window=2, on_batch=counts.append))
    assert [v.shape for v in vectors] == [(3, n, 16) for n in lengths]
    if stateful:  # each row continues the row before it: consecutive sentences
        assert seen == [[1, 5], [2, 4], [3, 6], [2, 7], [1]]
    else:  # longest first within each window, never across one
        assert seen == [[5, 4], [2, 1], [7, 6], [3, 2], [1]]
        alone = ElmoEmbedder(tiny_bilm, batch_size=2).embed_sentences(sentences)
        for streamed, expected in zip(vectors, alone):
            torch.testing.assert_close(streamed, expected, atol=1e-6, rtol=0)
    assert counts == [2, 2, 2, 2, 1]
    top = list(embedder.stream_sentences(sentences, window=2, keep=lambda v: v[-1].clone()))
    assert [v.shape for v in top] == [(n, 16) for n in lengths]  # only what ``keep`` keeps
    if not stateful:
        for kept, layers in zip(top, vectors):
            assert torch.equal(kept, layers[-1])
    with pytest.raises(ValueError, match="window"):
        next(embedder.stream_sentences(sentences, window=0))


def test_output_choices(tiny_bilm):
    embedder = ElmoEmbedder(tiny_bilm)
    layers = embedder.embed_sentence("the bank of the river")
    torch.testing.assert_close(embedder.embed_sentence("the bank of the river", output="top"), layers[-1])
    torch.testing.assert_close(
        embedder.embed_sentence("the bank of the river", output="average"), layers.mean(0)
    )
    torch.testing.assert_close(embedder.embed_sentence("the bank of the river", output=1), layers[1])
    as_numpy = embedder.embed_sentence(["the", "bank"], output="top", numpy=True)
    assert isinstance(as_numpy, np.ndarray) and as_numpy.shape == (2, 16)
    with pytest.raises(ValueError, match="output must be one of"):
        embedder.embed_sentence("x", output="mix")
    with pytest.raises(ValueError, match="out of range"):
        embedder.embed_sentence("x", output=3)


def test_context_changes_lstm_layers_but_not_the_token_layer(tiny_bilm):
    money, river = ElmoEmbedder(tiny_bilm).embed_sentences([SENTENCES[0], SENTENCES[2]])
    torch.testing.assert_close(money[0, 4], river[0, 4])  # characters only
    assert not torch.allclose(money[1, 4], river[1, 4])  # contextual


def test_stateful_mode_carries_state_per_row(tiny_bilm):
    stateless = ElmoEmbedder(tiny_bilm, batch_size=2)
    stateful = ElmoEmbedder(tiny_bilm, batch_size=2, stateful=True)
    first = stateful.embed_batch(SENTENCES[:2]).layers
    torch.testing.assert_close(first, stateless.embed_batch(SENTENCES[:2]).layers)
    again = stateful.embed_batch(SENTENCES[:2]).layers
    assert not torch.allclose(first, again)  # the second batch started from the first's state
    stateful.reset_state()
    torch.testing.assert_close(stateful.embed_batch(SENTENCES[:2]).layers, first)
    torch.testing.assert_close(stateless.embed_batch(SENTENCES[:2]).layers, first)


def test_elmo_module_mixes_and_can_be_fine_tuned(tiny_bilm):
    elmo = Elmo(tiny_bilm, num_output_representations=2, dropout=0.0, do_layer_norm=True)
    output = elmo(batch_to_ids([["a", "b", "c"], ["d"]]))
    assert [r.shape for r in output.representations] == [(2, 3, 16), (2, 3, 16)]
    assert output.mask.tolist() == [[True, True, True], [True, False, False]]
    output.representations[0].sum().backward()
    assert elmo.scalar_mixes[0].scalar_parameters.grad is not None
    assert all(p.grad is None for p in tiny_bilm.parameters())  # frozen by default

    tuned = Elmo(tiny_bilm, requires_grad=True, keep_sentence_boundaries=True, dropout=0.0)
    out = tuned(batch_to_ids([["a", "b"]]))
    assert out.representations[0].shape == (1, 4, 16)  # <S> a b </S>
    out.representations[0].sum().backward()
    assert tiny_bilm.char_cnn.projection.weight.grad is not None


def test_an_inference_kernel_cannot_fine_tune_but_runs_a_frozen_elmo(tiny_bilm, monkeypatch):
    monkeypatch.setattr("elmo.kernels.bf16.native_bf16", lambda device_type: True)
    with pytest.raises(ValueError, match=r"kernel 'bf16' is for inference, and requires_grad=True"):
        Elmo(tiny_bilm, requires_grad=True, kernel="bf16")
    frozen = Elmo(tiny_bilm, kernel="bf16", dropout=0.0)
    frozen(batch_to_ids([["a", "b"]])).representations[0].sum().backward()  # the mix learns
    assert frozen.scalar_mixes[0].scalar_parameters.grad is not None


def test_readme_bank_example_runs_as_written(tmp_path, tiny_bilm, capsys):
    """The README's Python example, verbatim, in a directory where its model path exists."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"## Embeddings in a few lines\n\n```python\n(.*?)```", readme, re.DOTALL).group(1)
    model_path = re.search(r'from_pretrained\("([^"]+)"\)', code).group(1)
    save_pretrained(tiny_bilm, tmp_path / model_path)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102  (the README's own code)
    finally:
        os.chdir(cwd)
    printed = capsys.readouterr().out
    cosine = float(re.search(r"tensor\(([-0-9.]+)", printed).group(1))
    assert -1.0 <= cosine < 1.0  # "bank" differs in its two contexts


# ------------------------------------------------------------------------------------------------
# sentencepiece models: one vector per whitespace word, pooled from its pieces


@pytest.fixture
def piece_embedder(tiny_bilm):
    from sentencepiece_text import small_tokenizer

    return ElmoEmbedder(tiny_bilm, batch_size=2, tokenizer=small_tokenizer())


def test_pieces_pool_to_one_vector_per_whitespace_word(piece_embedder):
    sentences = ["The neighbour remembered Привет", "我们今天去公园散步。", "naïve café ☃ !"]
    pieces = [piece_embedder.tokenizer.word_units(s.split()) for s in sentences]
    assert any(len(word) > 1 for sentence in pieces for word in sentence)  # split words
    vectors = piece_embedder.embed_sentences(sentences, output="all")
    assert [v.shape for v in vectors] == [(3, 4, 16), (3, 1, 16), (3, 4, 16)]
    alone = piece_embedder.embed_sentence(sentences[2], output="all")
    torch.testing.assert_close(alone, vectors[2])  # padding and batch do not matter


def test_piece_vectors_on_request_and_the_pooling_choices(tiny_bilm, piece_embedder):
    sentence = "The neighbour remembered Привет"
    counts = [len(word) for word in piece_embedder.tokenizer.word_units(sentence.split())]
    by_piece = ElmoEmbedder(tiny_bilm, tokenizer=piece_embedder.tokenizer, units="pieces")
    pieces = by_piece.embed_sentence(sentence, output="top")  # (P, 2D)
    assert pieces.shape == (sum(counts), 16)
    assert len(by_piece.units_of(sentence)) == sum(counts)
    ends = np.cumsum(counts)
    for pooling, rows in [("first", ends - counts), ("last", ends - 1)]:
        embedder = ElmoEmbedder(tiny_bilm, tokenizer=piece_embedder.tokenizer, pooling=pooling)
        torch.testing.assert_close(embedder.embed_sentence(sentence, output="top"), pieces[rows])
    mean = piece_embedder.embed_sentence(sentence, output="top")
    torch.testing.assert_close(mean[1], pieces[ends[0] : ends[1]].mean(dim=0))
    with pytest.raises(ValueError, match="units"):
        ElmoEmbedder(tiny_bilm, units="bytes")
    with pytest.raises(ValueError, match="pooling"):
        ElmoEmbedder(tiny_bilm, pooling="max")


def test_a_sentencepiece_directory_embeds_raw_text_with_nothing_else(tmp_path, tiny_bilm):
    from sentencepiece_text import small_tokenizer

    save_pretrained(tiny_bilm, tmp_path / "model", tokenizer=small_tokenizer())
    embedder = ElmoEmbedder.from_pretrained(tmp_path / "model")
    assert embedder.tokenizer.kind == "sentencepiece"
    vectors = embedder.embed_sentences(["Кошка спала .", "河边有一座古老的桥。 ok"], output="average")
    assert [v.shape for v in vectors] == [(3, 16), (2, 16)]


def test_kernel_and_cache_settings_agree_with_the_defaults(tiny_bilm):
    sentences = [s.split() for s in SENTENCES] * 3
    reference = ElmoEmbedder(tiny_bilm, batch_size=2, cache_size=0).embed_sentences(sentences)
    for options in ({}, {"kernel": "fused"}, {"kernel": "fused", "cache_size": 0}):
        embedder = ElmoEmbedder(tiny_bilm, batch_size=2, **options)
        for actual, expected in zip(embedder.embed_sentences(sentences), reference):
            torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)
    assert embedder.token_cache.hits == 0  # cache_size=0: off


def test_fast_is_a_deprecated_name_of_the_fused_kernel(tiny_bilm):
    with pytest.warns(DeprecationWarning, match="kernel='fused'"):
        embedder = ElmoEmbedder(tiny_bilm, fast=True)
    assert embedder.bilm.kernel.name == "fused"
    assert ElmoEmbedder(tiny_bilm).bilm.kernel.name == "fused"  # None keeps the biLM's
    assert ElmoEmbedder(tiny_bilm, kernel="exact").bilm.kernel.name == "exact"


# ------------------------------------------------------------------------------------------------
# A Transformer biLM (tiny_transformer: L = 4 layers): the same API, stateless only


def test_a_transformer_embeds_all_its_layers_in_input_order(tiny_transformer):
    embedder = ElmoEmbedder(tiny_transformer, batch_size=2)
    assert embedder.num_layers == 4 and embedder.dim == 16
    for sentence, vectors in zip(SENTENCES, embedder.embed_sentences(SENTENCES)):
        assert vectors.shape == (4, len(sentence.split()), 16)
        torch.testing.assert_close(vectors, embedder.embed_sentence(sentence), atol=1e-6, rtol=0)
    weights = (1.0, 0.0, 0.0, 3.0)  # a mix takes as many weights as there are layers
    layers = embedder.embed_sentence("the bank of the river")
    torch.testing.assert_close(embedder.embed_sentence("the bank of the river", output=weights),
                               (layers[0] + 3 * layers[3]) / 4)  # fmt: skip
    with pytest.raises(ValueError, match="4 non-negative numbers"):
        embedder.embed_sentence("x", output=(1.0, 1.0, 1.0))


def test_a_transformer_refuses_stateful_use(tiny_transformer):
    with pytest.raises(ValueError, match="stateful=True has no meaning for a transformer biLM"):
        ElmoEmbedder(tiny_transformer, stateful=True)


def test_elmo_mixes_a_transformer_s_layers(tiny_transformer):
    elmo = Elmo(tiny_transformer, num_output_representations=2, dropout=0.0, do_layer_norm=True)
    output = elmo(batch_to_ids([["a", "b", "c"], ["d"]]))
    assert output.layers.shape == (4, 2, 3, 16)
    assert [r.shape for r in output.representations] == [(2, 3, 16), (2, 3, 16)]
    output.representations[0].sum().backward()
    assert elmo.scalar_mixes[0].scalar_parameters.grad.shape == (4,)


def test_a_transformer_with_sentencepiece_units_pools_words(tmp_path, tiny_transformer):
    from sentencepiece_text import small_tokenizer

    save_pretrained(tiny_transformer, tmp_path / "model", tokenizer=small_tokenizer())
    embedder = ElmoEmbedder.from_pretrained(tmp_path / "model")
    sentences = ["Кошка спала .", "河边有一座古老的桥。 ok"]
    vectors = embedder.embed_sentences(sentences, output="all")
    assert [v.shape for v in vectors] == [(4, 3, 16), (4, 2, 16)]


def _lane_bilm(tiny_config) -> BiLM:
    """``tiny_config`` with a cell size lanes take (a multiple of 64), seeded weights."""
    config = dataclasses.replace(tiny_config, lstm=dataclasses.replace(tiny_config.lstm, cell_size=64))
    torch.manual_seed(0)
    return BiLM(config).eval()


@pytest.mark.parametrize("kernel", ["exact", "fused", "bf16"])
def test_one_sentence_at_a_time_runs_the_sentences_as_lanes_with_the_same_bits(
    kernel, tiny_config, monkeypatch
):
    """Each sentence's vectors as without lanes; the fused and bf16 kernels run one sentence as
    the exact kernel does (a small layer), so theirs are the exact kernel's too."""
    from elmo.embedder import LANES
    from elmo.kernels import bf16, lanes

    monkeypatch.setattr(bf16, "native_bf16", lambda device_type: True)  # emulated: the same values

    runs, lanes_layer = [], lanes.lanes_layer

    def counting(layer, inputs, *args):
        runs.append(len(inputs))
        return lanes_layer(layer, inputs, *args)

    monkeypatch.setattr(lanes, "lanes_layer", counting)
    words = ["the", "bank", "of", "the", "river", "is", "near", "a", "bank", "of", "America"]
    words += ["and", "we", "sat", "there"]
    sentences = [words[i % 7 : i % 7 + 1 + (i * 5) % 11] for i in range(LANES + 9)]  # 1-11 words
    plain = ElmoEmbedder(_lane_bilm(tiny_config), batch_size=1)
    monkeypatch.setattr(plain, "_as_lanes", lambda encoded: False)
    expected = plain.embed_sentences(sentences)
    assert runs == []
    embedder = ElmoEmbedder(_lane_bilm(tiny_config), batch_size=1, kernel=kernel)
    seen = _recording_batch_lengths(embedder)
    actual = embedder.embed_sentences(sentences)
    assert [len(batch) for batch in seen] == [LANES, 9]  # longest first, LANES at a time
    assert runs and max(runs) == LANES  # every layer of both stacks ran them as lanes
    for a, e in zip(actual, expected, strict=True):
        assert torch.equal(a, e)


def test_lanes_only_where_nothing_else_depends_on_the_other_sentences(tiny_config, tiny_bilm):
    assert ElmoEmbedder(_lane_bilm(tiny_config), batch_size=1)._as_lanes(encoded=True)
    assert not ElmoEmbedder(_lane_bilm(tiny_config), batch_size=1)._as_lanes(encoded=False)  # the CNN
    for kwargs in ({"batch_size": 2}, {"stateful": True}):
        embedder = ElmoEmbedder(_lane_bilm(tiny_config), **{"batch_size": 1, **kwargs})
        assert not embedder._as_lanes(encoded=True), kwargs
    for kernel in ("fused", "bf16"):  # they honour rows_alone() too (tests/kernels/test_lanes.py)
        assert ElmoEmbedder(_lane_bilm(tiny_config), batch_size=1, kernel=kernel)._as_lanes(encoded=True)
    cache_off = ElmoEmbedder(_lane_bilm(tiny_config), batch_size=1, cache_size=0)
    assert not cache_off._encode_ahead([["the", "bank"]])  # no cache: the CNN runs per batch


def test_where_lanes_do_not_apply_the_sentences_run_one_by_one_with_the_same_bits(tiny_bilm, monkeypatch):
    sentences = [s.split() for s in SENTENCES * 5]  # the tiny model's cell size, 16, takes no lanes
    plain = ElmoEmbedder(tiny_bilm, batch_size=1)
    monkeypatch.setattr(plain, "_as_lanes", lambda encoded: False)
    expected = plain.embed_sentences(sentences)
    embedder = ElmoEmbedder(tiny_bilm, batch_size=1)
    assert embedder._as_lanes(encoded=True)
    for actual, wanted in zip(embedder.embed_sentences(sentences), expected, strict=True):
        assert torch.equal(actual, wanted)


def test_lanes_need_every_token_of_the_window_cached_with_room_for_the_boundaries(tiny_config):
    sentence = ["the", "bank", "of", "the", "river"]  # 4 distinct words
    for cache_size, encoded in ((6, True), (5, False), (3, False)):
        embedder = ElmoEmbedder(_lane_bilm(tiny_config), batch_size=1, cache_size=cache_size)
        assert embedder._encode_ahead([sentence]) is encoded, cache_size
