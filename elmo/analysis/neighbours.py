"""Contextual neighbours: the corpus occurrences whose vectors are closest to a word in context.

``the [bank] of the river`` is embedded, and the vector of ``bank`` is compared by cosine with
the vector of every token occurrence of a corpus (``elmo.analysis.index``). With a contextual
layer, the nearest occurrences share the word's sense, not just its spelling.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from elmo.analysis.corpus import context_window, contextual_vectors
from elmo.analysis.index import ContextIndex
from elmo.analysis.query import MarkedQuery, parse_marked_query
from elmo.embedder import ElmoEmbedder
from elmo.model import BiLM


class Neighbour(NamedTuple):
    similarity: float  # cosine between the query word's vector and this occurrence's
    word: str  # the token at this occurrence
    tokens: list[str]  # its sentence
    position: int  # its index in ``tokens``
    line: int  # 1-based line number of the sentence in the corpus file

    def context(self, width: int = 8) -> str:
        """The occurrence in a window of its sentence, marked as ``[word]``."""
        return context_window(self.tokens, self.position, width)


def find_neighbours(
    bilm: BiLM,
    index: ContextIndex,
    query: str | MarkedQuery,
    top_k: int = 10,
    same_word: bool = False,
) -> list[Neighbour]:
    """The ``top_k`` occurrences in ``index`` nearest to the marked word of ``query``, best first.

    The query is embedded with the index's layer. When the query sentence is itself a line of
    the corpus, its own occurrence comes first (cosine 1, up to the index's float16 rounding).

    Args:
        bilm: the model the index was built with.
        index: from ``build_index``.
        query: text with one ``[word]`` marker, or a parsed ``MarkedQuery``.
        top_k: how many occurrences to return.
        same_word: only consider occurrences of the marked word itself.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if isinstance(query, str):
        query = parse_marked_query(query)
    vectors = contextual_vectors(ElmoEmbedder(bilm), [query.tokens], index.layer)[0]  # (n, 2D)
    target = vectors[query.position]  # (2D,)
    target = target / max(float(np.linalg.norm(target)), 1e-12)
    rows = np.arange(len(index))
    if same_word:
        rows = _occurrences_of(index, query.word)
        if len(rows) == 0:
            raise ValueError(
                f"the word {query.word!r} does not occur in the corpus {index.corpus.path}"
            )
    similarities = _cosines(index.vectors, rows, target)  # (R,)
    best = _top_indices(similarities, top_k)
    sentences, line_numbers = index.corpus.sentences, index.corpus.line_numbers
    neighbours = []
    for i in best:
        row = rows[i]
        sentence = sentences[index.sentence_ids[row]]
        position = int(index.positions[row])
        neighbours.append(
            Neighbour(
                float(similarities[i]),
                sentence[position],
                sentence,
                position,
                line_numbers[index.sentence_ids[row]],
            )
        )
    return neighbours


def _cosines(
    vectors: np.ndarray, rows: np.ndarray, target: np.ndarray, chunk: int = 65536
) -> np.ndarray:
    """(R,) float32 dot products of unit ``vectors[rows]`` (float16) with the unit ``target``."""
    target = target.astype(np.float32)
    out = np.empty(len(rows), dtype=np.float32)
    for start in range(0, len(rows), chunk):  # a chunk at a time: float32 copies stay small
        block = vectors[rows[start : start + chunk]].astype(np.float32)  # (c, 2D)
        out[start : start + chunk] = block @ target
    return out


def _top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, best first; ties keep corpus order."""
    k = min(k, len(scores))
    candidates = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    candidates = np.sort(candidates)  # corpus order, so that the stable sort breaks ties by it
    return candidates[np.argsort(-scores[candidates], kind="stable")]


def _occurrences_of(index: ContextIndex, word: str) -> np.ndarray:
    """The index rows whose token is ``word``."""
    sentences = index.corpus.sentences
    return np.array(
        [
            row
            for row, (s, p) in enumerate(zip(index.sentence_ids, index.positions))
            if sentences[s][p] == word
        ],
        dtype=np.int64,
    )
