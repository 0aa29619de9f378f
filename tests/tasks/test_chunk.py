"""Chunking end to end: a hand-made corpus whose tags follow from the words, and a slice of
CoNLL-2000 itself; the dev split held out from train."""

from __future__ import annotations

import json

import pytest
from shared_data import shared_path

from elmo.tasks.chunk import hold_out_dev
from elmo.tasks.config import BaselinesConfig, ChunkTaskConfig, ProbeConfig, ProbeTrainingConfig
from elmo.tasks.datasets.conllu import TaggedSentence
from elmo.tasks.run import run_probe

# Every word has one chunk tag, so a probe on layer 0 (one vector per word type) can be perfect.
TAGS = {
    "the": "B-NP", "a": "B-NP", "cat": "I-NP", "dog": "I-NP", "mat": "I-NP",
    "sat": "B-VP", "ran": "B-VP", "on": "B-PP", ".": "O",
}  # fmt: skip
TRAIN = ["the cat sat on the mat .", "a dog ran .", "the dog sat .", "a cat ran on a mat ."]
DEV = ["a mat sat .", "the cat ran on the dog ."]  # the last sentences of train.txt


def conll2000_lines(sentences: list[str], tags: dict[str, str] = TAGS) -> list[str]:
    lines = []
    for sentence in sentences:
        lines += [f"{word} XX {tags[word]}" for word in sentence.split()] + [""]
    return lines


def probe_config(tmp_path, model_dir, random: bool = True, **task) -> ProbeConfig:
    task.setdefault("probe", ProbeTrainingConfig(epochs=60, batch_size=64, lr=0.1))
    return ProbeConfig(
        task=ChunkTaskConfig(data_dir=str(tmp_path), **task),
        model=str(model_dir),
        baselines=BaselinesConfig(random=random),
        output_dir=str(tmp_path / "out"),
    )


def test_chunk_probe_end_to_end(tmp_path, tiny_model_dir, write_file):
    write_file("train.txt", conll2000_lines(TRAIN + DEV))
    write_file("test.txt", conll2000_lines(TRAIN[:2]))
    line = run_probe(probe_config(tmp_path, tiny_model_dir, dev_sentences=len(DEV)))
    assert line["task"] == "chunk" and set(line["baselines"]) == {"random"}
    names = {"layer0", "layer1", "layer2", "mix"}
    for metrics in (line, line["baselines"]["random"]):
        assert set(metrics) >= {"dev_f1", "dev_accuracy", "test_f1", "test_accuracy"}
        assert all(set(metrics[key]) == names for key in ("dev_f1", "test_accuracy"))
    # Layer 0 is the character encoder: the tag is a function of the word type here.
    assert line["dev_f1"]["layer0"] == line["dev_accuracy"]["layer0"] == 1.0
    assert line["baselines"]["random"]["test_f1"]["layer0"] == 1.0
    assert line["details"] == {
        "dev_split": "the last 2 sentences of train.txt",
        "train_sentences": 4,
        "dev_sentences": 2,
        "test_sentences": 2,
    }
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == json.loads(
        json.dumps(line)
    )
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "**dev_f1**" in markdown and "| random |" in markdown and "details" not in markdown


def test_dev_is_the_tail_of_train_and_never_trained_on():
    sentences = [TaggedSentence([str(i)], ["O"]) for i in range(10)]
    train, dev = hold_out_dev(sentences, 3, "train.txt")
    assert train == sentences[:7] and dev == sentences[7:]
    with pytest.raises(ValueError, match=r"train\.txt: task\.dev_sentences=10 would hold out all"):
        hold_out_dev(sentences, 10, "train.txt")


def test_bad_files_are_named(tmp_path, tiny_model_dir, write_file):
    write_file("train.txt", conll2000_lines(TRAIN + DEV))
    with pytest.raises(FileNotFoundError, match="chunk: the test split is missing"):
        run_probe(probe_config(tmp_path, tiny_model_dir, dev_sentences=2))
    write_file("test.txt", ["the DT B-NP", "cat NN I-NP B-NP"])
    with pytest.raises(ValueError, match=r"test\.txt:2: expected 'word POS chunk-tag'"):
        run_probe(probe_config(tmp_path, tiny_model_dir, dev_sentences=2))
    with pytest.raises(ValueError, match="task.dev_sentences must be > 0"):
        run_probe(probe_config(tmp_path, tiny_model_dir, dev_sentences=0))


def test_a_slice_of_conll2000_on_a_tiny_random_model(tmp_path, tiny_model_dir):
    """The real files' format and tagset through the whole probe (the first sentences only)."""
    for name, count in [("train.txt", 120), ("test.txt", 40)]:
        text = shared_path("data", "conll2000", name).read_text(encoding="utf-8")
        (tmp_path / name).write_text("\n\n".join(text.split("\n\n")[:count]) + "\n")
    config = probe_config(
        tmp_path, tiny_model_dir, random=False, dev_sentences=40,
        probe=ProbeTrainingConfig(epochs=20, batch_size=64, lr=0.05),
    )  # fmt: skip
    line = run_probe(config)
    assert line["details"]["train_sentences"] == 80 and line["details"]["test_sentences"] == 40
    for key in ("dev_f1", "dev_accuracy", "test_f1", "test_accuracy"):
        assert set(line[key]) == {"layer0", "layer1", "layer2", "mix"}
        assert all(0.0 <= value <= 1.0 for value in line[key].values())
    # Even a random character encoder (16 numbers per word here) tells some words apart ("the"
    # is B-NP, "," is O, ...): the probe on it beats tagging every token with the most frequent
    # tag (I-NP, 35% of the slice; the probe reaches 42%).
    tags = [line.split()[-1] for line in (tmp_path / "test.txt").read_text().splitlines() if line]
    majority = max(tags.count(tag) for tag in set(tags)) / len(tags)
    assert line["test_accuracy"]["layer0"] > majority + 0.03, (line["test_accuracy"], majority)
    assert line["test_f1"]["layer0"] > 0.1
