"""Word similarity: Spearman's rho between cosines of context-free type vectors and human scores.

The type vector of a word is layer 0 (the character encoder) for the word alone between <S> and
</S>. Every word gets a vector from its characters, so coverage is 100% unless a word cannot be
embedded at all; it is computed and reported anyway, and rho is always over the covered pairs.
"""

from __future__ import annotations

import logging

import torch

from elmo.embedder import ElmoEmbedder
from elmo.tasks.config import WordSimTaskConfig
from elmo.tasks.datasets.source import split_file
from elmo.tasks.datasets.word_similarity import WordPair, read_word_pairs
from elmo.tasks.features import type_vectors
from elmo.tasks.metrics import spearman

log = logging.getLogger(__name__)


def load(task: WordSimTaskConfig) -> dict[str, list[WordPair]]:
    """Every benchmark's pairs, words lower-cased if the task says so."""
    benchmarks = {}
    for name in task.datasets:
        pairs = read_word_pairs(split_file(task.data_dir, task.files[name], task.name, name))
        if task.lowercase:
            pairs = [WordPair(p.word1.lower(), p.word2.lower(), p.score) for p in pairs]
        benchmarks[name] = pairs
        log.info("wordsim %s: %d pairs", name, len(pairs))
    return benchmarks


def evaluate(
    task: WordSimTaskConfig, data: dict[str, list[WordPair]], embedder: ElmoEmbedder, name: str
) -> dict:
    """``{"spearman": {benchmark: rho}, "coverage": {benchmark: scored / total}}``."""
    words = sorted(
        {word for pairs in data.values() for pair in pairs for word in (pair.word1, pair.word2)}
    )
    embeddable = [word for word in words if word and not any(c.isspace() for c in word)]
    vectors = type_vectors(embedder, embeddable, f"{name} words")  # (N, 2D)
    index = {word: i for i, word in enumerate(embeddable)}
    rho, coverage, counts = {}, {}, {}
    for benchmark, pairs in data.items():
        scored = [p for p in pairs if p.word1 in index and p.word2 in index]
        coverage[benchmark] = len(scored) / len(pairs) if pairs else 0.0
        counts[benchmark] = len(scored)
        if len(scored) < 2:
            rho[benchmark] = float("nan")
            continue
        first = vectors[[index[p.word1] for p in scored]]  # (P, 2D)
        second = vectors[[index[p.word2] for p in scored]]  # (P, 2D)
        cosines = torch.cosine_similarity(first, second, dim=-1).numpy()
        rho[benchmark] = spearman(cosines, [p.score for p in scored])
        log.info(
            "wordsim %s %s: rho %.4f over %d/%d pairs",
            name,
            benchmark,
            rho[benchmark],
            len(scored),
            len(pairs),
        )
    return {"spearman": rho, "coverage": coverage, "details": {"pairs_scored": counts}}
