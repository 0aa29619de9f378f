"""Our checkpoint directory: exact round trips, strict loading, either format through load_bilm."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from shared_data import shared_path

from elmo.data.characters import batch_to_ids
from elmo.data.vocab import Vocabulary
from elmo.files import ModelFileError
from elmo.model import BiLM
from elmo.pretrained import (
    from_pretrained,
    load_bilm,
    load_tokenizer,
    load_vocabulary,
    require_word_tokenizer,
    save_pretrained,
)
from elmo.published import load_published

TOKENS = [["The", "bank", "of", "the", "river"], ["Money", "!"]]


def test_round_trip_is_bit_exact(tmp_path, tiny_bilm):
    save_pretrained(tiny_bilm, tmp_path / "model")
    loaded = from_pretrained(tmp_path / "model")
    for name, tensor in tiny_bilm.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    with torch.no_grad():
        assert torch.equal(tiny_bilm(batch_to_ids(TOKENS)).layers, loaded(batch_to_ids(TOKENS)).layers)
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["format_version"] == 3 and config["model"]["lstm"]["cell_size"] == 16
    assert config["model"]["contextualizer"] == "lstm"
    assert config["tokenizer"]["kind"] == "words"


def test_a_transformer_directory_records_its_kind_and_round_trips(tmp_path, tiny_transformer):
    directory = save_pretrained(tiny_transformer, tmp_path / "model")
    config = json.loads((directory / "config.json").read_text())
    assert config["format_version"] == 3 and config["model"]["contextualizer"] == "transformer"
    assert config["model"]["transformer"]["num_layers"] == 3
    loaded = load_bilm(model=directory)
    assert loaded.config == tiny_transformer.config and loaded.num_layers == 4
    with torch.no_grad():
        assert torch.equal(tiny_transformer(batch_to_ids(TOKENS)).layers,
                           loaded(batch_to_ids(TOKENS)).layers)  # fmt: skip


def test_a_directory_without_the_contextualizer_reads_as_an_lstm(tmp_path, tiny_bilm):
    """Directories written before format 3 have no model.contextualizer nor model.transformer."""
    directory = save_pretrained(tiny_bilm, tmp_path / "model")
    config = json.loads((directory / "config.json").read_text())
    del config["model"]["contextualizer"], config["model"]["transformer"], config["files"]
    config["format_version"] = 2
    (directory / "config.json").write_text(json.dumps(config))
    loaded = from_pretrained(directory)
    assert loaded.config.contextualizer == "lstm" and loaded.config == tiny_bilm.config
    assert torch.equal(loaded.forward_lstm.layers[0].input_weight,
                       tiny_bilm.forward_lstm.layers[0].input_weight)  # fmt: skip


def test_model_with_softmax_saves_its_vocabulary(tmp_path, tiny_config):
    vocab = Vocabulary.build(["the bank of the river", "money in the bank"])
    tiny_config.vocab_size = len(vocab)
    model = BiLM(tiny_config).eval()
    with pytest.raises(ValueError, match="vocabulary"):
        save_pretrained(model, tmp_path / "nope")
    save_pretrained(model, tmp_path / "model", vocab)
    assert load_vocabulary(tmp_path / "model").tokens == vocab.tokens
    loaded = from_pretrained(tmp_path / "model")
    assert torch.equal(loaded.softmax.weight, model.softmax.weight)


def test_strict_loading_names_missing_and_unexpected_keys(tmp_path, tiny_bilm):
    directory = save_pretrained(tiny_bilm, tmp_path / "model")
    weights = load_file(str(directory / "model.safetensors"))
    weights.pop("char_cnn.projection.bias")
    weights["extra.weight"] = torch.zeros(1)
    save_file(weights, str(directory / "model.safetensors"))
    config = json.loads((directory / "config.json").read_text())
    del config["files"]  # as written before the sums: the keys themselves are checked
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"char_cnn\.projection\.bias.*extra\.weight"):
        from_pretrained(directory)


def test_wrong_format_version_and_missing_directory(tmp_path, tiny_bilm):
    directory = save_pretrained(tiny_bilm, tmp_path / "model")
    (directory / "config.json").write_text(json.dumps({"format_version": 99, "model": {}}))
    with pytest.raises(ValueError, match="format_version 99"):
        from_pretrained(directory)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_bilm(model=tmp_path / "absent")


def test_load_bilm_sets_the_kernel_it_is_given(tmp_path, tiny_bilm):
    directory = save_pretrained(tiny_bilm, tmp_path / "model")
    assert load_bilm(model=directory).kernel.name == "exact"
    assert load_bilm(model=directory, kernel="fused").kernel.name == "fused"
    with pytest.raises(ValueError, match="turbo"):
        load_bilm(model=directory, kernel="turbo")


def test_published_to_ours_to_published_is_exact(tmp_path):
    fixture = shared_path("fixtures", "elmo-random-mid")
    published = load_bilm(model=fixture)  # a directory with options.json + weights.hdf5
    save_pretrained(published, tmp_path / "ours")
    ours = from_pretrained(tmp_path / "ours")
    direct = load_published(fixture / "options.json", fixture / "weights.hdf5")
    for name, tensor in direct.state_dict().items():
        assert torch.equal(tensor, ours.state_dict()[name]), name


def test_a_sentencepiece_model_saves_its_tokenizer(tmp_path, tiny_bilm):
    from sentencepiece_text import corpus_lines, small_tokenizer

    tokenizer = small_tokenizer("bpe", pooling="first")
    directory = save_pretrained(tiny_bilm, tmp_path / "model", tokenizer=tokenizer)
    assert (directory / "sentencepiece.model").is_file()
    loaded = load_tokenizer(directory)
    assert loaded.config == tokenizer.config
    assert loaded.units(corpus_lines()[-1]) == tokenizer.units(corpus_lines()[-1])
    with pytest.raises(ValueError, match="elmo senses works on word-level models"):
        require_word_tokenizer(directory, "elmo senses")
    save_pretrained(tiny_bilm, directory)  # saved again as a words model: no stale piece model
    assert not (directory / "sentencepiece.model").exists()
    assert load_tokenizer(directory).kind == "words"


def test_a_sentencepiece_directory_without_its_model_file_is_an_error(tmp_path, tiny_bilm):
    from sentencepiece_text import small_tokenizer

    directory = save_pretrained(tiny_bilm, tmp_path / "model", tokenizer=small_tokenizer())
    (directory / "sentencepiece.model").unlink()
    with pytest.raises(FileNotFoundError, match="sentencepiece.model is missing"):
        load_tokenizer(directory)


def test_a_format_1_directory_still_loads_and_reads_words(tmp_path, tiny_bilm):
    directory = save_pretrained(tiny_bilm, tmp_path / "model")
    config = json.loads((directory / "config.json").read_text())
    del config["tokenizer"], config["files"]  # format 1 predates both
    config["format_version"] = 1
    (directory / "config.json").write_text(json.dumps(config))
    loaded = from_pretrained(directory)
    assert torch.equal(loaded.char_cnn.projection.weight, tiny_bilm.char_cnn.projection.weight)
    assert load_tokenizer(directory).kind == "words"


# ------------------------------------------------------------------------------------------------
# Published models by name (served by a local server: ``hub_settings``)


@pytest.fixture
def small_by_name(hub_settings, file_server, tiny_config, tmp_path):
    """A random tiny published-format model, served as ``elmo-small``; its two local files."""
    from http_server import serve_published_model

    from elmo.published import write_random_published

    files = write_random_published(tiny_config, tmp_path / "source", seed=5)
    serve_published_model(file_server, "elmo-small", *files)
    return files


def test_load_bilm_takes_a_published_models_name(small_by_name):
    by_name = load_bilm("elmo-small", kernel="fused")
    direct = load_published(*small_by_name)
    assert by_name.kernel.name == "fused"
    for name, tensor in direct.state_dict().items():
        assert torch.equal(tensor, by_name.state_dict()[name]), name


def test_a_local_path_wins_over_a_name(small_by_name, file_server, tmp_path, monkeypatch, tiny_bilm):
    monkeypatch.chdir(tmp_path)
    save_pretrained(tiny_bilm, tmp_path / "elmo-small")
    loaded = load_bilm("elmo-small")
    for name, tensor in tiny_bilm.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    assert file_server.requests == []


def test_the_embedder_apis_take_a_name(small_by_name):
    from elmo import Elmo, ElmoEmbedder

    embedder = ElmoEmbedder.from_pretrained("elmo-small")
    direct = ElmoEmbedder.from_published(*small_by_name)
    assert torch.equal(embedder.embed_sentences([TOKENS[0]])[0],
                       direct.embed_sentences([TOKENS[0]])[0])  # fmt: skip
    layer = Elmo.from_pretrained("elmo-small", num_output_representations=1, dropout=0.0)
    assert layer(batch_to_ids(TOKENS)).representations[0].shape[:2] == (2, 5)


def _flip_byte(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_each_file_is_recorded_by_its_sha256_and_a_flipped_byte_is_refused(tmp_path, tiny_config):
    vocab = Vocabulary.build(["the bank of the river", "money in the bank"])
    tiny_config.vocab_size = len(vocab)
    directory = save_pretrained(BiLM(tiny_config).eval(), tmp_path / "model", vocab)
    sums = json.loads((directory / "config.json").read_text())["files"]
    assert sorted(sums) == ["config.json", "model.safetensors", "vocab.txt"]

    weights = directory / "model.safetensors"
    _flip_byte(weights, weights.stat().st_size - 5)  # inside the last tensor's values
    with pytest.raises(ModelFileError, match=r"model\.safetensors is damaged"):
        load_bilm(directory)
    save_pretrained(BiLM(tiny_config).eval(), directory, vocab)  # a save makes it whole again
    _flip_byte(directory / "vocab.txt", 0)
    with pytest.raises(ModelFileError, match=r"vocab\.txt is damaged"):
        load_vocabulary(directory)


def test_a_config_json_that_is_not_json_names_the_file(tmp_path, tiny_bilm):
    directory = save_pretrained(tiny_bilm, tmp_path / "model")
    config = directory / "config.json"
    config.write_text(config.read_text()[:-20])  # truncated
    with pytest.raises(ModelFileError, match=r"config\.json: not valid JSON"):
        load_bilm(directory)
    save_pretrained(tiny_bilm, directory)
    config.write_text(config.read_text().replace('"files"', '"fhles"'))  # would skip the sums
    with pytest.raises(ModelFileError, match=r"config\.json: unknown keys \['fhles'\]"):
        load_bilm(directory)
    save_pretrained(tiny_bilm, directory)
    config.write_text(config.read_text().replace('"forget_bias": 1.0', '"forget_bias": 0.0'))
    with pytest.raises(ModelFileError, match=r"config\.json is damaged"):  # valid JSON, wrong value
        load_bilm(directory)


def test_a_directory_without_sums_loads_but_refuses_nan_weights(tmp_path, tiny_bilm):
    directory = save_pretrained(tiny_bilm, tmp_path / "model")
    config = json.loads((directory / "config.json").read_text())
    del config["files"]  # as written before the sums
    (directory / "config.json").write_text(json.dumps(config))
    assert torch.equal(from_pretrained(directory).char_cnn.projection.bias,
                       tiny_bilm.char_cnn.projection.bias)  # fmt: skip
    weights = load_file(str(directory / "model.safetensors"))
    weights["char_cnn.projection.bias"][0] = float("nan")
    save_file(weights, str(directory / "model.safetensors"))
    with pytest.raises(ModelFileError, match=r"model\.safetensors: char_cnn\.projection\.bias"):
        from_pretrained(directory)
