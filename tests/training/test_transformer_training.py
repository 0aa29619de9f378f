"""A Transformer biLM trains like the LSTM one: on WikiText-2 text its perplexity falls, a run
resumes from its checkpoint, and the run leaves a model directory every command can load (but
no published-format export, which has no place for a Transformer)."""

from __future__ import annotations

import logging

from train_runs import wikitext_train_lines, write_lines

from elmo.config import BiLMConfig, CharCNNConfig, TrainConfig, TransformerConfig
from elmo.embedder import ElmoEmbedder
from elmo.pretrained import load_bilm
from elmo.training.checkpoint import load_checkpoint
from elmo.training.run import run_training


def _config(tmp_path) -> TrainConfig:
    lines = wikitext_train_lines(120)
    config = TrainConfig(
        model=BiLMConfig(
            char_cnn=CharCNNConfig(char_embedding_dim=4, filters=[[1, 8], [2, 8], [3, 16]]),
            contextualizer="transformer",
            transformer=TransformerConfig(
                num_layers=2, num_heads=2, model_dim=16, feedforward_dim=64
            ),
        ),
        output_dir=str(tmp_path / "run"),
    )
    config.model.softmax.kind = "full"
    config.data.train = str(write_lines(tmp_path / "train.txt", lines[:100]))
    config.data.valid = str(write_lines(tmp_path / "valid.txt", lines[100:]))
    config.data.test = None
    config.data.vocab_max_size = 2000
    config.data.batch_size, config.data.unroll_steps = 8, 16
    # the trainer's defaults: Adagrad at 0.2, no warm-up (pre-norm blocks need none)
    config.trainer.eval_every, config.trainer.checkpoint_every = 0, 10
    config.trainer.num_threads = 1
    return config


def test_a_transformer_trains_resumes_and_exports_its_directory(tmp_path, caplog):
    config = _config(tmp_path)
    config.trainer.max_steps = 1
    first = run_training(config)["valid"]
    config.trainer.max_steps = 40  # the same run, continued from its checkpoint
    with caplog.at_level(logging.INFO, logger="elmo.training"):
        metrics = run_training(config)
    trained = metrics["valid"]

    assert "resumed from" in caplog.text and metrics["step"] == 40
    assert trained["forward_ppl"] < 0.6 * first["forward_ppl"], (first, trained)
    assert trained["backward_ppl"] < 0.6 * first["backward_ppl"], (first, trained)
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert checkpoint["ranks"][0]["forward_state"] is None  # nothing carried between windows
    assert "no published-format export" in caplog.text
    assert not (tmp_path / "run" / "published").exists()
    model = load_bilm(tmp_path / "run" / "model")
    assert model.config.contextualizer == "transformer" and model.softmax is not None
    vectors = ElmoEmbedder.from_pretrained(tmp_path / "run" / "model").embed_sentence("the game")
    assert vectors.shape == (3, 2, 32)
