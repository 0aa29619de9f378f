"""Analysis fixtures: a tiny corpus, its vocabulary, and a tiny biLM with a softmax over it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from elmo.config import BiLMConfig
from elmo.data.vocab import Vocabulary
from elmo.model import BiLM
from elmo.pretrained import save_pretrained

CORPUS = [
    "I deposited money at the bank on Monday .",
    "We sat on the bank of the river .",
    "",  # blank lines are skipped but keep the line numbers of the others
    "The bank raised its interest rates .",
    "Fish swim near the river bank in spring .",
    "She works at a bank in the city .",
    "The boat drifted towards the bank .",
    "He went to the bank to borrow money .",
    "Grass grew along the bank of the stream .",
]


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def vocab() -> Vocabulary:
    return Vocabulary.build(CORPUS)


@pytest.fixture
def lm_bilm(tiny_config: BiLMConfig, vocab: Vocabulary) -> BiLM:
    """The tiny biLM with a full softmax over ``vocab``, seeded random weights, eval mode."""
    torch.manual_seed(0)
    return BiLM(dataclasses.replace(tiny_config, vocab_size=len(vocab))).eval()


@pytest.fixture
def model_dir(tmp_path: Path, lm_bilm: BiLM, vocab: Vocabulary) -> Path:
    return save_pretrained(lm_bilm, tmp_path / "model", vocab)
