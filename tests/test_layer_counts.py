"""Any number of ELMo layers: biLMs of 1 and 3 LSTM layers and of 3 and 6 Transformer blocks
(2, 4, 4 and 7 ELMo layers) through a probe, ``elmo embed --all`` and an analysis command.
Nothing downstream assumes 3."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from elmo.cli import main
from elmo.config import BiLMConfig
from elmo.model import BiLM
from elmo.pretrained import save_pretrained
from elmo.tasks.config import BaselinesConfig, ChunkTaskConfig, ProbeConfig, ProbeTrainingConfig
from elmo.tasks.run import run_probe

SENTENCES = ["the cat sat on the mat .", "a dog ran .", "the dog sat .", "a cat ran on a mat ."]
TAGS = {"the": "B-NP", "a": "B-NP", "cat": "I-NP", "dog": "I-NP", "mat": "I-NP", "sat": "B-VP",
        "ran": "B-VP", "on": "B-PP", ".": "O"}  # fmt: skip


@pytest.fixture(
    params=[("lstm", 1), ("lstm", 3), ("transformer", 3), ("transformer", 6)],
    ids=lambda kind_layers: "{}-{}".format(*kind_layers),
)
def model(
    request, tmp_path: Path, tiny_config: BiLMConfig, tiny_transformer_config: BiLMConfig
) -> tuple[Path, int]:
    """Our directory of a tiny biLM with N contextual layers, and its ELMo layer count 1 + N."""
    kind, count = request.param
    if kind == "lstm":
        lstm = dataclasses.replace(tiny_config.lstm, num_layers=count)
        config = dataclasses.replace(tiny_config, lstm=lstm)
    else:
        blocks = dataclasses.replace(tiny_transformer_config.transformer, num_layers=count)
        config = dataclasses.replace(tiny_transformer_config, transformer=blocks)
    torch.manual_seed(0)
    bilm = BiLM(config).eval()
    assert bilm.num_layers == 1 + count and bilm.output_dim == 16
    return save_pretrained(bilm, tmp_path / "model"), bilm.num_layers


def test_a_probe_reports_every_layer_and_the_mix(tmp_path, model, write_lines):
    directory, num_layers = model
    write_lines(
        tmp_path / "train.txt",
        [line for s in SENTENCES * 2 for line in [f"{w} XX {TAGS[w]}" for w in s.split()] + [""]],
    )
    config = ProbeConfig(
        task=ChunkTaskConfig(
            data_dir=str(tmp_path), test=None, dev_sentences=len(SENTENCES),
            probe=ProbeTrainingConfig(epochs=40, batch_size=64, lr=0.1),
        ),
        model=str(directory),
        baselines=BaselinesConfig(random=True),
        output_dir=str(tmp_path / "out"),
    )  # fmt: skip
    line = run_probe(config)
    names = [f"layer{k}" for k in range(num_layers)] + ["mix"]
    for metrics in (line, line["baselines"]["random"]):
        assert list(metrics["dev_f1"]) == names and list(metrics["dev_accuracy"]) == names
    assert line["dev_f1"]["layer0"] == 1.0  # the tag is a function of the word type
    header = "| model | " + " | ".join(names) + " |"
    assert header in (tmp_path / "out" / "results.md").read_text()


def test_embed_all_writes_every_layer(tmp_path, model, write_lines):
    directory, num_layers = model
    source = write_lines(tmp_path / "in.txt", SENTENCES)
    common = ["--model", str(directory), "--batch-size", "3"]
    assert main(["embed", str(source), str(tmp_path / "all.hdf5"), "--all", *common]) == 0
    assert main(["embed", str(source), str(tmp_path / "top.hdf5"), "--top", *common]) == 0
    with h5py.File(tmp_path / "all.hdf5") as every, h5py.File(tmp_path / "top.hdf5") as top:
        assert set(json.loads(every["sentence_to_index"][0]).values()) == {"0", "1", "2", "3"}
        for i, sentence in enumerate(SENTENCES):
            layers = every[str(i)][...]
            assert layers.shape == (num_layers, len(sentence.split()), 16)
            np.testing.assert_array_equal(top[str(i)][...], layers[-1])


def test_an_analysis_command_takes_the_top_index_and_names_the_range(
    tmp_path, model, write_lines, capsys
):
    directory, num_layers = model
    corpus = write_lines(tmp_path / "corpus.txt", SENTENCES)
    args = ["neighbours", "--model", str(directory), "--corpus", str(corpus), "the [dog] sat .",
            "--top-k", "2", "--no-cache"]  # fmt: skip
    assert main([*args, "--layer", str(num_layers - 1)]) == 0
    assert f"(layer {num_layers - 1};" in capsys.readouterr().out
    assert main([*args, "--layer", ",".join(["1"] * num_layers)]) == 0  # L mix weights
    assert main([*args, "--layer", str(num_layers)]) == 2
    assert f"the model has layers 0..{num_layers - 1}" in capsys.readouterr().err


@pytest.fixture
def write_lines():
    def write(path: Path, lines: list[str]) -> Path:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write
