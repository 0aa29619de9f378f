"""Lexical substitutes: the product of both directions' predictions, renormalised."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from elmo.analysis.substitutes import find_substitutes
from elmo.data.characters import batch_to_ids
from elmo.data.vocab import SPECIAL_TOKENS, Vocabulary
from elmo.model import BiLM

QUERY = "We sat on the [bank] of the river ."


def _direct_probs(
    bilm: BiLM, tokens: list[str], position: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each direction's (V,) distribution at ``position``, from one full biLM pass.

    ``BiLM.forward`` frames the sentence as ``<S> w0 .. wn-1 </S>``: the forward half of the top
    layer at framed index p has read ``<S> w0 .. wp-1`` (it predicts w_p) and the backward half at
    framed index p + 2 has read ``</S> wn-1 .. wp+1``. This path shares no code with the one under
    test past the LSTM stacks (it adds the boundaries and reverses the sequence itself).
    """
    with torch.no_grad():
        top = bilm(batch_to_ids([tokens]))[0][-1, 0]  # (T + 2, 2D)
        dim = top.shape[-1] // 2
        forward = bilm.softmax.log_probs(top[position, :dim].unsqueeze(0))[0]
        backward = bilm.softmax.log_probs(top[position + 2, dim:].unsqueeze(0))[0]
    return forward.double().exp(), backward.double().exp()


def test_top_k_distinct_vocabulary_words_best_first(lm_bilm, vocab):
    result = find_substitutes(lm_bilm, vocab, QUERY, top_k=5)
    words = [s.word for s in result.candidates]
    assert len(words) == 5 and len(set(words)) == 5
    assert all(w in vocab and w not in SPECIAL_TOKENS for w in words)
    probs = [s.prob for s in result.candidates]
    assert probs == sorted(probs, reverse=True)


def test_each_direction_matches_a_direct_computation(lm_bilm, vocab):
    result = find_substitutes(lm_bilm, vocab, QUERY, top_k=len(vocab))
    forward, backward = _direct_probs(lm_bilm, result.query.tokens, result.query.position)
    for s in result.candidates:
        i = vocab.token_to_id(s.word)
        assert s.forward_prob == pytest.approx(float(forward[i]), rel=1e-5)
        assert s.backward_prob == pytest.approx(float(backward[i]), rel=1e-5)


def test_combined_is_the_product_renormalised_over_non_special_words(lm_bilm, vocab):
    result = find_substitutes(lm_bilm, vocab, QUERY, top_k=len(vocab))
    # Every non-special word comes back exactly once.
    assert sorted(s.word for s in result.candidates) == sorted(
        set(vocab.tokens) - set(SPECIAL_TOKENS)
    )
    assert math.fsum(s.prob for s in result.candidates) == pytest.approx(1.0, abs=1e-9)
    forward, backward = _direct_probs(lm_bilm, result.query.tokens, result.query.position)
    kept = [i for i, t in enumerate(vocab.tokens) if t not in SPECIAL_TOKENS]
    normaliser = math.fsum(float(forward[i] * backward[i]) for i in kept)
    for s in result.candidates:
        i = vocab.token_to_id(s.word)
        assert s.prob == pytest.approx(float(forward[i] * backward[i]) / normaliser, rel=1e-5)


def test_specials_are_never_ranked_even_when_the_lm_prefers_them(lm_bilm, vocab):
    with torch.no_grad():  # make every direction predict the specials almost surely
        for token in SPECIAL_TOKENS:
            lm_bilm.softmax.bias[vocab.token_to_id(token)] = 50.0
    result = find_substitutes(lm_bilm, vocab, QUERY, top_k=len(vocab))
    assert not {s.word for s in result.candidates} & set(SPECIAL_TOKENS)
    assert math.fsum(s.prob for s in result.candidates) == pytest.approx(1.0, abs=1e-9)
    assert sum(s.forward_prob for s in result.candidates) < 1e-6  # the raw LM put its mass there


def test_the_marked_word_is_scored_and_ranked(lm_bilm, vocab):
    everything = find_substitutes(lm_bilm, vocab, QUERY, top_k=len(vocab))
    result = find_substitutes(lm_bilm, vocab, QUERY, top_k=3)
    ranked = [s.word for s in everything.candidates]
    assert result.marked.word == "bank"
    assert result.marked_rank == ranked.index("bank") + 1
    assert result.marked == everything.candidates[result.marked_rank - 1]
    unknown = find_substitutes(lm_bilm, vocab, "the [zyzzyva] of the river", top_k=3)
    assert unknown.marked is None and unknown.marked_rank is None


def test_boundary_positions_and_the_adaptive_softmax(tiny_config, vocab):
    config = dataclasses.replace(tiny_config, vocab_size=len(vocab))
    config = dataclasses.replace(
        config, softmax=dataclasses.replace(config.softmax, kind="adaptive", cutoffs=[10])
    )
    bilm = BiLM(config).eval()
    for query in ["[bank] of the river", "the river [bank]"]:
        result = find_substitutes(bilm, vocab, query, top_k=len(vocab))
        forward, backward = _direct_probs(bilm, result.query.tokens, result.query.position)
        top = result.candidates[0]
        assert top.forward_prob == pytest.approx(
            float(forward[vocab.token_to_id(top.word)]), rel=1e-5
        )
        assert top.backward_prob == pytest.approx(
            float(backward[vocab.token_to_id(top.word)]), rel=1e-5
        )
        assert math.fsum(s.prob for s in result.candidates) == pytest.approx(1.0, abs=1e-9)


def test_errors(lm_bilm, vocab, tiny_bilm):
    with pytest.raises(ValueError, match="no softmax"):
        find_substitutes(tiny_bilm, vocab, QUERY)
    with pytest.raises(ValueError, match="vocabulary"):
        find_substitutes(lm_bilm, None, QUERY)
    with pytest.raises(ValueError, match="softmax has"):
        find_substitutes(lm_bilm, Vocabulary(["<S>", "</S>", "<UNK>", "bank"]), QUERY)
    with pytest.raises(ValueError, match="no marked word"):
        find_substitutes(lm_bilm, vocab, "the bank of the river")
    with pytest.raises(ValueError, match="marks 2 words"):
        find_substitutes(lm_bilm, vocab, "the [bank] of the [river]")
    with pytest.raises(ValueError, match="top_k"):
        find_substitutes(lm_bilm, vocab, QUERY, top_k=0)


def test_excluded_words_are_left_out_and_the_rest_renormalised(lm_bilm, vocab):
    everything = find_substitutes(lm_bilm, vocab, QUERY, top_k=len(vocab))
    dropped = everything.candidates[0].word  # the best word
    result = find_substitutes(lm_bilm, vocab, QUERY, top_k=len(vocab), exclude=[dropped])
    assert dropped not in [s.word for s in result.candidates]
    assert len(result.candidates) == len(everything.candidates) - 1
    assert math.fsum(s.prob for s in result.candidates) == pytest.approx(1.0, abs=1e-5)
    rest = {s.word: s.prob for s in everything.candidates if s.word != dropped}
    scale = 1.0 / math.fsum(rest.values())
    for s in result.candidates:  # the same ranking, renormalised without the dropped word
        assert s.prob == pytest.approx(rest[s.word] * scale, rel=1e-4)


def test_excluding_an_unknown_word_is_an_error(lm_bilm, vocab):
    with pytest.raises(ValueError, match="not in the model's vocabulary"):
        find_substitutes(lm_bilm, vocab, QUERY, exclude=["no-such-word-xyz"])
