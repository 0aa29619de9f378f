"""Frozen biLM layers as cached features: every token, one target token, or a word on its own.

A probe trains for several epochs, but the biLM is frozen, so each sentence is embedded once and
its layers are kept. Features are laid out sample-first, ``(N, L, 2D)``, so that a minibatch is
one index into the cache.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from elmo.embedder import ElmoEmbedder
from elmo.progress import progress


def _sentence_layers(
    embedder: ElmoEmbedder, sentences: Sequence[Sequence[str]], desc: str
) -> Iterator[tuple[int, torch.Tensor]]:
    """``(sentence index, its layers (L, n, 2D))`` for every sentence, longest batches first.

    Batches group sentences of similar length (less padding); the embedder is stateless, so a
    sentence's vectors do not depend on its batch.
    """
    if embedder.stateful:
        raise ValueError(
            "features need a stateless embedder (a sentence's vectors must be its own)"
        )
    for index, sentence in enumerate(sentences):
        if len(sentence) == 0:
            raise ValueError(f"{desc}: sentence {index} has no tokens")
    order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
    batch_size = embedder.batch_size
    with progress(total=len(order), desc=f"embedding {desc}", unit="sentences", leave=False) as bar:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = embedder.embed_batch([list(sentences[i]) for i in rows])  # (L, B, T, 2D)
            for row, index in enumerate(rows):
                yield index, batch.layers[:, row, : len(sentences[index])].cpu()  # (L, n, 2D)
            bar.update(len(rows))


def token_features(
    embedder: ElmoEmbedder, sentences: Sequence[Sequence[str]], desc: str = "embedding"
) -> torch.Tensor:
    """Every token's layers, sentences concatenated in input order: (N tokens, L, 2D)."""
    offsets = [0]
    for sentence in sentences:
        offsets.append(offsets[-1] + len(sentence))
    # Filled in place: for EWT train (204k tokens) a list of per-sentence tensors would double
    # the peak memory.
    features = torch.empty(offsets[-1], embedder.num_layers, embedder.dim)  # (N, L, 2D)
    for index, layers in _sentence_layers(embedder, sentences, desc):
        features[offsets[index] : offsets[index + 1]] = layers.transpose(0, 1)  # (n, L, 2D)
    return features


def target_features(
    embedder: ElmoEmbedder,
    sentences: Sequence[Sequence[str]],
    positions: Sequence[int],
    desc: str = "embedding",
) -> torch.Tensor:
    """The layers of one token per sentence (``positions[i]`` in sentence i): (N, L, 2D)."""
    if len(positions) != len(sentences):
        raise ValueError(f"{len(positions)} positions for {len(sentences)} sentences")
    features = torch.empty(len(sentences), embedder.num_layers, embedder.dim)  # (N, L, 2D)
    for index, layers in _sentence_layers(embedder, sentences, desc):
        features[index] = layers[:, positions[index]]  # (L, 2D)
    return features


def type_vectors(
    embedder: ElmoEmbedder, words: Sequence[str], desc: str = "embedding"
) -> torch.Tensor:
    """Context-free word vectors: layer 0 of each word alone between <S> and </S>: (N, 2D).

    Layer 0 is the character encoder's output, so it depends on nothing but the word's spelling
    (the biLSTM layers would still see the two boundary tokens).
    """
    for word in words:
        if not word or any(character.isspace() for character in word):
            raise ValueError(f"a word for a type vector must be one non-empty token, got {word!r}")
    return target_features(embedder, [[word] for word in words], [0] * len(words), desc)[:, 0]


def sentence_features(
    embedder: ElmoEmbedder, sentences: Sequence[Sequence[str]], desc: str = "embedding"
) -> list[torch.Tensor]:
    """Each sentence's layers, in input order: one (L, n, 2D) tensor per sentence."""
    result: list[torch.Tensor | None] = [None] * len(sentences)
    for index, layers in _sentence_layers(embedder, sentences, desc):
        result[index] = layers.clone()  # not a view that keeps the whole batch alive
    return result  # type: ignore[return-value]
