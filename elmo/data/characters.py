"""ELMo's character ids: every token becomes W slots of byte ids with word-boundary marks.

The layout is the one the published models were trained with (bilm-tf's UnicodeCharsVocabulary):
a token's UTF-8 bytes, cut to W - 2, framed by begin-of-word (258) and end-of-word (259) and padded
with 260. The sentence boundaries ``<S>`` and ``</S>`` are the special characters 256 and 257 in
the same frame. Finally every id is shifted by +1 so that 0 can mean "no token here" (padding
positions of a batch are all zeros, and row 0 of the character table is zero).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

MAX_WORD_LENGTH = 50  # W of the published models
BOS_CHAR = 256  # begin of sentence
EOS_CHAR = 257  # end of sentence
BOW_CHAR = 258  # begin of word
EOW_CHAR = 259  # end of word
PAD_CHAR = 260  # padding inside a token's W slots
NUM_CHAR_IDS = 262  # 261 ids after the +1 shift, plus 0 for padding tokens
BOS_TOKEN = "<S>"
EOS_TOKEN = "</S>"


def _framed(ids: Sequence[int], max_chars: int) -> list[int]:
    slots = [PAD_CHAR] * max_chars
    slots[0] = BOW_CHAR
    slots[1 : len(ids) + 1] = ids
    slots[len(ids) + 1] = EOW_CHAR
    return [c + 1 for c in slots]  # the +1 shift: 0 is reserved for padding tokens


def token_to_char_ids(token: str, max_chars: int = MAX_WORD_LENGTH) -> list[int]:
    """The W character ids of one token (already shifted by +1).

    ``<S>`` and ``</S>`` map to the sentence-boundary characters, as in the published models (so a
    literal ``<S>`` in the text reads as a sentence start). Longer tokens keep their first W - 2 bytes.
    """
    if token == BOS_TOKEN:
        return _framed([BOS_CHAR], max_chars)
    if token == EOS_TOKEN:
        return _framed([EOS_CHAR], max_chars)
    if not isinstance(token, str):
        raise TypeError(f"tokens must be str, got {type(token).__name__}: {token!r}")
    # "ignore" matches the reference: lone surrogates (the only unencodable str) are dropped.
    encoded = token.encode("utf-8", "ignore")[: max_chars - 2]
    return _framed(list(encoded), max_chars)


def batch_to_ids(
    sentences: Sequence[Sequence[str]], max_chars: int = MAX_WORD_LENGTH
) -> torch.Tensor:
    """Character ids of a batch of tokenized sentences, padded with all-zero tokens.

    Args:
        sentences: B lists of tokens (no sentence boundaries; the biLM adds them).
        max_chars: W, character slots per token.

    Returns:
        Long tensor (B, T, W), T = the longest sentence; padding tokens are all 0.
    """
    if isinstance(sentences, str) or any(isinstance(s, str) for s in sentences):
        raise TypeError("batch_to_ids takes a list of token lists, e.g. [['Hello', 'world']]")
    longest = max((len(s) for s in sentences), default=0)
    ids = torch.zeros(len(sentences), longest, max_chars, dtype=torch.long)  # (B, T, W)
    for row, sentence in enumerate(sentences):
        if sentence:
            ids[row, : len(sentence)] = torch.tensor(
                [token_to_char_ids(tok, max_chars) for tok in sentence], dtype=torch.long
            )
    return ids


def boundary_char_ids(max_chars: int = MAX_WORD_LENGTH) -> tuple[torch.Tensor, torch.Tensor]:
    """The (W,) character ids of ``<S>`` and ``</S>``."""
    return (
        torch.tensor(token_to_char_ids(BOS_TOKEN, max_chars)),
        torch.tensor(token_to_char_ids(EOS_TOKEN, max_chars)),
    )
