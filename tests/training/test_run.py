"""A whole training run on raw multilingual text with sentencepiece, then embedding its output."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

import pytest
from progress_log import log_every_update, progress_lines
from sentencepiece_text import corpus_lines

from elmo.config import BiLMConfig, CharCNNConfig, LSTMConfig, TokenizerConfig, TrainConfig
from elmo.embedder import ElmoEmbedder
from elmo.files import InputFileError, ModelFileError
from elmo.training.run import fetch_inputs, run_training


def test_raw_non_latin_text_trains_and_embeds(tmp_path):
    corpus = tmp_path / "train.txt"
    corpus.write_text("\n".join(corpus_lines()) + "\n", encoding="utf-8")
    config = TrainConfig(
        model=BiLMConfig(
            char_cnn=CharCNNConfig(char_embedding_dim=4, filters=[[1, 4], [2, 6]]),
            lstm=LSTMConfig(num_layers=2, cell_size=16, projection_dim=8),
        ),
        tokenizer=TokenizerConfig(kind="sentencepiece", vocab_size=360, character_coverage=1.0),
        output_dir=str(tmp_path / "run"),
    )
    held_out = tmp_path / "held_out.txt"
    held_out.write_text("\n".join(corpus_lines()[::10]) + "\n", encoding="utf-8")
    config.data.train = str(corpus)
    config.data.valid = config.data.test = str(held_out)
    config.data.batch_size, config.data.unroll_steps = 4, 8
    config.trainer.max_steps = 6
    config.trainer.eval_every = 0
    config.trainer.num_threads = 1

    metrics = run_training(config)

    assert metrics["tokenizer"] == "sentencepiece"
    assert metrics["vocab_size"] == 362  # 360 pieces - <unk> + <S>, </S>, <UNK>
    assert metrics["valid"]["words"] < metrics["valid"]["tokens"]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["word_ppl"] > 1
    assert not (tmp_path / "run" / "published").exists()  # the published format has no tokenizer
    embedder = ElmoEmbedder.from_pretrained(tmp_path / "run" / "model")
    russian, chinese = embedder.embed_sentences(["Привет , мир !", "我们今天去看山。"], "top")
    assert russian.shape == (4, 16) and chinese.shape == (1, 16)

    # Resuming reads the saved piece model; fine-tuning keeps the source model's tokenizer.
    config.trainer.max_steps = 8
    assert run_training(config)["step"] == 8
    tuned = dataclasses.replace(config, init_from=str(tmp_path / "run" / "model"),
                                output_dir=str(tmp_path / "tuned"))  # fmt: skip
    tuned.trainer.max_steps = 2
    assert run_training(tuned)["vocab_size"] == 362
    as_words = dataclasses.replace(tuned, tokenizer=TokenizerConfig(), output_dir=str(tmp_path / "w"))
    with pytest.raises(ValueError, match="fine-tuning keeps the model's tokenizer"):
        run_training(as_words)


@pytest.mark.parametrize("cap", [None, 2])
def test_the_validation_file_is_scored_once_after_the_last_step(tmp_path, monkeypatch, cap):
    """With no eval_max_batches cap, the loop's last validation is the final one: not run twice."""
    import elmo.training.run as run_module

    calls = []
    real = run_module.evaluate_perplexity

    def counting(bilm, path, *args, **kwargs):
        calls.append(str(path))
        return real(bilm, path, *args, **kwargs)

    monkeypatch.setattr(run_module, "evaluate_perplexity", counting)
    text = tmp_path / "text.txt"
    text.write_text("\n".join(corpus_lines()[:40]) + "\n", encoding="utf-8")
    config = TrainConfig(
        model=BiLMConfig(
            char_cnn=CharCNNConfig(char_embedding_dim=4, filters=[[1, 4], [2, 6]]),
            lstm=LSTMConfig(num_layers=2, cell_size=16, projection_dim=8),
        ),
        output_dir=str(tmp_path / "run"),
        export_published=False,
    )
    config.data.train = config.data.valid = str(text)
    config.data.test = None
    config.data.batch_size, config.data.unroll_steps = 4, 8
    config.trainer.max_steps, config.trainer.eval_every = 2, 0
    config.trainer.eval_max_batches = cap
    config.trainer.num_threads = 1

    metrics = run_training(config)

    assert calls == [str(text)] * (1 if cap is None else 2)
    last = metrics["history"][-1]
    assert last["step"] == 2 and "valid_ppl" in last
    if cap is None:  # the whole file both times: the same numbers
        assert metrics["valid"]["ppl"] == last["valid_ppl"]


