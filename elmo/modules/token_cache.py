"""A bounded cache of character-CNN token vectors, so that inference encodes each word type once.

A token's layer-0 vector depends only on its characters and the character encoder's weights, and
the character CNN + highway is most of ELMo's work per token (35 of 44 MFLOP in the published
small shape). Text repeats its words, so after the first batches most tokens are cache hits and
only the LSTMs run.

* Keys are a token's W character ids, so words and sentencepiece pieces are cached alike.
* Misses are encoded together with ``CharCNN.encode_distinct``, whose per-token result does not
  depend on how many other tokens share the batch: cached vectors are bit-identical to those
  computed in the batch, and the chaotic reference fixture still matches with the cache on
  (tests/test_token_cache.py). (GEMMs as narrow as a toy model's can round by row position,
  ~1e-7.)
* The cache empties itself when the weights change: it remembers each character-encoder
  parameter's storage and in-place version counter (bumped by ``load_state_dict``, optimizer
  steps and any other in-place write), and the device and dtype.
* It holds at most ``max_entries`` vectors, dropping the least recently used.
* It is bypassed whenever a gradient could flow: in training mode or with grad enabled and
  trainable weights. It never holds a graph.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from elmo.modules.char_cnn import CharCNN


# ``encode_ahead`` encodes at most this many tokens per pass: the highway's intermediates stay
# small (the original shape: 1,024 x 4,096 floats, 16 MiB) while its weights are read once per
# 1,024 tokens instead of once per batch.
AHEAD_ROWS = 1024


class TokenVectorCache:
    """Token vectors by character ids, least recently used first out.

    Args:
        max_entries: the most vectors kept (each is D floats); 0 disables caching.
    """

    def __init__(self, max_entries: int = 50_000) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        self.max_entries = max_entries
        self._vectors: OrderedDict[bytes, torch.Tensor] = OrderedDict()  # key -> (D,)
        self._weights_key: Hashable = None
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._vectors)

    def clear(self) -> None:
        """Forget every vector (the hit and miss counts stay)."""
        self._vectors.clear()
        self._weights_key = None

    def applies(self, char_cnn: CharCNN) -> bool:
        """Whether the cache may serve ``char_cnn`` now: on, and no gradient can flow."""
        return self.max_entries > 0 and _is_frozen(char_cnn)

    def vectors(self, char_cnn: CharCNN, distinct: torch.Tensor) -> torch.Tensor:
        """``char_cnn.encode_distinct(distinct)``, reusing the vectors of tokens seen before.

        Args:
            char_cnn: the character encoder (the cache empties itself when its weights change).
            distinct: (U, W) character ids of distinct real tokens.

        Returns:
            (U, D) token vectors.
        """
        self._check_weights(char_cnn)
        return self._lookup(char_cnn, distinct)

    def encode_ahead(self, char_cnn: CharCNN, distinct: torch.Tensor) -> None:
        """Encode the tokens of ``distinct`` (U, W) not cached yet, AHEAD_ROWS at a time, and keep
        their vectors, so that the batches that follow find them all.

        For a window of many small batches (one sentence at a time above all): each pass of the
        character CNN reads its highway weights (32 MiB in the published small shape) once, for
        many sentences instead of one. The vectors are the same bits (``encode_distinct``).
        Counted as misses; the batches' lookups then count as hits. Does nothing when the
        tokens would not all fit.
        """
        if len(distinct) == 0 or len(distinct) > self.max_entries:
            return
        self._check_weights(char_cnn)
        keys = [row.tobytes() for row in distinct.cpu().numpy()]
        missing = [i for i, key in enumerate(keys) if key not in self._vectors]
        for key in keys:  # the window's hits become recent: the evictions below spare them
            if key in self._vectors:
                self._vectors.move_to_end(key)
        for start in range(0, len(missing), AHEAD_ROWS):
            rows = missing[start : start + AHEAD_ROWS]
            fresh = char_cnn.encode_distinct(distinct[rows])  # (M, D)
            self.misses += len(rows)
            for i, vector in zip(rows, fresh):
                self._vectors[keys[i]] = vector.clone()  # its own storage, as in _lookup
        while len(self._vectors) > self.max_entries:
            self._vectors.popitem(last=False)

    def _lookup(self, char_cnn: CharCNN, distinct: torch.Tensor) -> torch.Tensor:
        """(U, W) distinct ids -> (U, D): hits from the cache, misses encoded in one batch."""
        keys = [row.tobytes() for row in distinct.cpu().numpy()]
        found = [self._vectors.get(key) for key in keys]
        missing = [i for i, vector in enumerate(found) if vector is None]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = char_cnn.encode_distinct(distinct[missing])  # (M, D)
            for i, vector in zip(missing, fresh):
                found[i] = vector.clone()  # its own storage: a kept row never pins its batch
        for key, vector in zip(keys, found):  # insert or refresh, most recent last
            self._vectors[key] = vector
            self._vectors.move_to_end(key)
        while len(self._vectors) > self.max_entries:
            self._vectors.popitem(last=False)
        if not found:
            return char_cnn.projection.weight.new_zeros(0, char_cnn.output_dim)
        return torch.stack(found)  # (U, D)

    def _check_weights(self, char_cnn: CharCNN) -> None:
        key = _weights_key(char_cnn)
        if key != self._weights_key:
            self._vectors.clear()
            self._weights_key = key


def _weights_key(module: torch.nn.Module) -> tuple:
    """What changes whenever the module's weights may have: storage, version, device, dtype."""
    return tuple(
        (name, p.data_ptr(), p._version, p.device, p.dtype) for name, p in module.named_parameters()
    )


def _is_frozen(module: torch.nn.Module) -> bool:
    """True when no gradient can flow into the module's weights (and no dropout is active)."""
    if module.training:
        return False
    return not (torch.is_grad_enabled() and any(p.requires_grad for p in module.parameters()))
