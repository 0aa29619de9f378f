"""POS end to end on a hand-made treebank whose tags follow from the words alone."""

from __future__ import annotations

import json

import pytest

from elmo.tasks.config import BaselinesConfig, PosTaskConfig, ProbeConfig, ProbeTrainingConfig
from elmo.tasks.run import run_probe

TAGS = {
    "the": "DET",
    "a": "DET",
    "cat": "NOUN",
    "dog": "NOUN",
    "mat": "NOUN",
    "sat": "VERB",
    "ran": "VERB",
    "on": "ADP",
    ".": "PUNCT",
}
TRAIN = ["the cat sat on the mat .", "a dog ran .", "the dog sat .", "a cat ran on a mat ."]
DEV = ["a mat sat .", "the cat ran on the dog ."]


def _conllu(sentences: list[str]) -> list[str]:
    lines = []
    for sentence in sentences:
        for i, word in enumerate(sentence.split(), start=1):
            lines.append(
                "\t".join([str(i), word, word, TAGS[word], "_", "_", "0", "dep", "_", "_"])
            )
        lines.append("")
    return lines


def _config(tmp_path, model_dir, **task) -> ProbeConfig:
    probe = ProbeTrainingConfig(epochs=60, batch_size=64, lr=0.1)
    task = PosTaskConfig(
        data_dir=str(tmp_path),
        train="train.conllu",
        dev="dev.conllu",
        test="test.conllu",
        probe=probe,
        **task,
    )
    return ProbeConfig(
        task=task,
        model=str(model_dir),
        baselines=BaselinesConfig(random=True),
        output_dir=str(tmp_path / "out"),
    )


def test_pos_probe_end_to_end(tmp_path, tiny_model_dir, write_file):
    write_file("train.conllu", _conllu(TRAIN))
    write_file("dev.conllu", _conllu(DEV))
    write_file("test.conllu", _conllu(TRAIN[:2]))
    line = run_probe(_config(tmp_path, tiny_model_dir))
    assert line["task"] == "pos" and set(line["baselines"]) == {"random"}
    for metrics in (line, line["baselines"]["random"]):
        assert set(metrics["dev_accuracy"]) == {"layer0", "layer1", "layer2", "mix"}
        assert set(metrics["test_accuracy"]) == set(metrics["dev_accuracy"])
    # Layer 0 is the character encoder: one vector per word type, and here the tag is a function
    # of the word type, so a linear probe on it tags unseen sentences perfectly.
    assert line["dev_accuracy"]["layer0"] == 1.0
    assert line["baselines"]["random"]["test_accuracy"]["layer0"] == 1.0
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == json.loads(
        json.dumps(line)
    )
    assert "| random |" in (tmp_path / "out" / "results.md").read_text()


def test_missing_split_and_malformed_file(tmp_path, tiny_model_dir, write_file):
    write_file("train.conllu", _conllu(TRAIN))
    with pytest.raises(FileNotFoundError, match="pos: the dev split is missing"):
        run_probe(_config(tmp_path, tiny_model_dir))
    write_file("dev.conllu", ["1\tthe\tthe\tDET"])
    write_file("test.conllu", _conllu(TRAIN))
    with pytest.raises(ValueError, match=r"dev\.conllu:1: expected 10 tab-separated fields"):
        run_probe(_config(tmp_path, tiny_model_dir))


def test_the_pos_probe_reads_every_layer_of_a_transformer(tmp_path, tiny_transformer, write_file):
    from elmo.pretrained import save_pretrained

    model_dir = save_pretrained(tiny_transformer, tmp_path / "model")
    write_file("train.conllu", _conllu(TRAIN))
    write_file("dev.conllu", _conllu(DEV))
    write_file("test.conllu", _conllu(TRAIN[:2]))
    line = run_probe(_config(tmp_path, model_dir))
    layers = {"layer0", "layer1", "layer2", "layer3", "mix"}  # L = 4
    assert set(line["dev_accuracy"]) == set(line["test_accuracy"]) == layers
    assert line["dev_accuracy"]["layer0"] == 1.0
