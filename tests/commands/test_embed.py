"""``elmo embed``: the allennlp-elmo HDF5 layout, reference outputs, and clean failures."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import h5py
import numpy as np
import pytest
from fixture_checks import random_mid_reference
from reference_elmo import ReferenceBiLM, write_random_published_model
from shared_data import shared_path

from elmo.cli import main
from elmo.commands.embed import WINDOW
from elmo.embedder import ElmoEmbedder
from elmo.layer_choice import select

SENTENCES = [
    "The river bank was flooded .",
    "I deposited money at the bank",
    "naïve café — 東京",
    "a",
    "The river bank was flooded .",  # a repeated sentence maps to its last line
    "tabs\tand   spaces",
]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _read(path: Path) -> tuple[list[np.ndarray], dict]:
    with h5py.File(path, "r") as fin:
        index = json.loads(fin["sentence_to_index"][0])
        count = len(fin) - 1
        return [fin[str(i)][...] for i in range(count)], index


@pytest.fixture(scope="module")
def unseen_model(tmp_path_factory) -> tuple[Path, Path]:
    """A published-format model of a shape no fixture has: tanh, 3 layers, 1 highway, no proj clip."""
    directory = tmp_path_factory.mktemp("unseen")
    return write_random_published_model(
        directory, char_dim=6, filters=[[1, 4], [3, 6], [6, 10]], n_highway=1, lstm_dim=24,
        projection_dim=10, n_layers=3, activation="tanh", cell_clip=2.0, proj_clip=None,
        seed=7,
    )  # fmt: skip


@pytest.mark.parametrize("stateful", [False, True])
def test_unseen_configuration_matches_the_reference(tmp_path, unseen_model, stateful):
    options, weights = unseen_model
    source = _write(tmp_path / "in.txt", SENTENCES)
    out = tmp_path / "out.hdf5"
    args = [str(source), str(out), "--all", "--options-file", str(options),
            "--weight-file", str(weights), "--batch-size", "4"]  # fmt: skip
    assert main(["embed", *args, *(["--stateful"] if stateful else [])]) == 0
    got, index = _read(out)
    expected = ReferenceBiLM(options, weights).run(
        [s.split() for s in SENTENCES], stateful=stateful, batch_size=4
    )
    assert len(got) == len(SENTENCES)
    for vectors, reference in zip(got, expected):
        assert vectors.shape == reference.shape == (4, reference.shape[1], 20)
        np.testing.assert_allclose(vectors, reference, atol=1e-5, rtol=0)
    assert index == {s: str(i) for i, s in enumerate(SENTENCES) if i != 0}


def test_fixture_stateful_batch8_through_the_command(tmp_path, reference_threads):
    fixture = shared_path("fixtures", "elmo-random-mid")
    out = tmp_path / "out.hdf5"
    code = main(["embed", str(fixture / "sentences.txt"), str(out), "--all", "--model",
                 str(fixture), "--batch-size", "8", "--stateful"])  # fmt: skip
    assert code == 0
    got, _ = _read(out)
    reference = random_mid_reference(stateful=True)  # the fixture, or this CPU's reference loop
    assert len(got) == len(reference.arrays)
    for i, vectors in enumerate(got):
        np.testing.assert_allclose(vectors, reference.arrays[i], atol=reference.atol, rtol=0)
    reference.skip_if_substituted()


@pytest.mark.parametrize("flag", ["--top", "--average"])
def test_top_and_average_shapes(tmp_path, unseen_model, flag):
    options, weights = unseen_model
    source = _write(tmp_path / "in.txt", SENTENCES[:3])
    out_all, out_one = tmp_path / "all.hdf5", tmp_path / "one.hdf5"
    common = ["--options-file", str(options), "--weight-file", str(weights)]
    assert main(["embed", str(source), str(out_all), "--all", *common]) == 0
    assert main(["embed", str(source), str(out_one), flag, *common]) == 0
    layers, _ = _read(out_all)
    one, _ = _read(out_one)
    for full, picked in zip(layers, one):
        expected = full[-1] if flag == "--top" else np.average(full, axis=0)  # allennlp elmo's
        assert picked.shape == (full.shape[1], 20)
        np.testing.assert_array_equal(picked, expected)  # bit for bit


def _varied_lines(count: int, seed: int = 0) -> list[str]:
    """``count`` lines of 1 to 30 words: sorting them by length regroups every batch."""
    rng = random.Random(seed)
    words = ["the", "river", "bank", "money", "naïve", "café", ",", ".", "東京", "a"]
    return [" ".join(rng.choices(words, k=rng.randint(1, 30))) for _ in range(count)]


def _consecutive_batches(embedder, lines: list[str], choice: str) -> list[np.ndarray]:
    """What ``elmo embed`` wrote before windows: batches of consecutive lines, in file order."""
    vectors = []
    for start in range(0, len(lines), embedder.batch_size):
        batch = embedder.embed_batch(lines[start : start + embedder.batch_size])
        layers = batch.layers.numpy()  # (L, B, T, 2D)
        for row, n in enumerate(batch.mask.sum(dim=1).tolist()):
            vectors.append(select(layers[:, row, :n], choice))
    return vectors


@pytest.mark.parametrize("flag", ["--all", "--top", "--average"])
def test_sorted_windows_write_each_line_its_own_vectors_in_file_order(tmp_path, unseen_model, flag):
    """Stateless: each window is embedded longest first and written back in file order.

    The vectors are, bit for bit, the API's (``stream_sentences``, the same windows), and those
    of batches of consecutive lines up to float rounding only: the rows beside a sentence decide
    how many rows share each of its LSTM products, and MKL rounds a product of 1-3 rows by its
    row count (README, Exactness; the published shapes see 1e-7).
    """
    options, weights = unseen_model
    lines = _varied_lines(2 * WINDOW * 3 + 5)  # batches of 3: two windows and part of a third
    source, out = _write(tmp_path / "in.txt", lines), tmp_path / "out.hdf5"
    assert main(["embed", str(source), str(out), flag, "--options-file", str(options),
                 "--weight-file", str(weights), "--batch-size", "3"]) == 0  # fmt: skip
    got, index = _read(out)
    choice = flag.removeprefix("--")
    embedder = ElmoEmbedder.from_published(options, weights, batch_size=3)
    streamed = [select(v.numpy(), choice) for v in embedder.stream_sentences(lines, window=WINDOW)]
    file_order = _consecutive_batches(embedder, lines, choice)
    assert len(got) == len(streamed) == len(file_order) == len(lines)
    for line, vectors in enumerate(got):
        assert vectors.shape[-2] == len(lines[line].split())
        np.testing.assert_array_equal(vectors, streamed[line], err_msg=f"line {line}")
        np.testing.assert_allclose(vectors, file_order[line], atol=1e-5, rtol=0)
    assert index == {line: str(i) for i, line in enumerate(lines)}  # a repeat: its last line


def test_stateful_runs_embed_consecutive_lines(tmp_path, unseen_model):
    options, weights = unseen_model
    lines = _varied_lines(WINDOW * 3 + 7, seed=1)
    source, out = _write(tmp_path / "in.txt", lines), tmp_path / "out.hdf5"
    assert main(["embed", str(source), str(out), "--all", "--stateful", "--options-file",
                 str(options), "--weight-file", str(weights), "--batch-size", "3"]) == 0  # fmt: skip
    embedder = ElmoEmbedder.from_published(options, weights, batch_size=3, stateful=True)
    for vectors, reference in zip(_read(out)[0], _consecutive_batches(embedder, lines, "all")):
        np.testing.assert_array_equal(vectors, reference)


def test_fast_and_uncached_options_agree_with_the_default(tmp_path, unseen_model):
    options, weights = unseen_model
    source = _write(tmp_path / "in.txt", SENTENCES[:4])
    common = ["--all", "--options-file", str(options), "--weight-file", str(weights)]
    outputs = []
    for name, extra in [("default", []), ("fast", ["--fast", "--cache-size", "0"])]:
        assert main(["embed", str(source), str(tmp_path / f"{name}.hdf5"), *common, *extra]) == 0
        outputs.append(_read(tmp_path / f"{name}.hdf5")[0])
    for default, fast in zip(*outputs):
        np.testing.assert_allclose(fast, default, atol=1e-5, rtol=0)  # non-chaotic weights


@pytest.mark.parametrize(
    "content, message",
    [
        (b"first line\n\nthird line\n", "in.txt:2: blank line"),
        (b"", "in.txt: the file is empty"),
        (b"ok line\nbad \xff byte\n", "in.txt:2: invalid UTF-8"),
        (b"   \n", "the file is empty"),
    ],
)
def test_bad_input_is_a_one_line_error_and_leaves_no_file(
    tmp_path, unseen_model, capsys, content, message
):
    options, weights = unseen_model
    source = tmp_path / "in.txt"
    source.write_bytes(content)
    out = tmp_path / "out.hdf5"
    code = main(["embed", str(source), str(out), "--top", "--options-file", str(options),
                 "--weight-file", str(weights)])  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0] and error[0].startswith("elmo embed: error:")
    assert list(tmp_path.iterdir()) == [source]  # no output, no partial file


def test_the_bf16_kernel_without_bfloat16_hardware_is_a_one_line_error(tmp_path, unseen_model, capsys,
                                                                        monkeypatch):
    monkeypatch.setattr("elmo.kernels.bf16.native_bf16", lambda device_type: False)
    options, weights = unseen_model
    source = _write(tmp_path / "in.txt", SENTENCES[:4])
    out = tmp_path / "out.hdf5"
    code = main(["embed", str(source), str(out), "--top", "--options-file", str(options),
                 "--weight-file", str(weights), "--kernel", "bf16"])  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("elmo embed: error: kernel 'bf16' runs its products")
    assert "use kernel 'exact' (the default) or 'fused'" in error[0]
    assert not out.exists()


def test_missing_model_arguments(tmp_path, capsys):
    source = _write(tmp_path / "in.txt", ["hello"])
    assert main(["embed", str(source), str(tmp_path / "o.hdf5"), "--all"]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["embed", str(source), str(tmp_path / "o.hdf5"), "--all", "--model",
                 str(tmp_path / "nope")]) == 2  # fmt: skip
    assert "does not exist" in capsys.readouterr().err


def test_a_sentencepiece_model_writes_words_or_pieces(tmp_path, tiny_bilm):
    from sentencepiece_text import small_tokenizer

    from elmo.pretrained import save_pretrained

    tokenizer = small_tokenizer()
    model = save_pretrained(tiny_bilm, tmp_path / "model", tokenizer=tokenizer)
    lines = ["Кошка спала на подоконнике .", "我们今天去公园散步。 naïve"]
    source = _write(tmp_path / "raw.txt", lines)
    for flags, lengths in [
        ([], [5, 2]),
        (["--pieces", "--pooling", "first"], [len(tokenizer.units(line)) for line in lines]),
    ]:
        out = tmp_path / f"out{len(flags)}.hdf5"
        assert main(["embed", str(source), str(out), "--top", "--model", str(model), *flags]) == 0
        got, index = _read(out)
        assert [array.shape for array in got] == [(n, 16) for n in lengths]
        assert index == {line: str(i) for i, line in enumerate(lines)}


def test_a_published_model_by_name(hub_settings, file_server, tmp_path, unseen_model):
    """``--model elmo-small``: fetched (here from a local server) and embedded as the files are."""
    from http_server import serve_published_model

    serve_published_model(file_server, "elmo-small", *unseen_model)
    source = _write(tmp_path / "in.txt", SENTENCES)
    by_name, by_files = tmp_path / "by_name.hdf5", tmp_path / "by_files.hdf5"
    assert main(["embed", str(source), str(by_name), "--top", "--model", "elmo-small"]) == 0
    options, weights = unseen_model
    assert main(["embed", str(source), str(by_files), "--top", "--options-file", str(options),
                 "--weight-file", str(weights)]) == 0  # fmt: skip
    for got, expected in zip(_read(by_name)[0], _read(by_files)[0]):
        np.testing.assert_array_equal(got, expected)


def test_an_existing_output_is_refused_before_any_work_unless_overwrite(tmp_path, unseen_model, capsys):
    options, weights = unseen_model
    source = _write(tmp_path / "in.txt", ["the bank"])
    out = tmp_path / "out.hdf5"
    out.write_bytes(b"someone's results")
    model = ["--options-file", str(options), "--weight-file", str(tmp_path / "absent.hdf5")]
    assert main(["embed", str(source), str(out), "--top", *model]) == 2  # refused before loading
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"elmo embed: error: {out} exists already; pass --overwrite to replace it"]
    assert out.read_bytes() == b"someone's results"
    model[-1] = str(weights)
    assert main(["embed", str(source), str(out), "--top", "--overwrite", *model]) == 0
    with h5py.File(out, "r") as handle:
        assert handle["0"].shape[0] == 2


def test_a_directory_given_as_input_is_reported_as_a_directory(tmp_path, unseen_model, capsys):
    options, weights = unseen_model
    code = main(["embed", str(tmp_path), str(tmp_path / "out.hdf5"), "--top", "--options-file",
                 str(options), "--weight-file", str(weights)])  # fmt: skip
    assert code == 2
    assert capsys.readouterr().err.strip() == f"elmo embed: error: {tmp_path}: is a directory, not a text file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to any folder")
def test_an_unwritable_output_folder_is_found_before_the_model_loads(tmp_path, capsys):
    source = _write(tmp_path / "in.txt", ["the bank"])
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code = main(["embed", str(source), str(locked / "out.hdf5"), "--top", "--model",
                 str(tmp_path / "absent")])  # fmt: skip
    assert code == 2 and "cannot write there" in capsys.readouterr().err


def test_a_transformer_directory_writes_all_its_layers(tmp_path, tiny_transformer, capsys):
    from elmo.pretrained import save_pretrained

    model = save_pretrained(tiny_transformer, tmp_path / "model")
    source = _write(tmp_path / "in.txt", SENTENCES)
    out = tmp_path / "out.hdf5"
    assert main(["embed", str(source), str(out), "--all", "--model", str(model)]) == 0
    got, _ = _read(out)
    assert [array.shape for array in got] == [(4, len(line.split()), 16) for line in SENTENCES]
    capsys.readouterr()  # the first run's progress
    code = main(["embed", str(source), str(tmp_path / "s.hdf5"), "--all", "--model", str(model),
                 "--stateful"])  # fmt: skip
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and "carries no state" in error[0]
    assert not (tmp_path / "s.hdf5").exists()