def _words_run(tmp_path) -> TrainConfig:
    corpus = tmp_path / "train.txt"
    corpus.write_text("the bank of the river\nmoney in the bank\nthe river bank\n" * 4)
    config = TrainConfig(
        model=BiLMConfig(
            char_cnn=CharCNNConfig(char_embedding_dim=4, filters=[[1, 4], [2, 6]]),
            lstm=LSTMConfig(num_layers=1, cell_size=8, projection_dim=4),
        ),
        output_dir=str(tmp_path / "run"),
    )
    config.model.softmax.kind = "full"
    config.data.train, config.data.valid, config.data.test = str(corpus), None, None
    config.data.batch_size, config.data.unroll_steps = 2, 4
    config.trainer.max_steps, config.trainer.num_threads = 2, 1
    return config


def test_the_final_scores_report_progress(tmp_path, monkeypatch, caplog):
    """After the training bar, scoring valid and test is not silent (it can take minutes)."""
    log_every_update(monkeypatch, caplog)
    caplog.set_level(logging.INFO, logger="elmo.training.run")
    config = _words_run(tmp_path)
    config.data.valid = config.data.test = config.data.train
    config.trainer.eval_every, config.trainer.eval_max_batches = 0, 1  # valid is scored again
    metrics = run_training(config)
    assert progress_lines(caplog, "training: ")[-1].startswith("training: 2/2 steps (100%)")
    for split in ("valid", "test"):
        total = f"{2 * metrics[split]['tokens']:,}"
        assert f"scoring the {split} text {config.data.train}" in caplog.messages
        lines = progress_lines(caplog, f"scoring {split}: ")
        assert lines[-1].startswith(f"scoring {split}: {total}/{total} tokens (100%)")


def test_a_torn_vocabulary_is_refused_on_resume_and_rebuilt_without_a_checkpoint(tmp_path):
    config = _words_run(tmp_path)
    run_training(config)
    vocab_path = tmp_path / "run" / "vocab.txt"
    whole = vocab_path.read_text()
    vocab_path.write_text("".join(whole.splitlines(keepends=True)[:-2]))  # cut at a line boundary
    config.trainer.max_steps = 3
    with pytest.raises(ModelFileError, match=rf"{re.escape(str(vocab_path))} is not the file "
                       r".*checkpoint\.pt was trained with .*delete .*checkpoint\.pt"):  # fmt: skip
        run_training(config)

    (tmp_path / "run" / "checkpoint.pt").unlink()  # nothing depends on the vocabulary now
    assert run_training(config)["step"] == 3 and vocab_path.read_text() == whole


def test_leftover_temp_files_of_a_killed_run_are_removed_at_start(tmp_path):
    config = _words_run(tmp_path)
    dead = 2**22 + 17  # above any default pid_max: no such process
    leftovers = [tmp_path / "run" / f".checkpoint.pt.tmp-{dead}",
                 tmp_path / "run" / "model" / f".model.safetensors.tmp-{dead}"]  # fmt: skip
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a file")
    run_training(config)
    assert not any(path.exists() for path in leftovers)


@pytest.mark.parametrize("content", [b"", b"  \n\t\n", None])
def test_training_text_without_sentences_or_a_directory_is_refused_before_any_work(
    tmp_path, content
):
    config = _words_run(tmp_path)
    train = Path(config.data.train)
    train.unlink()
    train.mkdir() if content is None else train.write_bytes(content)
    message = "is a directory" if content is None else "no sentences to train on"
    with pytest.raises(InputFileError, match=rf"train\.txt: {message}"):
        fetch_inputs(config)
