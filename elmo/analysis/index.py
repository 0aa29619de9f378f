"""An index of the contextual vector of every token occurrence of a corpus, cached on disk.

Embedding a corpus takes minutes; querying it takes milliseconds. So the index is built once,
with a progress bar, and saved next to the corpus as ``<corpus>.elmo-index-<key>.npz``. The key
hashes everything the vectors depend on:

* the corpus file: its resolved path, size and modification time (an edit invalidates it);
* the model: a fingerprint of every weight (a retrained model invalidates it);
* the layer choice;
* the recurrence kernel, when it is not bit-exact (``elmo.kernels``).

Vectors are stored unit-length in float16: the cache is half the size, and cosines keep an
error of about 1e-4 (ranks can only swap between near-identical contexts).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from elmo.analysis.corpus import Corpus, check_layer, contextual_vectors, read_corpus
from elmo.embedder import ElmoEmbedder
from elmo.layer_choice import LayerChoice, choice_name
from elmo.model import BiLM
from elmo.progress import progress as progress_bar

logger = logging.getLogger(__name__)

INDEX_FORMAT = 1  # bump when the stored arrays change meaning
CACHE_INFIX = ".elmo-index-"


@dataclass
class ContextIndex:
    """The contextual vectors of a corpus: row i is token ``positions[i]`` of sentence
    ``sentence_ids[i]`` of ``corpus``."""

    corpus: Corpus
    layer: LayerChoice
    vectors: np.ndarray  # (N, 2D) float16, unit length, N = tokens in the corpus
    sentence_ids: np.ndarray  # (N,) int32, index into corpus.sentences
    positions: np.ndarray  # (N,) int32, token index within the sentence

    def __len__(self) -> int:
        return len(self.vectors)


def build_index(
    bilm: BiLM,
    corpus: str | os.PathLike,
    layer: LayerChoice = "top",
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    batch_size: int = 64,
    progress: bool = False,
) -> ContextIndex:
    """The index of ``corpus``: loaded from the cache when it is valid, built (and cached) if not.

    Args:
        bilm: the model whose vectors are indexed.
        corpus: a text file, one sentence per line (``read_corpus``).
        layer: which vectors (see ``elmo.analysis.corpus``).
        cache_dir: where the cache file lives (default: the corpus's directory). If it cannot be
            written the index is still returned, with a warning.
        use_cache: read and write the cache at all.
        batch_size: sentences per forward pass while building.
        progress: show a progress bar (stderr) while building.
    """
    corpus = read_corpus(corpus)
    layer = check_layer(layer, bilm.num_layers)
    key = cache_key(corpus.path, bilm, layer) if use_cache else ""
    path = cache_path(corpus.path, key, cache_dir)
    if use_cache:
        cached = _load(path, key)
        num_tokens = sum(len(s) for s in corpus.sentences)
        if cached is not None and len(cached[0]) == num_tokens:  # the length: a cheap sanity check
            logger.info("using the cached index %s", path)
            return ContextIndex(corpus, layer, *cached)
    index = _embed_corpus(ElmoEmbedder(bilm, batch_size=batch_size), corpus, layer, progress)
    if use_cache:
        _save(index, path, key)
    return index


def _embed_corpus(
    embedder: ElmoEmbedder, corpus: Corpus, layer: LayerChoice, progress: bool, chunk: int = 256
) -> ContextIndex:
    """Embed every sentence (``chunk`` at a time, to hold one chunk's float32 vectors)."""
    sentences = corpus.sentences
    total = sum(len(s) for s in sentences)
    vectors, sentence_ids, positions = [], [], []
    with progress_bar(total=total, desc="indexing corpus", unit="tokens", enabled=progress) as bar:
        for start in range(0, len(sentences), chunk):
            batch = sentences[start : start + chunk]
            for offset, sentence_vectors in enumerate(contextual_vectors(embedder, batch, layer)):
                vectors.append(_unit(sentence_vectors).astype(np.float16))  # (n, 2D)
                n = len(sentence_vectors)
                sentence_ids.append(np.full(n, start + offset, dtype=np.int32))
                positions.append(np.arange(n, dtype=np.int32))
            bar.update(sum(len(s) for s in batch))
    return ContextIndex(
        corpus,
        layer,
        np.concatenate(vectors),
        np.concatenate(sentence_ids),
        np.concatenate(positions),
    )


def _unit(vectors: np.ndarray) -> np.ndarray:
    """(n, d) rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)  # (n, 1)
    return vectors / np.maximum(norms, 1e-12)


def weights_fingerprint(bilm: BiLM) -> str:
    """A SHA-256 of every parameter and buffer of ``bilm`` (names, dtypes, shapes and values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(bilm.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def corpus_stamp(corpus_path: Path) -> str:
    """The corpus file's resolved path, size and modification time: changes when it is edited."""
    stat = corpus_path.stat()
    return f"{corpus_path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def cache_key(corpus_path: Path, bilm: BiLM, layer: LayerChoice) -> str:
    """The hash that names and validates a cache file (see the module docstring)."""
    parts = {
        "format": INDEX_FORMAT,
        "corpus": corpus_stamp(corpus_path),
        "weights": weights_fingerprint(bilm),
        "layer": choice_name(layer),
    }
    if not bilm.kernel.exact:  # its vectors differ from the exact ones by float rounding
        parts["kernel"] = bilm.kernel.name
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def cache_path(corpus_path: Path, key: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the index of ``corpus_path`` with ``cache_key`` ``key`` is cached."""
    directory = Path(cache_dir) if cache_dir is not None else corpus_path.parent
    return directory / f"{corpus_path.name}{CACHE_INFIX}{key[:16]}.npz"


def _load(path: Path, key: str):
    """(vectors, sentence_ids, positions) from a cache file holding ``key``; None otherwise."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            if str(data["key"]) != key:
                return None
            return data["vectors"], data["sentence_ids"], data["positions"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        logger.warning("ignoring the unreadable index cache %s (%s)", path, error)
        return None


def _save(index: ContextIndex, path: Path, key: str) -> None:
    """Write the cache atomically, and remove this corpus's caches for older versions of it."""
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as handle:
            np.savez(
                handle,
                key=np.array(key),
                corpus=np.array(corpus_stamp(index.corpus.path)),
                vectors=index.vectors,
                sentence_ids=index.sentence_ids,
                positions=index.positions,
            )
        os.replace(partial, path)
        logger.info("cached the index in %s", path)
        _remove_outdated(path, index.corpus.path)
    except OSError as error:
        logger.warning(
            "could not cache the index in %s (%s); it will be rebuilt next time", path, error
        )
    finally:
        with contextlib.suppress(OSError):  # nothing to remove, or nowhere it could be
            partial.unlink(missing_ok=True)


def _remove_outdated(path: Path, corpus_path: Path) -> None:
    """Delete the caches next to ``path`` that were built from an earlier version of the corpus."""
    current = corpus_stamp(corpus_path)
    resolved = str(corpus_path.resolve())
    for other in path.parent.glob(f"{corpus_path.name}{CACHE_INFIX}*.npz"):
        try:
            with np.load(other) as data:
                stamp = str(data["corpus"])
            if stamp != current and stamp.rsplit(":", 2)[0] == resolved:
                other.unlink()
                logger.info("removed the outdated index cache %s", other)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            continue  # not ours to judge
