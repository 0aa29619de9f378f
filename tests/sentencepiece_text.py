"""A small multilingual corpus written here, and a sentencepiece tokenizer trained on it (cached).

English, Russian and Chinese (no spaces between words) lines, varied enough for a unigram model
of a few hundred pieces. Training takes a fraction of a second; every test reuses the result.
"""

from __future__ import annotations

import functools
import itertools

from elmo.config import TokenizerConfig
from elmo.data.tokenizer import PieceTokenizer, train_sentencepiece

SUBJECTS = ["the river", "a bank", "my neighbour", "the old teacher", "every student", "our cat"]
VERBS = ["crossed", "watched", "remembered", "painted", "visited", "understood"]
OBJECTS = ["the bridge", "a quiet village", "the mountains", "their garden", "the harbour"]
RUSSIAN = [
    "Мы гуляли вдоль реки весь вечер .",
    "Старый учитель читал интересную книгу .",
    "Кошка спала на тёплом подоконнике .",
    "Завтра мы поедем в деревню к бабушке .",
]
CHINESE = [
    "我们今天去公园散步。",
    "老师在教室里读书。",
    "河边有一座古老的桥。",
    "明天我们去看山。",
]


def corpus_lines() -> list[str]:
    """~230 lines: every English subject-verb-object sentence, and the others many times."""
    english = [
        f"{s.capitalize()} {v} {o} ." for s, v, o in itertools.product(SUBJECTS, VERBS, OBJECTS)
    ]
    return english + (RUSSIAN + CHINESE) * 6


@functools.cache
def small_tokenizer(model_type: str = "unigram", pooling: str = "mean") -> PieceTokenizer:
    """A sentencepiece tokenizer of ``corpus_lines`` (byte fallback: no character is unknown)."""
    config = TokenizerConfig(
        kind="sentencepiece", model_type=model_type, vocab_size=360, character_coverage=1.0,
        pooling=pooling,
    )  # fmt: skip
    return train_sentencepiece(corpus_lines(), config)
