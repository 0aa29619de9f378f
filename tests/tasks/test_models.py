"""The model under test and its baselines: same shape, seeded random weights, clear errors."""

from __future__ import annotations

import pytest
import torch

from elmo.published import export_published
from elmo.tasks.config import BaselinesConfig, PosTaskConfig, ProbeConfig
from elmo.tasks.models import load_models, random_like


def test_random_like_has_the_shape_and_fresh_seeded_weights(tiny_bilm):
    state = torch.random.get_rng_state()
    first, again, other = (
        random_like(tiny_bilm, 0),
        random_like(tiny_bilm, 0),
        random_like(tiny_bilm, 1),
    )
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    trained, fresh = tiny_bilm.state_dict(), first.state_dict()
    assert {k: v.shape for k, v in trained.items()} == {k: v.shape for k, v in fresh.items()}
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in fresh.items())
    assert not torch.equal(
        fresh["char_cnn.projection.weight"], other.state_dict()["char_cnn.projection.weight"]
    )


def test_load_models_with_every_baseline(tiny_model_dir, tiny_bilm, tmp_path):
    published = tmp_path / "published"
    published.mkdir()
    export_published(tiny_bilm, published / "options.json", published / "weights.hdf5")
    config = ProbeConfig(
        task=PosTaskConfig(),
        model=str(tiny_model_dir),
        baselines=BaselinesConfig(random=True, published=str(published)),
    )
    models = load_models(config)
    assert list(models) == ["model", "random", "published"]
    assert models["published"].output_dim == models["model"].output_dim == 16


def test_a_model_directory_that_does_not_exist(tmp_path):
    config = ProbeConfig(task=PosTaskConfig(), model=str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="model directory does not exist: .*nope"):
        load_models(config)


def test_a_sentencepiece_model_probes_with_one_vector_per_word(tiny_bilm, tmp_path):
    from sentencepiece_text import small_tokenizer

    from elmo.embedder import ElmoEmbedder
    from elmo.pretrained import save_pretrained
    from elmo.tasks.features import token_features
    from elmo.tasks.models import load_tokenizers

    directory = save_pretrained(tiny_bilm, tmp_path / "model", tokenizer=small_tokenizer())
    config = ProbeConfig(task=PosTaskConfig(), model=str(directory))
    tokenizers = load_tokenizers(config)
    assert list(tokenizers) == list(load_models(config)) == ["model", "random"]
    assert {t.kind for t in tokenizers.values()} == {"sentencepiece"}
    embedder = ElmoEmbedder(tiny_bilm, batch_size=2, tokenizer=tokenizers["model"])
    sentences = [["The", "neighbour", "remembered"], ["Привет", "мир", "!"], ["我们今天去公园散步。"]]
    assert token_features(embedder, sentences).shape == (7, 3, 16)  # (N words, L, 2D)
