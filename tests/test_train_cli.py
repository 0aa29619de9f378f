"""``elmo-train`` from the command line: fine-tuning from existing weights, and config errors.

``init_from`` starts training from a model instead of random weights: a directory in the
published format (options.json + weights.hdf5, no vocabulary: the run builds one and a new
softmax) or one of our pretrained directories (its vocabulary and softmax are reused). With a
learning rate of 1e-9 one step barely moves the weights, so the exported model must still be the
source model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from reference_elmo import write_random_published_model
from shared_data import shared_path

from elmo.data.vocab import Vocabulary
from elmo.pretrained import from_pretrained, load_bilm

# The published source's shape differs from every configs/model option, so a run that ignored
# init_from (and built model=small, the default) could not pass.
SOURCE_SHAPE = {
    "char_dim": 4, "filters": [[1, 4], [2, 8], [3, 8]], "n_highway": 1, "lstm_dim": 24,
    "projection_dim": 12, "n_layers": 2, "activation": "tanh", "cell_clip": 3.0, "proj_clip": 3.0,
}  # fmt: skip
ONE_TINY_STEP = [
    "model.softmax.kind=full",  # the default model's adaptive softmax needs a wider source
    "data.valid=null",
    "data.test=null",
    "data.batch_size=4",
    "data.unroll_steps=8",
    "trainer=cpu",
    "trainer.num_threads=1",
    "trainer.max_steps=1",
    "trainer.lr=1e-9",
    "export_published=false",
]


def _elmo_train(output_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "elmo.train", f"output_dir={output_dir}", *overrides],
        check=False,
        env=env,
        cwd=output_dir.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _train(output_dir: Path, *overrides: str) -> None:
    result = _elmo_train(output_dir, *overrides)
    assert result.returncode == 0, result.stderr[-3000:]


def _corpus(path: Path, start: int, count: int) -> Path:
    """``count`` non-empty lines of WikiText-2's training text from line ``start`` on."""
    source = shared_path("data", "wikitext-2", "wiki.train.tokens")
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    path.write_text("\n".join(lines[start : start + count]) + "\n", encoding="utf-8")
    return path


def _assert_close(actual: dict, expected: dict, keys) -> None:
    for key in keys:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=1e-6, msg=key)


