"""Tests for elmo.modules.softmax: exact distributions, the sampled estimate, the factory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from elmo.modules.softmax import (
    SOFTMAX_KINDS,
    AdaptiveSoftmax,
    FullSoftmax,
    SampledNll,
    SampledSoftmax,
    Softmax,
    accidental_hits,
    build_softmax,
    draw_log_uniform,
    expected_counts,
    log_uniform_probs,
    sample_log_uniform_unique,
)

D, V, N = 8, 20, 16


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    # torch.testing.assert_close costs ~0.7 s on its first call (lazy imports)
    assert actual.shape == expected.shape and torch.allclose(actual, expected, atol=1e-6), (
        actual,
        expected,
    )


@pytest.fixture
def data():
    torch.manual_seed(0)
    return torch.randn(N, D), torch.randint(0, V, (N,))


@pytest.mark.parametrize(
    "softmax",
    [lambda: FullSoftmax(D, V), lambda: AdaptiveSoftmax(D, V, cutoffs=[4, 10], div_value=2.0)],
)
def test_exact_distribution_nll_and_loss_agree(softmax, data):
    torch.manual_seed(0)
    softmax, (hidden, targets) = softmax(), data
    log_probs = softmax.log_probs(hidden)
    assert log_probs.shape == (N, V)
    assert_close(log_probs.exp().sum(-1), torch.ones(N))
    nll = softmax.nll(hidden, targets)
    assert_close(nll, -log_probs.gather(1, targets[:, None]).squeeze(1))
    assert_close(softmax.loss(hidden, targets), nll.mean())
    assert_close(softmax(hidden, targets), nll.mean())


def test_parameter_names_are_the_checkpoint_format():
    for kind, kwargs in [("full", {}), ("sampled", {"num_samples": 5})]:
        shapes = {
            k: tuple(v.shape) for k, v in build_softmax(kind, D, V, **kwargs).state_dict().items()
        }
        assert shapes == {"weight": (V, D), "bias": (V,)}
    assert isinstance(build_softmax("adaptive", D, V, cutoffs=[5]), AdaptiveSoftmax)
    with pytest.raises(ValueError, match="projection of size 0.50"):
        AdaptiveSoftmax(D, V, cutoffs=[4, 10])  # 8 // 4**2 = 0 dimensions for the last cluster
    with pytest.raises(ValueError, match=r"'hierarchical'.*\['adaptive', 'full', 'sampled'\]"):
        build_softmax("hierarchical", D, V)


def test_only_the_adaptive_softmax_can_leave_parameters_without_gradients():
    """``has_unused_parameters`` (DDP's find_unused_parameters) says what a step really does."""
    assert {k: c.has_unused_parameters for k, c in SOFTMAX_KINDS.items()} == {
        "full": False, "sampled": False, "adaptive": True,
    }  # fmt: skip
    torch.manual_seed(0)
    hidden, head_targets = torch.randn(N, D), torch.randint(0, 5, (N,))  # none in the tail
    for kind, kwargs in [("full", {}), ("sampled", {"num_samples": 5}), ("adaptive", {"cutoffs": [5]})]:
        softmax = build_softmax(kind, D, V, **kwargs)
        softmax.loss(hidden, head_targets).backward()
        unused = [name for name, p in softmax.named_parameters() if p.grad is None]
        assert bool(unused) == softmax.has_unused_parameters, (kind, unused)


def test_sampler_draws_distinct_ids_in_first_draw_order():
    vocab_size, num_samples = 1000, 10
    ids, num_tries = sample_log_uniform_unique(
        num_samples, vocab_size, torch.Generator().manual_seed(7)
    )
    # Reference: the same uniforms, inverted one by one, until 10 distinct ids are seen.
    uniform = torch.rand(
        64, generator=torch.Generator().manual_seed(7), dtype=torch.float64
    ).numpy()
    drawn = np.clip(np.floor(np.exp(uniform * np.log(vocab_size + 1))).astype(int) - 1, 0, None)
    distinct: list[int] = []
    for tries, k in enumerate(drawn, start=1):
        if k not in distinct:
            distinct.append(int(k))
        if len(distinct) == num_samples:
            break
    assert len(distinct) == num_samples  # the first chunk of 64 was enough
    assert ids.tolist() == distinct and num_tries == tries


def test_sampler_follows_the_log_uniform_distribution():
    draws = draw_log_uniform(100_000, 10, torch.Generator().manual_seed(0))
    frequencies = np.bincount(draws.numpy(), minlength=10) / len(draws)
    k = np.arange(10)
    probs = (np.log(k + 2) - np.log(k + 1)) / np.log(11)
    np.testing.assert_allclose(frequencies, probs, atol=0.005)
    np.testing.assert_allclose(log_uniform_probs(torch.arange(10), 10).numpy(), probs, rtol=1e-12)


def test_expected_counts_match_numpy():
    ids = torch.tensor([0, 1, 5, 99])
    p = (np.log(ids.numpy() + 2.0) - np.log(ids.numpy() + 1.0)) / np.log(101.0)
    got = expected_counts(ids, vocab_size=100, num_samples=10, num_tries=37).numpy()
    np.testing.assert_allclose(got, 1.0 - (1.0 - p) ** 37, rtol=1e-12)
    # TensorFlow's shortcut when no draw was repeated
    got = expected_counts(ids, vocab_size=100, num_samples=10, num_tries=10).numpy()
    np.testing.assert_allclose(got, p * 10, rtol=1e-12)


def test_accidental_hits_are_removed():
    softmax = SampledSoftmax(D, V, num_samples=6, generator=torch.Generator().manual_seed(3))
    sampled, _ = sample_log_uniform_unique(6, V, torch.Generator().manual_seed(3))
    targets = torch.cat([sampled[:4], torch.tensor([19])])  # 19 is hardly ever sampled
    logits = softmax.sampled_logits(torch.randn(5, D), targets)
    assert logits.shape == (5, 7)
    hits = torch.zeros(5, 7, dtype=torch.bool)
    for row in range(4):
        hits[row, 1 + row] = True  # target of row r is the r-th sampled id
    assert torch.isneginf(logits[hits]).all() and torch.isfinite(logits[~hits]).all()


def test_sampled_loss_approaches_full_loss_when_sampling_the_whole_vocabulary(data):
    hidden, targets = data
    sampled = SampledSoftmax(D, V, num_samples=V, generator=torch.Generator().manual_seed(0))
    full = FullSoftmax(D, V)
    full.load_state_dict(sampled.state_dict())
    full_loss = full.loss(hidden, targets)
    estimates = torch.stack([sampled.loss(hidden, targets) for _ in range(3)])
    assert (estimates - full_loss).abs().max() < 0.05
    sampled.eval()  # eval mode scores exactly
    assert_close(sampled.loss(hidden, targets), full_loss)


def test_sampled_loss_is_reproducible_and_gradients_reach_only_used_rows(data):
    hidden, targets = data
    hidden = hidden.clone().requires_grad_()
    modules, losses = [], []
    for _ in range(2):
        torch.manual_seed(1)
        modules.append(
            SampledSoftmax(D, V, num_samples=4, generator=torch.Generator().manual_seed(5))
        )
        losses.append(modules[-1].loss(hidden, targets))
    assert losses[0].item() == losses[1].item()
    losses[0].backward()
    sampled, _ = sample_log_uniform_unique(4, V, torch.Generator().manual_seed(5))
    used = torch.zeros(V, dtype=torch.bool)
    used[sampled] = True
    used[targets] = True
    assert hidden.grad.abs().sum() > 0
    assert torch.equal(modules[0].weight.grad.abs().sum(-1) > 0, used)
    assert torch.equal(modules[0].bias.grad != 0, used)


def sampled_loss_and_gradients(dtype: torch.dtype, plain: bool) -> list[torch.Tensor]:
    """The sampled loss of a softmax with accidental hits, by ``loss`` or by the plain route
    (``sampled_logits``' cross-entropy), and its gradients for the hidden states and weights."""
    torch.manual_seed(2)
    softmax = SampledSoftmax(D, V, num_samples=7, generator=torch.Generator().manual_seed(4)).to(dtype)
    with torch.no_grad():
        softmax.bias.normal_()
    sampled, _ = sample_log_uniform_unique(7, V, torch.Generator().manual_seed(4))
    targets = torch.cat([sampled[:3], torch.randint(0, V, (N - 3,))])  # three accidental hits
    hidden = torch.randn(N, D, dtype=dtype, requires_grad=True)
    if plain:
        loss = torch.nn.functional.cross_entropy(
            softmax.sampled_logits(hidden, targets), targets.new_zeros(N)
        )
    else:
        loss = softmax.loss(hidden, targets)
    loss.backward()
    return [loss, hidden.grad, softmax.weight.grad, softmax.bias.grad]


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_sampled_loss_equals_the_cross_entropy_of_the_sampled_logits(dtype, tolerance):
    fused = sampled_loss_and_gradients(dtype, plain=False)
    plain = sampled_loss_and_gradients(dtype, plain=True)
    assert torch.isfinite(fused[0])
    for got, expected in zip(fused, plain):
        assert got.dtype == dtype and got.shape == expected.shape
        assert (got - expected).abs().max() <= tolerance * max(1.0, expected.abs().max()), (got, expected)


def test_sampled_nll_gradients_match_finite_differences():
    torch.manual_seed(3)
    n, s = 4, 5
    inputs = [
        torch.randn(n, D, dtype=torch.float64),
        torch.randn(s, D, dtype=torch.float64),
        torch.randn(s, dtype=torch.float64),
        torch.randn(n, dtype=torch.float64),
    ]
    accidental = torch.zeros(n, s, dtype=torch.bool).index_fill_(1, torch.tensor([2]), True)
    weights = torch.randn(n, dtype=torch.float64)  # a random cotangent: one backward sees all rows

    def scalar(*tensors):
        return (SampledNll.apply(*tensors, *accidental.nonzero().unbind(1)) * weights).sum()

    leaves = [t.clone().requires_grad_() for t in inputs]
    scalar(*leaves).backward()
    step = 1e-6
    for index, tensor in enumerate(inputs):
        numeric = torch.zeros_like(tensor)
        for position in range(tensor.numel()):
            shifted = [t.clone() for t in inputs]
            shifted[index].view(-1)[position] += step
            up = scalar(*shifted)
            shifted[index].view(-1)[position] -= 2 * step
            numeric.view(-1)[position] = (up - scalar(*shifted)) / (2 * step)
        assert torch.allclose(leaves[index].grad, numeric, atol=1e-8), (index, leaves[index].grad, numeric)


def test_sampled_nll_refuses_a_second_backward():
    hidden = torch.randn(3, D, requires_grad=True)
    nll = SampledNll.apply(hidden, torch.randn(4, D), torch.zeros(4), torch.zeros(3),
                           *torch.zeros(3, 4, dtype=torch.bool).nonzero().unbind(1)).sum()  # fmt: skip
    nll.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="runs once"):
        nll.backward()


