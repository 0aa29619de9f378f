"""WiC end to end: pairs whose cosine separates the labels exactly, so the threshold must."""

from __future__ import annotations

from elmo.tasks.config import BaselinesConfig, ProbeConfig, ProbeTrainingConfig, WicTaskConfig
from elmo.tasks.run import run_probe

SENTENCES = [
    "the bank of the river",
    "we sat on a bench",
    "money in the bank",
    "run to the shop",
    "the play was long",
    "she will play well",
]


def _pairs() -> tuple[list[str], list[str]]:
    """T: one sentence twice, same target (cosine 1). F: two sentences, other words (cosine < 1)."""
    data, gold = [], []
    for i, sentence in enumerate(SENTENCES):
        word = sentence.split()[1]
        data.append(f"{word}\tN\t1-1\t{sentence}\t{sentence}")
        other = SENTENCES[(i + 1) % len(SENTENCES)]
        data.append(f"{word}\tN\t1-3\t{sentence}\t{other}")
        gold += ["T", "F"]
    return data, gold


def test_wic_end_to_end(tmp_path, tiny_model_dir, write_file):
    data, gold = _pairs()
    for split in ("train", "dev"):  # dev = train: the tuned threshold separates it exactly
        write_file(f"{split}/{split}.data.txt", data)
        write_file(f"{split}/{split}.gold.txt", gold)
    task = WicTaskConfig(data_dir=str(tmp_path), probe=ProbeTrainingConfig(epochs=20, batch_size=4))
    config = ProbeConfig(
        task=task,
        model=str(tiny_model_dir),
        baselines=BaselinesConfig(random=True),
        output_dir=str(tmp_path / "out"),
    )
    line = run_probe(config)
    names = {"layer0", "layer1", "layer2", "mix"}
    for metrics in (line, line["baselines"]["random"]):
        assert metrics["dev_accuracy_threshold"] == dict.fromkeys(names, 1.0)
        assert set(metrics["dev_accuracy_logreg"]) == names
        assert all(0.0 <= v <= 1.0 for v in metrics["dev_accuracy_logreg"].values())
        assert all(t <= 1.0 for t in metrics["details"]["cosine_thresholds"].values())
    assert line["details"]["dev_pairs"] == 12


def test_a_missing_gold_file_is_named(tmp_path, tiny_model_dir, write_file):
    data, gold = _pairs()
    write_file("train/train.data.txt", data)
    write_file("train/train.gold.txt", gold)
    write_file("dev/dev.data.txt", data)
    config = ProbeConfig(task=WicTaskConfig(data_dir=str(tmp_path)), model=str(tiny_model_dir))
    try:
        run_probe(config)
    except FileNotFoundError as error:
        assert "wic: the dev gold split is missing" in str(error) and "dev.gold.txt" in str(error)
    else:
        raise AssertionError("a missing gold file must be an error")
