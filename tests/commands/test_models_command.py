"""``elmo models``: the names, their sizes, and which are in the cache."""

from __future__ import annotations

from elmo.cli import main


def _row(output: str, name: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.startswith(name + " "))


def test_models_lists_every_name_with_its_size_and_cache_state(hub_settings, capsys):
    assert main(["models"]) == 0
    output = capsys.readouterr().out
    assert f"cache: {hub_settings}" in output
    assert _row(output, "elmo-small")[:4] == ["elmo-small", "13.6M", "54", "MB"]
    assert _row(output, "elmo-original-5.5b")[1] == "93.6M"
    assert _row(output, "wikitext2")[3] == "no"
    assert _row(output, "ud-english-ewt")[0] == "ud-english-ewt"


def test_a_downloaded_model_shows_as_cached(
    hub_settings, file_server, tiny_config, tmp_path, capsys
):
    from http_server import serve_published_model

    from elmo.published import write_random_published

    serve_published_model(file_server, "elmo-small", *write_random_published(tiny_config, tmp_path))
    assert main(["download", "elmo-small"]) == 0
    capsys.readouterr()
    main(["models"])
    output = capsys.readouterr().out
    assert _row(output, "elmo-small")[4] == "yes" and _row(output, "elmo-medium")[4] == "no"
