"""Lexical substitutes: the words the biLM would put at a marked position of a sentence.

For ``I live near the [bank] of America`` each direction of the biLM predicts the marked slot
from its own side, exactly as in training (``elmo.data.stream`` frames the sentences):

* the forward LM reads ``<S> I live near the`` and its top layer at ``the`` gives
  ``p_fwd(x | left context)``;
* the backward LM reads ``</S> America of`` (the right context, reversed) and its top layer at
  ``of`` gives ``p_bwd(x | right context)``.

The combined score is their product, renormalised: ``p(x) = p_fwd(x) p_bwd(x) / Z``, a product
of experts (each direction vetoes the words it finds unlikely). The sum ``Z`` runs over the
vocabulary without the specials ``<S>``, ``</S>`` and ``<UNK>``: they are never a useful
substitute, so they are left out of the ranking and the combined probabilities of the remaining
words sum to 1. The per-direction probabilities are the language models' own, over the whole
vocabulary, specials included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from elmo.analysis.query import MarkedQuery, parse_marked_query
from elmo.data.characters import BOS_TOKEN, EOS_TOKEN, batch_to_ids
from elmo.data.vocab import SPECIAL_TOKENS, Vocabulary
from elmo.model import BiLM


class Substitute(NamedTuple):
    word: str
    prob: float  # combined: p_fwd * p_bwd renormalised over the non-special words
    forward_prob: float  # p_fwd(word | left context), the forward LM's probability
    backward_prob: float  # p_bwd(word | right context), the backward LM's probability


class Substitutes(NamedTuple):
    query: MarkedQuery
    candidates: list[Substitute]  # the top-k words, best first
    marked: Substitute | None  # the marked word's own scores; None if it is not in the vocabulary
    marked_rank: int | None  # its 1-based rank among the non-special words (None likewise)


def find_substitutes(
    bilm: BiLM,
    vocab: Vocabulary,
    query: str | MarkedQuery,
    top_k: int = 10,
    exclude: Sequence[str] = (),
) -> Substitutes:
    """The ``top_k`` words that best fit the marked slot of ``query`` (see the module docstring).

    Args:
        bilm: a biLM with a softmax (``from_pretrained`` of a model trained by ``elmo-train``).
        vocab: its softmax vocabulary (``load_vocabulary``).
        query: text with one ``[word]`` marker, or a parsed ``MarkedQuery``.
        top_k: how many words to return (fewer when the vocabulary is smaller).
        exclude: more words to leave out, like the specials (e.g. a corpus's own unknown-word
            placeholder, WikiText's ``<unk>``); the combined scores are renormalised without them.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    check_language_model(bilm, vocab)
    if isinstance(query, str):
        query = parse_marked_query(query)
    forward, backward = context_log_probs(bilm, query)  # (V,), (V,)
    missing = [word for word in exclude if word not in vocab]
    if missing:
        raise ValueError(f"cannot exclude {missing}: not in the model's vocabulary")
    left_out = list(dict.fromkeys([*SPECIAL_TOKENS, *exclude]))
    excluded = [vocab.token_to_id(token) for token in left_out]
    combined = combine_log_probs(forward, backward, excluded)  # (V,)
    scores = combined.exp()
    forward_probs, backward_probs = forward.exp(), backward.exp()

    def scored(word_id: int) -> Substitute:
        return Substitute(
            vocab.id_to_token(word_id),
            float(scores[word_id]),
            float(forward_probs[word_id]),
            float(backward_probs[word_id]),
        )

    num_words = len(vocab) - len(excluded)
    ranking = combined.topk(min(top_k, num_words)).indices.tolist()
    marked = marked_rank = None
    if query.word in vocab and query.word not in left_out:
        marked_id = vocab.token_to_id(query.word)
        marked = scored(marked_id)
        marked_rank = int((combined > combined[marked_id]).sum()) + 1
    return Substitutes(query, [scored(i) for i in ranking], marked, marked_rank)


@torch.inference_mode()
def context_log_probs(bilm: BiLM, query: MarkedQuery) -> tuple[torch.Tensor, torch.Tensor]:
    """Each direction's float64 (V,) log-distribution over the marked slot of ``query``.

    Returns:
        ``log p_fwd(x | <S> left)`` and ``log p_bwd(x | right </S>)``.
    """
    forward = next_word_log_probs(bilm, [BOS_TOKEN, *query.left], backward=False)
    backward = next_word_log_probs(bilm, [EOS_TOKEN, *reversed(query.right)], backward=True)
    return forward, backward


@torch.inference_mode()
def next_word_log_probs(bilm: BiLM, context: Sequence[str], backward: bool) -> torch.Tensor:
    """The float64 (V,) log-distribution of the word after ``context`` in one direction.

    Args:
        context: the tokens the language model reads, in its reading order and with the sentence
            boundary first (``<S> w1 .. wk`` forward, ``</S> wn .. wk`` backward).
        backward: read with the backward LM.
    """
    was_training = bilm.training
    bilm.eval()
    try:
        device = bilm.device
        max_chars = bilm.config.char_cnn.max_characters_per_token
        char_ids = batch_to_ids([list(context)], max_chars).to(device)  # (1, T, W)
        mask = torch.ones(char_ids.shape[:2], dtype=torch.bool, device=device)  # (1, T)
        output = bilm.language_model(char_ids, mask, backward=backward)
        hidden = output.layers[-1][:, -1].float()  # top layer at the last token: (1, D)
        return bilm.softmax.log_probs(hidden)[0].double().cpu()  # (1, V) -> (V,)
    finally:
        bilm.train(was_training)


def combine_log_probs(
    forward: torch.Tensor, backward: torch.Tensor, excluded: Sequence[int]
) -> torch.Tensor:
    """log of ``p_fwd * p_bwd`` renormalised over the words not in ``excluded``.

    Args:
        forward, backward: (V,) log-probabilities.
        excluded: ids left out of the distribution (they get -inf).

    Returns:
        (V,) log-probabilities whose exponentials sum to 1 over the kept ids.
    """
    joint = forward + backward  # (V,)
    joint = joint.index_fill(0, torch.as_tensor(list(excluded), dtype=torch.long), float("-inf"))
    return torch.log_softmax(joint, dim=0)


def check_language_model(bilm: BiLM, vocab: Vocabulary | None) -> None:
    """Raise ValueError unless ``bilm`` has a softmax that matches ``vocab``."""
    if bilm.softmax is None:
        raise ValueError(
            "this model has no softmax (an embedding-only or published model): substitutes need a "
            "language model trained with a softmax and its vocab.txt"
        )
    if vocab is None:
        raise ValueError("substitutes need the model's vocabulary (vocab.txt), got none")
    if len(vocab) != bilm.config.vocab_size:
        raise ValueError(
            f"the vocabulary has {len(vocab)} words but the model's softmax has "
            f"{bilm.config.vocab_size}"
        )
