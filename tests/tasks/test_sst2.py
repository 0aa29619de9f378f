"""SST-2 end to end (frozen), and fine-tuning: which weights move, with gradual unfreezing."""

from __future__ import annotations

import pytest
import torch

from elmo.embedder import ElmoEmbedder
from elmo.tasks.config import BaselinesConfig, ProbeConfig, Sst2TaskConfig
from elmo.tasks.datasets.sst2 import SentimentExample
from elmo.tasks.finetune import bilm_layer_groups
from elmo.tasks.run import run_probe
from elmo.tasks.sentence_classifier import SentenceClassifier
from elmo.tasks.sst2 import Sst2Data, _finetuned, fit

ROWS = [
    "this film is good\t1",
    "this film is bad\t0",
    "a great story\t1",
    "an awful story\t0",
    "good acting\t1",
    "bad acting\t0",
    "great\t1",
    "awful\t0",
]


def test_frozen_sst2_end_to_end(tmp_path, tiny_model_dir, write_file):
    write_file("train.tsv", ["sentence\tlabel"] + ROWS)
    write_file("dev.tsv", ["sentence\tlabel"] + ROWS)
    task = Sst2TaskConfig(
        data_dir=str(tmp_path),
        epochs=40,
        batch_size=4,
        lr=0.02,
        dropout=0.0,
        representations=["mix", "layer0"],
    )
    config = ProbeConfig(
        task=task,
        model=str(tiny_model_dir),
        baselines=BaselinesConfig(random=False),
        output_dir=str(tmp_path / "out"),
    )
    line = run_probe(config)
    # Eight sentences, each with a word of its own sentiment: the classifier fits them all, and
    # F1 of a perfect prediction is 1.
    assert line["dev_accuracy"] == {"mix": 1.0, "layer0": 1.0}
    assert line["dev_f1"] == {"mix": 1.0, "layer0": 1.0}
    assert line["details"]["mode"] == "frozen" and line["baselines"] == {}


def _train_finetuned(tiny_bilm, unfreeze_every: int, steps: int) -> tuple[dict, dict]:
    """Fine-tune for ``steps`` steps; return the biLM weights before and after."""
    examples = [SentimentExample(row.split("\t")[0].split(), int(row[-1])) for row in ROWS]
    task = Sst2TaskConfig(
        mode="finetune",
        epochs=1,
        batch_size=len(ROWS) // steps,
        bilm_lr=1e-2,
        unfreeze_every=unfreeze_every,
    )
    embedder = ElmoEmbedder(tiny_bilm)
    setup = _finetuned(
        SentenceClassifier(3, 16, None), task, embedder, Sst2Data(examples, examples)
    )
    bilm = setup.model.bilm
    before = {k: v.clone() for k, v in bilm.state_dict().items()}
    labels = torch.tensor([e.label for e in examples])
    fit(setup.model, setup.train, labels, setup.optimizer, task, "test", setup.on_step)
    assert bilm is not tiny_bilm  # the caller's biLM is never trained
    return before, dict(bilm.state_dict())


def _moved(before: dict, after: dict, prefix: str) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix))


def test_finetuning_moves_the_whole_bilm(tiny_bilm):
    before, after = _train_finetuned(tiny_bilm, unfreeze_every=0, steps=2)
    assert _moved(before, after, "char_cnn.") and _moved(before, after, "forward_lstm.layers.0.")


def test_gradual_unfreezing_reaches_the_top_layer_first(tiny_bilm):
    # 4 steps, one more group every 2: steps 0-1 train nothing of the biLM, steps 2-3 the top
    # LSTM layer only; the lower layer and the character encoder stay as they were.
    before, after = _train_finetuned(tiny_bilm, unfreeze_every=2, steps=4)
    assert _moved(before, after, "forward_lstm.layers.1.") and _moved(
        before, after, "backward_lstm.layers.1."
    )
    assert not _moved(before, after, "forward_lstm.layers.0.") and not _moved(
        before, after, "char_cnn."
    )
    assert len(bilm_layer_groups(tiny_bilm)) == 3


def test_a_layer_the_model_lacks_is_named_before_any_embedding(tiny_bilm, monkeypatch):
    """The tiny biLM has layers 0..2: layer3 fails at once, not after embedding the train set."""
    from elmo.tasks import sst2

    def no_embedding(*args, **kwargs):
        raise AssertionError("embedded before checking the representations")

    monkeypatch.setattr(sst2, "sentence_features", no_embedding)
    examples = [SentimentExample(["good"], 1), SentimentExample(["bad"], 0)]
    task = Sst2TaskConfig(representations=["mix", "layer3"])
    with pytest.raises(ValueError, match="representation must be mix or layer0..layer2"):
        sst2.evaluate(task, Sst2Data(examples, examples), ElmoEmbedder(tiny_bilm), "model")
