"""Names and relative paths to files: the lookup order, data sets and models by name, the cache.

Downloads come from a local server (``hub_settings``); the catalog's own entries are checked
against the copies in ``../shared/data``, so its checksums are right without any download.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml
from shared_data import shared_path

from elmo.hub import (
    DATASETS,
    MODELS,
    ChecksumError,
    DataSet,
    OfflineError,
    RemoteFile,
    cache_dir,
    cached_model,
    fetch_dataset,
    fetch_model,
    resolve_data_path,
)
from elmo.hub.catalog import data_file
from elmo.hydra_app import CONFIGS
from elmo.published import write_random_published
from elmo.tasks.config import PosTaskConfig

TOY = b"the cat sat on the mat .\n" * 10


@pytest.fixture
def toy_data_set(monkeypatch, file_server) -> DataSet:
    """A data set ``toy`` with one file, ``toy/train.txt``, served by ``file_server``."""
    remote = RemoteFile("data/toy/train.txt", "https://example.invalid/train.txt",
                        hashlib.sha256(TOY).hexdigest())  # fmt: skip
    file_server.files[remote.path] = TOY
    data_set = DataSet("toy", "a toy corpus", "none", 0.0, (remote,))
    monkeypatch.setitem(DATASETS, "toy", data_set)
    return data_set


def test_a_data_file_found_locally_is_used_without_a_download(
    hub_settings, toy_data_set, file_server, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "data" / "toy" / "train.txt"
    local.parent.mkdir(parents=True)
    local.write_bytes(b"mine\n")
    assert resolve_data_path("toy/train.txt") == str(local)
    assert file_server.requests == []


def test_a_known_data_file_found_nowhere_is_downloaded_into_the_cache(
    hub_settings, toy_data_set, file_server, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    path = resolve_data_path("toy/train.txt")
    assert path == str(hub_settings / "data" / "toy" / "train.txt")
    assert Path(path).read_bytes() == TOY
    assert resolve_data_path("toy/train.txt") == path  # now found in the cache
    assert len(file_server.requests) == 1


def test_an_unknown_data_file_names_every_place_tried(hub_settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as caught:
        resolve_data_path("nowhere/train.txt")
    message = str(caught.value)
    assert str(tmp_path / "data" / "nowhere" / "train.txt") in message
    assert str(hub_settings / "data" / "nowhere" / "train.txt") in message
    assert "wikitext2" in message  # the names that would be fetched


def test_an_absolute_path_is_used_as_given(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("a b c\n")
    assert resolve_data_path(str(path)) == str(path)
    with pytest.raises(FileNotFoundError, match="no file matches"):
        resolve_data_path(str(tmp_path / "absent.txt"))


def test_elmo_download_of_a_data_set_fills_the_cache(hub_settings, toy_data_set):
    assert fetch_dataset("toy") == [hub_settings / "data" / "toy" / "train.txt"]
    with pytest.raises(ValueError, match="no data set is called 'nope'"):
        fetch_dataset("nope")


def test_the_cache_folder_defaults_to_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("ELMO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "elmo"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "elmo"
    monkeypatch.setenv("ELMO_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


# ------------------------------------------------------------------------------------------------
# The catalog


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_the_catalog_checksums_are_those_of_the_shared_copies(name):
    for remote in DATASETS[name].files:
        local = shared_path("data", remote.path.removeprefix("data/"))
        assert hashlib.sha256(local.read_bytes()).hexdigest() == remote.sha256, remote.path


@pytest.mark.parametrize("option", ["wikitext2", "ptb"])
def test_every_file_a_data_option_names_is_known(option):
    values = yaml.safe_load((CONFIGS / "data" / f"{option}.yaml").read_text())
    for split in ("train", "valid", "test"):
        assert data_file(values[split]) is not None, values[split]


def test_the_pos_probe_files_are_known():
    task = PosTaskConfig()
    for file_name in (task.train, task.dev, task.test):
        assert data_file(f"{task.data_dir}/{file_name}") is not None


def test_a_machine_without_shared_data_fetches_wikitext2_itself(
    hub_settings, file_server, tmp_path, monkeypatch
):
    """The README's main job on a fresh machine: data=wikitext2 is downloaded (here from a local
    copy of the shared file) and checked against the catalog's real checksum."""
    from elmo.hub import resolve

    valid = shared_path("data", "wikitext-2", "wiki.valid.tokens")
    file_server.files["data/wikitext-2/wiki.valid.tokens"] = valid.read_bytes()
    monkeypatch.setattr(resolve, "checkout", lambda: None)  # no checkout with ../shared beside it
    monkeypatch.chdir(tmp_path)
    path = resolve_data_path("wikitext-2/wiki.valid.tokens")
    assert path == str(hub_settings / "data" / "wikitext-2" / "wiki.valid.tokens")
    assert Path(path).read_bytes() == valid.read_bytes()


def test_the_published_models_come_from_allennlp():
    assert set(MODELS) == {"elmo-small", "elmo-medium", "elmo-original", "elmo-original-5.5b"}
    for model in MODELS.values():
        for remote in (model.options, model.weights):
            assert remote.url.startswith("https://s3-us-west-2.amazonaws.com/allennlp/models/elmo/")
            assert remote.path.startswith(f"models/{model.name}/elmo_")


# ------------------------------------------------------------------------------------------------
# Published models


@pytest.fixture
def served_small(hub_settings, file_server, tiny_config, tmp_path):
    """A random tiny model in the published format, served as ``elmo-small``."""
    from http_server import serve_published_model

    files = write_random_published(tiny_config, tmp_path / "source", seed=3)
    serve_published_model(file_server, "elmo-small", *files)
    return files


def test_a_model_is_downloaded_once_and_its_sums_recorded(served_small, hub_settings, file_server):
    options, weights = fetch_model("elmo-small")
    assert options.read_bytes() == served_small[0].read_bytes()
    assert weights.read_bytes() == served_small[1].read_bytes()
    sums = (options.parent / "SHA256SUMS").read_text()
    assert f"{hashlib.sha256(weights.read_bytes()).hexdigest()}  {weights.name}" in sums
    assert cached_model(MODELS["elmo-small"]) == (options, weights)
    assert fetch_model("elmo-small") == (options, weights)
    assert len(file_server.requests) == 2  # options and weights, once each


def test_a_cached_model_that_changed_is_refused(served_small):
    _, weights = fetch_model("elmo-small")
    with open(weights, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ChecksumError, match="changed since it was downloaded.*delete"):
        fetch_model("elmo-small")


def test_a_cached_model_loads_offline(served_small, monkeypatch, file_server):
    fetch_model("elmo-small")
    monkeypatch.setenv("ELMO_OFFLINE", "1")
    fetch_model("elmo-small")
    assert len(file_server.requests) == 2


def test_an_unknown_model_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="no published model is called 'elmo-huge'.*elmo-small"):
        fetch_model("elmo-huge")


def test_an_uncached_model_offline_names_both_files_in_one_line(hub_settings, monkeypatch):
    monkeypatch.setenv("ELMO_OFFLINE", "1")
    with pytest.raises(OfflineError) as caught:
        fetch_model("elmo-medium")
    message = str(caught.value)
    assert "\n" not in message and "(model elmo-medium) are not in the cache" in message
    for remote in (MODELS["elmo-medium"].options, MODELS["elmo-medium"].weights):
        assert f"save it as {hub_settings / remote.path}" in message
