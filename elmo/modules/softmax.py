"""The output layer of the language model, shared by the forward and the backward direction.

Three kinds sit behind one interface, ``Softmax``:

* ``loss(hidden, targets)``: the mean negative log-likelihood used for training (an estimate
  for the sampled softmax while training);
* ``nll(hidden, targets)``: the exact per-token negative log-likelihood, for evaluation;
* ``log_probs(hidden)``: the exact distribution over the whole vocabulary;
* ``init_unigram_bias(log_probs)``: start the biases at a unigram distribution (the
  ``unigram`` choice of ``BIAS_INITS``).

The callers flatten and mask first: ``hidden`` is (N, D) for the N real tokens of a batch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class Softmax(nn.Module):
    """Base class: a distribution over V words given a D-dimensional hidden state."""

    # Whether a training step can leave some parameters without a gradient (DistributedDataParallel
    # must then be told, with find_unused_parameters).
    has_unused_parameters: bool = False

    def forward(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Same as ``loss``: (N, D) hidden states and (N,) long targets -> scalar mean NLL."""
        return self.loss(hidden, targets)

    def loss(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Training loss: (N, D) hidden states, (N,) long target ids -> scalar mean NLL."""
        return self.nll(hidden, targets).mean()

    def nll(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Exact NLL: (N, D) hidden states, (N,) long target ids -> (N,) -log p(target)."""
        raise NotImplementedError

    def log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        """Exact log-distribution: (N, D) hidden states -> (N, V) log-probabilities."""
        raise NotImplementedError

    def init_unigram_bias(self, log_probs: torch.Tensor) -> None:
        """Set the biases so that a zero hidden state predicts ``log_probs``.

        A fresh model's hidden states are small and its weights random, so its logits are near
        its biases: with zero biases it starts near the uniform distribution (log V nats per
        token), with these near the unigram one. A model whose projection is narrow (the tiny
        model's D = 16 before V = 33k words) has to learn the word frequencies in the bias.

        Args:
            log_probs: (V,) finite log-probabilities (smoothed: no -inf); only their
                differences matter, the softmax normalises.

        Raises:
            ValueError: this kind has no bias, or ``log_probs`` is not (V,) and finite.
        """
        raise ValueError(f"the {type(self).__name__} has no bias to start at unigram frequencies")


def _checked_log_probs(log_probs: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """``log_probs`` as float64, after checking that it is (V,) and finite."""
    if tuple(log_probs.shape) != (vocab_size,):
        raise ValueError(
            f"expected ({vocab_size},) log-probabilities, got shape {tuple(log_probs.shape)}"
        )
    if not torch.isfinite(log_probs).all():
        raise ValueError("log-probabilities must be finite (smooth the counts: no -inf)")
    return log_probs.detach().to(torch.float64)


class FullSoftmax(Softmax):
    """A linear layer to V logits and a softmax over all of them.

    Args:
        dim: D, size of the hidden states.
        vocab_size: V, number of output words.
    """

    def __init__(self, dim: int, vocab_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(vocab_size, dim))  # (V, D)
        self.bias = nn.Parameter(torch.empty(vocab_size))  # (V,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # bilm-tf's softmax initialisation: N(0, 1/sqrt(D)) weights and zero bias.
        nn.init.normal_(self.weight, std=1.0 / math.sqrt(self.weight.shape[1]))
        nn.init.zeros_(self.bias)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N, V) unnormalised scores."""
        return F.linear(hidden, self.weight, self.bias)

    def loss(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(hidden), targets)

    def nll(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(hidden), targets, reduction="none")

    def log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.logits(hidden), dim=-1)

    def init_unigram_bias(self, log_probs: torch.Tensor) -> None:
        # bias[w] = log p(w): with h = 0 the logits are the biases, and log_softmax gives log p.
        log_probs = _checked_log_probs(log_probs, self.bias.shape[0])
        with torch.no_grad():
            self.bias.copy_(log_probs)


def log_uniform_probs(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """P(k) = (log(k + 2) - log(k + 1)) / log(V + 1): the Zipfian sampling distribution.

    Returns float64 probabilities with the shape of ``ids``.
    """
    ids = ids.to(torch.float64)
    return (torch.log1p(1.0 / (ids + 1.0))) / math.log(vocab_size + 1.0)


def draw_log_uniform(
    num_draws: int, vocab_size: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(num_draws,) long ids drawn independently from ``log_uniform_probs`` (with replacement)."""
    uniform = torch.rand(num_draws, generator=generator, dtype=torch.float64)
    # Inverse CDF: P(id <= k) = log(k + 2) / log(V + 1), so k = floor(exp(u * log(V + 1))) - 1.
    ids = torch.exp(uniform * math.log(vocab_size + 1.0)).floor().long() - 1
    return ids.clamp_(0, vocab_size - 1)


def sample_log_uniform_unique(
    num_samples: int, vocab_size: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, int]:
    """Draw log-uniform ids with replacement until ``num_samples`` distinct ones are found.

    This is TensorFlow's ``log_uniform_candidate_sampler(unique=True)`` (bilm-tf's sampler).

    Returns:
        The (S,) long distinct ids in order of first draw, and num_tries, the number of draws
        made up to and including the one that found the last of them.
    """
    if not 0 < num_samples <= vocab_size:
        raise ValueError(f"num_samples must be in [1, vocab_size={vocab_size}], got {num_samples}")
    drawn = torch.empty(0, dtype=torch.long)
    while True:
        new = draw_log_uniform(max(2 * num_samples, 64), vocab_size, generator)
        drawn = torch.cat([drawn, new])
        distinct, inverse = torch.unique(drawn, return_inverse=True)
        if len(distinct) >= num_samples:
            break
    positions = torch.arange(len(drawn))
    first_draw = torch.full((len(distinct),), len(drawn), dtype=torch.long)
    first_draw.scatter_reduce_(0, inverse, positions, reduce="amin")  # of each distinct id
    kept = first_draw.sort().values[:num_samples]  # positions of the first S distinct ids
    return drawn[kept], int(kept[-1]) + 1


def expected_counts(
    ids: torch.Tensor, vocab_size: int, num_samples: int, num_tries: int
) -> torch.Tensor:
    """How often ``ids`` are expected among the samples (float64, the shape of ``ids``).

    For unique sampling this is the chance of being drawn in num_tries draws, 1 - (1 - p)^tries,
    computed stably; TensorFlow uses p * S when no draw was repeated (num_tries == S).
    """
    p = log_uniform_probs(ids, vocab_size)
    if num_tries == num_samples:
        return p * num_samples
    return -torch.expm1(num_tries * torch.log1p(-p))


class SampledSoftmax(FullSoftmax):
    """Full-softmax parameters trained with a sampled softmax (Jean et al., 2015), as in bilm-tf.

    While training, ``loss`` scores each target against S shared negatives drawn log-uniformly
    (ids must be sorted by frequency), subtracting log expected counts so that the estimate is
    consistent, and ignoring sampled ids that equal the row's target ("accidental hits"). In eval
    mode ``loss`` is the exact full softmax, and ``nll`` / ``log_probs`` always are.
    ``init_unigram_bias`` is the full softmax's: the correction for sampling is subtracted from
    the logits, so the bias is the full model's, log p(w) at the start.

    Args:
        dim: D, size of the hidden states.
        vocab_size: V, number of output words.
        num_samples: S, negatives per batch (bilm-tf: 8192); at most V.
        generator: CPU random generator for the samples; None uses torch's global one.
    """

    def __init__(
        self,
        dim: int,
        vocab_size: int,
        num_samples: int = 8192,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(dim, vocab_size)
        if not 0 < num_samples <= vocab_size:
            raise ValueError(
                f"num_samples must be in [1, vocab_size={vocab_size}], got {num_samples}"
            )
        self.num_samples = num_samples
        self.generator = generator
        self.buffers = BufferPool()  # SampledNll's (N, S) memory, reused (not saved)

    def loss(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Training: the sampled estimate, ``sampled_logits``' cross-entropy with the true class
        first, computed by ``SampledNll`` in one (N, S) buffer; eval: the full softmax's loss."""
        if not self.training:
            return super().loss(hidden, targets)
        sampled, log_expected = self._draw(targets, hidden.dtype)
        true_logits = self._true_logits(hidden, targets, log_expected)  # (N,)
        corrected_bias = self.bias[sampled] - log_expected(sampled)  # (S,)
        hit_rows, hit_columns = accidental_hits(sampled, targets, self.weight.shape[0])  # (H,) x 2
        weight = self.weight[sampled]  # (S, D)
        nll = SampledNll.apply(
            hidden, weight, corrected_bias, true_logits, hit_rows, hit_columns, self.buffers
        )
        return nll.mean()

    def sampled_logits(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, 1 + S) corrected logits: the true class in column 0, then the S sampled ones.

        The plain computation, kept as the oracle of ``loss`` (their cross-entropy with class 0)
        and for inspection; it draws the samples as ``loss`` does."""
        sampled, log_expected = self._draw(targets, hidden.dtype)
        true_logits = self._true_logits(hidden, targets, log_expected)  # (N,)
        sampled_logits = F.linear(hidden, self.weight[sampled], self.bias[sampled])  # (N, S)
        sampled_logits = sampled_logits - log_expected(sampled)
        accidental = sampled.unsqueeze(0) == targets.unsqueeze(1)  # (N, S)
        sampled_logits = sampled_logits.masked_fill(accidental, float("-inf"))
        return torch.cat([true_logits.unsqueeze(1), sampled_logits], dim=1)  # (N, 1 + S)

    def _draw(
        self, targets: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
        """This batch's S distinct negatives (S,) and the log of an id's expected count."""
        vocab_size = self.weight.shape[0]
        sampled, num_tries = sample_log_uniform_unique(self.num_samples, vocab_size, self.generator)

        def log_expected(ids: torch.Tensor) -> torch.Tensor:
            counts = expected_counts(ids, vocab_size, self.num_samples, num_tries)
            return counts.log().to(dtype)

        return sampled.to(targets.device), log_expected

    def _true_logits(
        self, hidden: torch.Tensor, targets: torch.Tensor, log_expected: Callable
    ) -> torch.Tensor:
        """(N,) each row's corrected logit of its own target."""
        true_logits = (hidden * self.weight[targets]).sum(-1) + self.bias[targets]  # (N,)
        return true_logits - log_expected(targets)


def accidental_hits(
    sampled: torch.Tensor, targets: torch.Tensor, vocab_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where a sampled id equals the row's target: (rows (H,), columns (H,)), the nonzero places
    of ``sampled.unsqueeze(0) == targets.unsqueeze(1)`` without its (N, S) comparison (at most
    one per row: the samples are distinct).

    Args:
        sampled: (S,) distinct ids; targets: (N,) ids; both below ``vocab_size``.
    """
    column = torch.full((vocab_size,), -1, dtype=torch.long, device=sampled.device)  # (V,)
    column[sampled] = torch.arange(len(sampled), device=sampled.device)
    hit = column[targets]  # (N,) each row's sampled column of its target, or -1
    rows = (hit >= 0).nonzero().squeeze(1)  # (H,)
    return rows, hit[rows]


class SampledNll(torch.autograd.Function):
    """Per row, ``logsumexp([true, sampled logits]) - true``: the cross-entropy of the sampled
    softmax with the true class first, without materialising ``sampled_logits``' (N, 1 + S).

    The plain route (linear, correction, mask, concatenation, log-softmax, and the backward of
    each) writes a fresh (N, S) tensor about ten times per step, 42 MiB each at batch 64 x 20
    with 8,192 samples; this one writes one, the logits, turned into probabilities and then
    into their gradient in place (so its backward runs once). Equal to the plain
    route up to rounding (tests/modules/test_softmax.py, in float64 to 1e-12).

    Args (forward): hidden (N, D); weight (S, D) and corrected bias (S,) of the sampled ids;
    true_logits (N,) corrected; hit_rows and hit_columns (H,) each, the places of the samples
    equal to their row's target (left out; ``accidental_hits``). Returns (N,) negative
    log-likelihoods.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, hidden, weight, bias, true_logits, hit_rows, hit_columns, buffers=None):
        rows, columns = len(hidden), len(weight)
        flat = buffers.take(rows * columns, hidden) if buffers is not None else None
        out = flat[: rows * columns].view(rows, columns) if flat is not None else None
        probs = torch.addmm(bias, hidden, weight.t(), out=out)  # (N, S) logits, then probabilities
        probs[hit_rows, hit_columns] = float("-inf")
        top = torch.maximum(probs.amax(dim=1), true_logits)  # (N,) each row's largest logit
        probs.sub_(top.unsqueeze(1)).exp_()
        true_exp = (true_logits - top).exp()  # (N,)
        total = probs.sum(dim=1) + true_exp  # (N,) the partition function, over exp(top)
        probs.div_(total.unsqueeze(1))
        ctx.save_for_backward(hidden, weight, probs, true_exp / total)
        ctx.used, ctx.buffers, ctx.flat = False, buffers, flat
        return total.log() + top - true_logits

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        if ctx.used:  # the probabilities below are overwritten by their gradient
            raise RuntimeError("SampledNll's backward runs once (no retain_graph=True)")
        ctx.used = True
        hidden, weight, probs, true_prob = ctx.saved_tensors
        grad_logits = probs.mul_(grad.unsqueeze(1))  # (N, S): d nll / d logit = its probability
        grad_hidden = grad_logits @ weight  # (N, D)
        grad_weight = grad_logits.t() @ hidden  # (S, D)
        grad_bias = grad_logits.sum(dim=0)  # (S,)
        if ctx.buffers is not None:  # nothing returned shares its memory: the next call's now
            ctx.buffers.give(ctx.flat)
        grad_true = grad * (true_prob - 1.0)  # (N,)
        return grad_hidden, grad_weight, grad_bias, grad_true, None, None, None


class BufferPool:
    """Flat buffers handed from one ``SampledNll`` call to the next, so that a step's (N, S)
    logits are written into memory already mapped, not a fresh 42 MiB one (b64 x 20, 8,192
    samples): the first write of fresh memory faults its pages in, which took as long as the
    product itself. A buffer is given back by the backward that used it, so one in use is
    never handed out; a call whose backward never runs keeps its buffer, which is then freed.

    At most ``capacity`` buffers are kept: a training step holds one per direction.
    """

    def __init__(self, capacity: int = 2) -> None:
        self.capacity = capacity
        self._free: list[torch.Tensor] = []

    def take(self, size: int, like: torch.Tensor) -> torch.Tensor:
        """A flat buffer of at least ``size`` elements, of ``like``'s dtype and device."""
        for index, buffer in enumerate(self._free):
            if buffer.numel() >= size and buffer.dtype == like.dtype and buffer.device == like.device:
                return self._free.pop(index)
        return like.new_empty(size)

    def give(self, buffer: torch.Tensor) -> None:
        """Keep ``buffer`` for a later ``take`` (the largest ``capacity`` ones are kept)."""
        self._free = sorted([*self._free, buffer], key=torch.Tensor.numel)[-self.capacity :]


class AdaptiveSoftmax(Softmax):
    """Adaptive softmax (Grave et al., 2017): frequent words in a head, rare ones in clusters.

    Wraps ``torch.nn.AdaptiveLogSoftmaxWithLoss``; ids must be sorted by frequency.

    Args:
        dim: D, size of the hidden states.
        vocab_size: V, number of output words.
        cutoffs: increasing ids where the clusters start, e.g. [2000, 10000] (all < V).
        div_value: each cluster's projection is this many times smaller than the previous one.
        bias: give the head and each cluster's output layer a bias, zero at first (torch's
            have none); ``init_unigram_bias`` needs them. They are added without drawing random
            numbers, so every weight is the one the softmax without biases would have had.
    """

    # A batch whose targets all fall in the head leaves the tail clusters without a gradient.
    has_unused_parameters = True

    def __init__(
        self,
        dim: int,
        vocab_size: int,
        cutoffs: Sequence[int],
        div_value: float = 4.0,
        bias: bool = False,
    ) -> None:
        super().__init__()
        smallest = int(dim // div_value ** len(cutoffs))  # the last cluster's projection size
        if smallest < 1:
            raise ValueError(
                f"dim={dim} with div_value={div_value} and {len(cutoffs)} clusters leaves the last "
                f"cluster a projection of size {dim / div_value ** len(cutoffs):.2f} < 1"
            )
        self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(
            dim, vocab_size, list(cutoffs), div_value=div_value
        )
        if bias:  # torch's forward and log_prob call the layers, so they use the biases
            head = self.adaptive.head
            head.bias = nn.Parameter(torch.zeros(head.out_features))  # (shortlist + clusters,)
            self.adaptive.head_bias = True
            for _, output in self.adaptive.tail:
                output.bias = nn.Parameter(torch.zeros(output.out_features))  # (cluster size,)

    def loss(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.adaptive(hidden, targets).loss

    def nll(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return -self.adaptive(hidden, targets).output  # (N,) log p(target) per row

    def log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.adaptive.log_prob(hidden)  # (N, D) -> (N, V)

    def init_unigram_bias(self, log_probs: torch.Tensor) -> None:
        # p(w) = p(w's cluster) p(w | cluster) with p(shortlist word) directly in the head: the
        # head's bias is log p(w) for the shortlist and log p(cluster) = logsumexp over its words
        # for each cluster's entry, and each cluster's output bias is log p(w | cluster).
        head = self.adaptive.head
        if head.bias is None:
            raise ValueError(
                "this adaptive softmax has no biases to start at unigram frequencies (build it "
                "with bias=True)"
            )
        log_probs = _checked_log_probs(log_probs, self.adaptive.n_classes)
        edges = self.adaptive.cutoffs  # [c1, ..., V]: the clusters are [c_i, c_i+1)
        clusters = [log_probs[start:stop] for start, stop in itertools.pairwise(edges)]
        cluster_log_probs = torch.stack([words.logsumexp(0) for words in clusters])
        with torch.no_grad():
            head.bias.copy_(torch.cat([log_probs[: edges[0]], cluster_log_probs]))
            for (_, output), words, total in zip(self.adaptive.tail, clusters, cluster_log_probs):
                output.bias.copy_(words - total)


# The softmax kinds, by their config name (``SoftmaxConfig.kind`` is checked against these).
SOFTMAX_KINDS = {"full": FullSoftmax, "sampled": SampledSoftmax, "adaptive": AdaptiveSoftmax}

# How a fresh softmax's biases start (``SoftmaxConfig.init_bias`` is checked against these): zero
# (bilm-tf's), or unigram (``Softmax.init_unigram_bias`` with the training targets' frequencies).
BIAS_INITS = ("zero", "unigram")


def build_softmax(kind: str, dim: int, vocab_size: int, **kwargs) -> Softmax:
    """The softmax of ``kind`` (a key of ``SOFTMAX_KINDS``); kwargs go to its class."""
    if kind not in SOFTMAX_KINDS:
        raise ValueError(f"unknown softmax kind {kind!r}; expected one of {sorted(SOFTMAX_KINDS)}")
    return SOFTMAX_KINDS[kind](dim, vocab_size, **kwargs)
