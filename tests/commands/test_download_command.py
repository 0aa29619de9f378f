"""``elmo download NAME``: a model or a data set into the cache, and one-line errors."""

from __future__ import annotations

from elmo.cli import main
from elmo.hub import MODELS


def test_download_fetches_a_model_and_prints_its_files(
    hub_settings, file_server, tiny_config, tmp_path, capsys
):
    from http_server import serve_published_model

    from elmo.published import write_random_published

    serve_published_model(file_server, "elmo-small", *write_random_published(tiny_config, tmp_path))
    assert main(["download", "elmo-small"]) == 0
    printed = capsys.readouterr().out.splitlines()
    expected = [hub_settings / MODELS["elmo-small"].options.path,
                hub_settings / MODELS["elmo-small"].weights.path]  # fmt: skip
    assert printed == [f"elmo-small: {path}" for path in expected]
    assert all(path.is_file() for path in expected)


def test_an_unknown_name_is_one_line_listing_the_known_ones(hub_settings, capsys):
    assert main(["download", "elmo-huge"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(
        "elmo download: error: unknown name(s) elmo-huge"
    )
    assert "elmo-small" in error[0] and "wikitext2" in error[0]


def test_offline_download_is_one_line_saying_what_to_fetch(hub_settings, monkeypatch, capsys):
    monkeypatch.setenv("ELMO_OFFLINE", "1")
    assert main(["download", "wikitext2"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert "ELMO_OFFLINE=1 forbids downloading: fetch " in error[0]
    assert str(hub_settings / "data" / "wikitext-2" / "wiki.train.tokens") in error[0]
