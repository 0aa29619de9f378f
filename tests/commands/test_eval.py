"""``elmo eval``: one JSON line with per-unit and per-word perplexity, raw text for piece models."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sentencepiece_text import corpus_lines, small_tokenizer

from elmo.cli import main
from elmo.data.vocab import Vocabulary
from elmo.model import BiLM
from elmo.pretrained import save_pretrained


@pytest.mark.parametrize("config", ["tiny_config", "tiny_transformer_config"])
@pytest.mark.parametrize("kind", ["words", "sentencepiece"])
def test_eval_prints_per_unit_and_per_word_perplexity(tmp_path, request, config, kind, capsys):
    tiny_config = request.getfixturevalue(config)  # an LSTM or a Transformer biLM
    lines = corpus_lines()[::9]
    tokenizer = small_tokenizer() if kind == "sentencepiece" else None
    if tokenizer is None:
        vocab = Vocabulary.build(lines)
    else:
        vocab = Vocabulary.from_inventory(tokenizer.inventory, lines, tokenizer.units)
    bilm = BiLM(dataclasses.replace(tiny_config, vocab_size=len(vocab))).eval()
    model = save_pretrained(bilm, tmp_path / "model", vocab, tokenizer)
    text = tmp_path / "text.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["eval", "--model", str(model), str(text), "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["words"] == sum(len(line.split()) + 1 for line in lines)
    if kind == "words":
        assert result["tokens"] == result["words"]
        assert result["word_ppl"] == pytest.approx(result["ppl"])
    else:
        assert result["tokens"] > result["words"] and result["word_ppl"] > result["ppl"]