@pytest.fixture(scope="module")
def fine_tuned_from_published(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(published source dir, run dir, corpus) of one step from a random published model."""
    root = tmp_path_factory.mktemp("init_from_published")
    source = root / "published"
    write_random_published_model(source, **SOURCE_SHAPE, seed=3)
    corpus = _corpus(root / "train.txt", 0, 40)
    _train(root / "run", f"data.train={corpus}", f"init_from={source}", *ONE_TINY_STEP)
    return source, root / "run", corpus


def test_init_from_a_published_model_starts_from_its_weights(fine_tuned_from_published):
    source_dir, run, corpus = fine_tuned_from_published
    source = load_bilm(model=source_dir).state_dict()
    tuned = from_pretrained(run / "model")

    assert tuned.config.lstm.cell_size == 24 and tuned.config.char_cnn.activation == "tanh"
    encoder = [key for key in tuned.state_dict() if not key.startswith("softmax.")]
    assert set(encoder) == set(source)
    _assert_close(tuned.state_dict(), source, encoder)
    # The published model has no softmax: a new one over a vocabulary built from the corpus.
    vocab = Vocabulary.load(run / "vocab.txt")
    assert tuned.config.vocab_size == len(vocab) == len(Vocabulary.build(corpus.open()))


def test_init_from_our_pretrained_dir_reuses_its_vocab_and_softmax(
    fine_tuned_from_published, tmp_path
):
    _, previous_run, _ = fine_tuned_from_published
    source_dir = previous_run / "model"
    source = from_pretrained(source_dir)
    other_text = _corpus(tmp_path / "other.txt", 1000, 40)  # would build another vocabulary

    _train(tmp_path / "run", f"data.train={other_text}", f"init_from={source_dir}", *ONE_TINY_STEP)

    tuned = from_pretrained(tmp_path / "run" / "model")
    assert (tmp_path / "run" / "vocab.txt").read_text() == (source_dir / "vocab.txt").read_text()
    assert tuned.config == source.config
    _assert_close(tuned.state_dict(), source.state_dict(), source.state_dict())  # softmax too
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    assert history[0]["step"] == 1 and history[0]["loss"] > 0


def test_init_from_a_published_models_name(hub_settings, file_server, tmp_path):
    """``init_from=elmo-small``: fetched by name (here from a local server), then as a directory."""
    from http_server import serve_published_model

    files = write_random_published_model(tmp_path / "published", **SOURCE_SHAPE, seed=4)
    serve_published_model(file_server, "elmo-small", *files)
    corpus = _corpus(tmp_path / "train.txt", 0, 40)
    _train(tmp_path / "run", f"data.train={corpus}", "init_from=elmo-small", *ONE_TINY_STEP)
    source = load_bilm(model=tmp_path / "published").state_dict()
    tuned = from_pretrained(tmp_path / "run" / "model").state_dict()
    _assert_close(tuned, source, source)


def test_an_input_that_cannot_be_fetched_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("ELMO_CACHE", str(tmp_path / "cache"))  # empty; ELMO_OFFLINE=1 in tests
    corpus = _corpus(tmp_path / "train.txt", 0, 40)
    result = _elmo_train(tmp_path / "run", f"data.train={corpus}", "init_from=elmo-small",
                         "trainer.num_threads=1")  # fmt: skip
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("elmo-train: error: ") and "ELMO_OFFLINE=1 forbids downloading" in error
    assert not (tmp_path / "run" / "vocab.txt").exists()  # nothing was trained


def test_missing_training_text_is_one_clear_line(tmp_path):
    result = _elmo_train(tmp_path / "run", "data=text", "trainer.num_threads=1")

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        (
            "elmo-train: error: missing required value(s) data.train; give them as overrides, "
            "e.g. data.train=/path/to/train.txt"
        )
    ]
    assert not (tmp_path / "run").exists()  # a run that did nothing leaves nothing (train.log)


def test_multirun_sweep_jobs_train_in_their_own_folders(tmp_path):
    """Each job of a sweep gets its own output folder (a shared one would resume the other job)."""
    text = _corpus(tmp_path / "train.txt", 0, 40)
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [sys.executable, "-m", "elmo.train", "--multirun", "model=tiny", f"data.train={text}",
         f"hydra.sweep.dir={sweep}", "model.softmax.kind=full,sampled",
         "model.softmax.num_samples=20", *ONE_TINY_STEP[1:]],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path, capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    kinds = [from_pretrained(sweep / str(job) / "model").config.softmax.kind for job in (0, 1)]
    assert kinds == ["full", "sampled"]
    assert not (tmp_path / "outputs").exists()  # the composed output_dir was not used


def test_invalid_utf8_in_the_training_text_is_one_line_naming_file_and_line(tmp_path):
    corpus = tmp_path / "train.txt"
    corpus.write_bytes(b"the bank of the river\n" * 40 + b"money \xc3 bank\n")
    result = _elmo_train(tmp_path / "run", f"data.train={corpus}", *ONE_TINY_STEP)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"elmo-train: error: {corpus}:41: invalid UTF-8 (byte 0xc3 at column 7)"
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()  # found while counting the vocabulary: no files left

    # Into a folder that holds files already: they stay, and only they.
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine\n")
    result = _elmo_train(tmp_path / "run", f"data.train={corpus}", *ONE_TINY_STEP)
    assert result.returncode == 2
    assert [path.name for path in (tmp_path / "run").iterdir()] == ["notes.txt"]


def test_invalid_utf8_in_the_test_text_is_found_before_training(tmp_path):
    corpus = _corpus(tmp_path / "train.txt", 0, 40)
    scored = tmp_path / "test.txt"
    scored.write_bytes(b"the bank\n" * 3 + b"caf\xe9\n")
    overrides = [o for o in ONE_TINY_STEP if not o.startswith("data.test=")]
    result = _elmo_train(tmp_path / "run", f"data.train={corpus}", f"data.test={scored}",
                         *overrides)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"elmo-train: error: {scored}:4: invalid UTF-8 (byte 0xe9 at column 4)"
    )
    assert not (tmp_path / "run").exists()  # found before any work