def unigram(seed: int = 0) -> torch.Tensor:
    """(V,) a Zipf-like log distribution, perturbed so that no two words tie."""
    noise = torch.rand(V, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    weights = (1.0 + 0.5 * noise) / torch.arange(1, V + 1, dtype=torch.float64)
    return (weights / weights.sum()).log().float()


@pytest.mark.parametrize(
    "softmax",
    [
        lambda: FullSoftmax(D, V),
        lambda: SampledSoftmax(D, V, num_samples=5),
        lambda: AdaptiveSoftmax(D, V, cutoffs=[4, 10], div_value=2.0, bias=True),
    ],
    ids=["full", "sampled", "adaptive"],
)
def test_unigram_bias_makes_a_zero_hidden_state_predict_the_unigram_distribution(softmax):
    torch.manual_seed(0)
    softmax, log_probs = softmax(), unigram()
    softmax.init_unigram_bias(log_probs + 3.0)  # only differences matter: the softmax normalises
    hidden = torch.zeros(N, D)
    assert_close(softmax.log_probs(hidden), log_probs.expand(N, V))
    targets = torch.arange(N) % V
    assert_close(softmax.nll(hidden, targets), -log_probs[targets])


def test_the_adaptive_bias_is_the_head_and_cluster_split_of_the_unigram():
    softmax, log_probs = AdaptiveSoftmax(D, V, cutoffs=[4, 10], div_value=2.0, bias=True), unigram()
    softmax.init_unigram_bias(log_probs)
    head, tail = softmax.adaptive.head.bias, [output.bias for _, output in softmax.adaptive.tail]
    clusters = [log_probs[4:10], log_probs[10:]]
    # shortlist words: log p(w); one entry per cluster: log p(cluster); in a cluster: log p(w | c)
    assert_close(head, torch.cat([log_probs[:4], torch.stack([c.logsumexp(0) for c in clusters])]))
    for bias, words in zip(tail, clusters):
        assert_close(bias, words - words.logsumexp(0))


def test_adaptive_biases_are_added_without_changing_the_other_weights():
    torch.manual_seed(0)
    plain = AdaptiveSoftmax(D, V, cutoffs=[4, 10], div_value=2.0)
    torch.manual_seed(0)
    biased = AdaptiveSoftmax(D, V, cutoffs=[4, 10], div_value=2.0, bias=True)
    added = {k: tuple(v.shape) for k, v in biased.state_dict().items() if k not in plain.state_dict()}
    assert added == {"adaptive.head.bias": (6,), "adaptive.tail.0.1.bias": (6,),
                     "adaptive.tail.1.1.bias": (10,)}  # fmt: skip
    assert all(torch.equal(v, biased.state_dict()[k]) for k, v in plain.state_dict().items())
    assert all(not v.any() for k, v in biased.state_dict().items() if k in added)  # zero at first
    hidden = torch.randn(N, D)
    assert torch.equal(plain.log_probs(hidden), biased.log_probs(hidden))  # zero biases: the same


def test_a_softmax_without_biases_cannot_start_at_unigram_frequencies():
    with pytest.raises(ValueError, match="no biases .* bias=True"):
        AdaptiveSoftmax(D, V, cutoffs=[4, 10], div_value=2.0).init_unigram_bias(unigram())

    class Hierarchical(Softmax):
        pass

    with pytest.raises(ValueError, match="the Hierarchical has no bias"):
        Hierarchical().init_unigram_bias(unigram())
    full = FullSoftmax(D, V)
    with pytest.raises(ValueError, match=r"expected \(20,\) log-probabilities, got shape \(19,\)"):
        full.init_unigram_bias(unigram()[:-1])
    with pytest.raises(ValueError, match="must be finite"):
        full.init_unigram_bias(torch.cat([unigram()[:-1], torch.tensor([-float("inf")])]))
    assert not full.bias.any()  # refused: left as it was


def test_accidental_hits_are_the_places_where_a_sample_is_the_target():
    torch.manual_seed(4)
    sampled = torch.randperm(50)[:20]
    targets = torch.cat([sampled[[3, 7, 7]], torch.randint(0, 50, (30,))])
    rows, columns = accidental_hits(sampled, targets, 50)
    expected = (sampled.unsqueeze(0) == targets.unsqueeze(1)).nonzero()  # (H, 2), row-major
    assert torch.equal(torch.stack([rows, columns], dim=1), expected)
    assert len(rows) >= 3


def test_the_sampled_loss_reuses_its_buffers_only_once_their_backward_ran():
    torch.manual_seed(5)
    pooled = SampledSoftmax(D, 50, num_samples=20, generator=torch.Generator().manual_seed(0))
    plain = SampledSoftmax(D, 50, num_samples=20, generator=torch.Generator().manual_seed(0))
    plain.load_state_dict(pooled.state_dict())
    plain.buffers = None  # SampledNll without a pool: fresh memory every call
    hidden, targets = torch.randn(2, 6, D), torch.randint(0, 50, (2, 6))

    def step(module):
        """Two losses in flight, as a training step's two directions, then one backward."""
        module.zero_grad()
        losses = [module.loss(h, t) for h, t in zip(hidden, targets)]
        free_meanwhile = len(module.buffers._free) if module.buffers is not None else 0
        sum(losses).backward()
        return losses, [p.grad.clone() for p in module.parameters()], free_meanwhile

    kept: list[int] = []
    for _ in range(2):
        ours, theirs = step(pooled), step(plain)
        assert ours[2] == 0  # both buffers in use during the step: none left in the pool
        memory = sorted(b.data_ptr() for b in pooled.buffers._free)
        assert len(memory) == 2
        assert memory == (kept or memory)  # the second step wrote into the first step's memory
        kept = memory
        for a, b in zip([*ours[0], *ours[1]], [*theirs[0], *theirs[1]]):
            assert torch.equal(a, b)  # the same bits as fresh memory
