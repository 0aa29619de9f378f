"""A whole training run on raw multilingual text with sentencepiece, then embedding its output."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sentencepiece_text import corpus_lines

from elmo.config import BiLMConfig, CharCNNConfig, LSTMConfig, TokenizerConfig, TrainConfig
from elmo.embedder import ElmoEmbedder
from elmo.training.run import run_training


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
