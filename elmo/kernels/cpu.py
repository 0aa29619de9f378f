"""What makes the exact recurrence fast on a CPU without changing a bit.

Each piece below was measured on torch 2.13 with MKL (scripts/bench_gemm_rows.py,
scripts/bench_lstm_ab.py, docs/benchmarks.md), and each has a probe that checks, once per
weight shape, dtype and thread count, that it keeps the bits on the machine at hand (the answer
is kept for later processes on the same machine and settings: ``probe_store``):

* ``step_linear``: the per-step products read a weight packed once into MKL's GEMM layout;
* ``hoisted_inputs``: the input projections of every position with >= ``HOIST_MIN_ROWS`` real
  rows come from one GEMM (``rows_are_independent`` checks that a row's bits do not depend on
  how many rows share its GEMM), and without a gradient, on wide inputs, from a GEMM of the
  distinct rows alone (``distinct_rows``: a word's vector wherever it occurs is one row);
* ``few_row_inputs``: the input projections of the positions with fewer rows (every position
  at batch 1) are taken before the recurrence, position by position as before but reading the
  weight in blocks that stay in a core's cache (``blocked_products``; ``few_row_products_exact``
  checks the bits per row count);
* ``one_thread_per_stack`` and ``on_side_thread``: the backward stack runs on a side thread
  beside the forward one, each step on one torch thread at the row counts whose products keep
  their bits there (``rows_alone``: ``one_thread_rows`` below 16 rows, ``same_bits_on_one_thread``
  from 16 up).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import List, TypeVar  # noqa: UP035 (TorchScript reads List)

import torch
from torch import nn

from elmo.kernels.probe_store import remembered
from elmo.modules.lstm import active_rows

T = TypeVar("T")

# MKL picks its GEMM kernel from the row count a weight is packed for; packed for at least 16
# rows, a product has the same bits as ``linear``'s for any number of rows (below: not so).
PACK_ROWS = 64

# From this many real rows up, a time step's input projection is read from one GEMM over all
# such steps (``hoisted_inputs``) instead of a GEMM of its own. A row of an MKL GEMM has the same
# bits whatever the number of rows beside it from 4 rows up on 1 thread and from 2 up on 2 threads
# (scripts/bench_gemm_rows.py); 16 leaves a margin, and ``rows_are_independent`` checks it.
HOIST_MIN_ROWS = 16


def step_linear(weight: torch.Tensor, pack: bool = True) -> Callable:
    """``x, bias=None -> linear(x, weight, bias)`` for a layer's per-step products.

    When no gradient is needed on a CPU with MKL, the weight is packed once into MKL's GEMM
    layout, so the T per-step GEMMs do not each repack it, where that keeps the bits of
    ``linear`` (``packing_keeps_bits``, probed once per weight shape and thread count: true on an
    AMD EPYC for every published shape; false on an Intel Xeon with AVX-512 for weights 1,024 or
    more wide, such as the published projections).
    torch's packed product runs only for exactly ``PACK_ROWS`` rows and calls ``linear`` for
    any other count, so packing is worth its cost (38 ms for a 16384 x 512 weight) only where
    some step has that many rows: ``pack=False`` skips it (``has_rows`` tells).

    Args:
        weight: (out, in).
        pack: pack the weight where that is possible.
    """
    if pack and _can_prepack(weight) and packing_keeps_bits(weight):
        packed = torch.ops.mkl._mkl_reorder_linear_weight(weight, PACK_ROWS)
        return lambda x, bias=None: torch.ops.mkl._mkl_linear(x, packed, weight, bias, PACK_ROWS)
    return lambda x, bias=None: nn.functional.linear(x, weight, bias)


def has_rows(lengths: list[int], rows: int) -> bool:
    """Whether some position has exactly ``rows`` real rows (lengths sorted, decreasing)."""
    if rows < 1 or len(lengths) < rows or lengths[rows - 1] == 0:
        return False
    return len(lengths) == rows or lengths[rows] < lengths[rows - 1]


def _can_prepack(weight: torch.Tensor) -> bool:
    return (
        weight.device.type == "cpu"
        and weight.dtype == torch.float32
        and not (torch.is_grad_enabled() and weight.requires_grad)
        and torch.backends.mkl.is_available()
        and hasattr(torch.ops.mkl, "_mkl_reorder_linear_weight")
    )


def packing_keeps_bits(weight: torch.Tensor) -> bool:
    """Whether MKL's product with a packed weight has ``linear``'s bits for ``PACK_ROWS`` rows,
    with and without a bias, on the current thread count and on one thread (where a stack runs
    beside the other: ``one_thread_per_stack``). MKL picks its packed kernel by CPU, so this is
    checked once per weight shape, dtype and thread count, on random data of that shape.
    """
    threads = torch.get_num_threads()
    key = (tuple(weight.shape), weight.dtype, threads)
    return remembered("packing_keeps_bits", key, lambda: _packing_probe(weight, threads), bool)


def _packing_probe(weight: torch.Tensor, threads: int) -> bool:
    generator = torch.Generator().manual_seed(2)
    out_dim, in_dim = weight.shape
    x = torch.randn(PACK_ROWS, in_dim, generator=generator, dtype=weight.dtype)
    probe = torch.randn(out_dim, in_dim, generator=generator, dtype=weight.dtype) * in_dim**-0.5
    bias = torch.randn(out_dim, generator=generator, dtype=weight.dtype)
    with torch.no_grad():
        packed = torch.ops.mkl._mkl_reorder_linear_weight(probe, PACK_ROWS)
        for count in dict.fromkeys((threads, 1)):
            with thread_count(count):
                for b in (None, bias):
                    product = torch.ops.mkl._mkl_linear(x, packed, probe, b, PACK_ROWS)
                    if not torch.equal(product, nn.functional.linear(x, probe, b)):
                        return False
    return True


def rows_are_independent(weight: torch.Tensor) -> bool:
    """Whether ``linear`` gives each row the same bits in a GEMM of any number (>= 16) of rows.

    True on CPU with MKL (and the row kernels of most BLAS); GPU libraries often pick another
    kernel, or split the sum, by the row count. Checked once per weight shape, dtype, device and
    thread count, on random data of that shape.
    """
    key = (tuple(weight.shape), weight.dtype, weight.device.type, torch.get_num_threads())
    on_cpu = weight.device.type == "cpu"  # the store's fingerprint describes the CPU alone
    compute = lambda: _independence_probe(weight)
    return remembered("rows_are_independent", key, compute, bool, on_disk=on_cpu)


def _independence_probe(weight: torch.Tensor) -> bool:
    generator = torch.Generator().manual_seed(0)
    out_dim, in_dim = weight.shape
    options = {"generator": generator, "dtype": weight.dtype}
    x = torch.randn(320, in_dim, **options).to(weight.device)  # (320, in)
    probe = (torch.randn(out_dim, in_dim, **options) * in_dim**-0.5).to(weight.device)
    with torch.no_grad():
        together = nn.functional.linear(x, probe)  # (320, out)
        return all(
            torch.equal(nn.functional.linear(x[start:end], probe), together[start:end])
            for start, end in ((0, HOIST_MIN_ROWS), (100, 117), (150, 214), (240, 320))
        )


def hoisted_inputs(
    inputs: torch.Tensor, lengths: list[int], weight: torch.Tensor
) -> Sequence[torch.Tensor]:
    """The input projections of every position with >= HOIST_MIN_ROWS real rows, as one GEMM.

    Positions 0 .. S-1 have that many rows (rows are sorted by decreasing length). Their real
    rows are gathered time-major, so that position t's rows are one contiguous block. Without a
    gradient, repeated rows (a word's vector wherever it occurs) are projected once where that
    pays (``distinct_rows``) and each position gathers its rows from the distinct ones.

    Args:
        inputs: (B, T, D_in); lengths: B ints, non-increasing; weight: (4H, D_in).

    Returns:
        position t's (R_t, 4H) projection for t in 0 .. S-1 (S may be 0). With a gradient, views
        of one (N, 4H) tensor taken by one split: its backward joins the steps' gradients in one
        tensor, where a slice per step would zero-fill an (N, 4H) gradient per step (20 MiB at
        batch 64).
    """
    steps = lengths[HOIST_MIN_ROWS - 1] if len(lengths) >= HOIST_MIN_ROWS else 0
    if steps == 0:
        return ()
    rows = [active_rows(lengths, index) for index in range(steps)]
    counts = torch.tensor(rows, device=inputs.device)  # (S,)
    real = torch.arange(inputs.shape[0], device=inputs.device) < counts[:, None]  # (S, B)
    packed = inputs[:, :steps].transpose(0, 1)[real]  # (N, D_in), time-major
    if (distinct := distinct_rows(packed, weight)) is not None:
        unique, inverse = distinct  # (U, D_in), (N,)
        return GatheredRows(nn.functional.linear(unique, weight), inverse.split(rows))  # (U, 4H)
    return nn.functional.linear(packed, weight).split(rows)  # S x (R_t, 4H)


# ``distinct_rows`` projects only the distinct rows of a hoisted GEMM from this input size up.
# A row left out saves 2 * D_in FLOPs per float of its projection; a gathered row costs a copy of
# that float. With the published ORIGINAL shape's first layer (D_in 512) batches of 64 sentences
# ran 1.11x as fast; with the small one's (D_in 128) 0.97x (docs/benchmarks.md, 2026-12-06).
DISTINCT_MIN_INPUT = 256
# ... and only where at most this share of the rows is distinct (a second layer's rows, each a
# word in its context, are all distinct: it then runs the one GEMM as before).
DISTINCT_MAX_SHARE = 0.9
_BIT_VIEWS = {2: torch.int16, 4: torch.int32, 8: torch.int64}  # element size -> integer dtype


def distinct_rows(packed: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The distinct rows of ``packed`` (N, D_in) and each row's index among them, bit for bit, or
    None where projecting them alone is not the lever (module docstring: gradient, device, size).

    A row's projection has the same bits in any GEMM of >= HOIST_MIN_ROWS rows
    (``rows_are_independent``, which ``hoisted_inputs``' caller checks), so the product of the
    U distinct rows, gathered, is the product of all N. Rows are compared by their bits, so
    that -0.0 and 0.0 (equal as numbers) stay apart.

    Returns:
        (U, D_in) distinct rows (U >= HOIST_MIN_ROWS) and (N,) indices into them.
    """
    if (
        weight.device.type != "cpu"
        or packed.shape[1] < DISTINCT_MIN_INPUT
        or packed.element_size() not in _BIT_VIEWS
        or (torch.is_grad_enabled() and (weight.requires_grad or packed.requires_grad))
    ):
        return None
    bits = packed.view(_BIT_VIEWS[packed.element_size()])  # (N, D_in)
    unique, inverse = torch.unique(bits, dim=0, return_inverse=True)  # (U, D_in), (N,)
    if unique.shape[0] < HOIST_MIN_ROWS or unique.shape[0] > DISTINCT_MAX_SHARE * packed.shape[0]:
        return None
    return unique.view(packed.dtype), inverse


class GatheredRows(Sequence[torch.Tensor]):
    """Position t's input projection gathered from the distinct rows' (``distinct_rows``), when
    its step asks for it: (U, 4H) and S index tensors -> S x (R_t, 4H), one (R_t, 4H) at a time
    (an (N, 4H) tensor of them all would be 164 MiB at batch 64 on the ORIGINAL shape)."""

    def __init__(self, projected: torch.Tensor, indices: Sequence[torch.Tensor]) -> None:
        self.projected = projected  # (U, 4H)
        self.indices = indices  # S x (R_t,)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> torch.Tensor:  # position t -> (R_t, 4H)
        return self.projected.index_select(0, self.indices[index])


# ``blocked_products`` reads a weight in blocks of rows of about this size, small enough to stay
# in a core's L2 cache (1 MiB on the machine of docs/benchmarks.md) while every position's
# product is taken from the block: the weight then comes from memory once per layer instead of
# once per position. One-row products are bound by that traffic (a 16384 x 512 weight: 4 ms).
BLOCK_BYTES = 256 * 1024

# Row counts below HOIST_MIN_ROWS that the probes below check, all at once per weight shape.
FEW_ROWS = range(1, HOIST_MIN_ROWS)


def blocked_products(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``linear(x[s], weight)`` for every s: (S, R, D_in) -> (S, R, out), block by block.

    Each block of the weight's rows is one ``bmm`` over the S items, each item an R-row product
    of its own: on CPU its bits are those of ``linear`` on that item alone where
    ``few_row_products_exact`` says so (a GEMM over all S * R rows would round differently).
    """
    return block_products(x, weight_blocks(weight))


def weight_blocks(weight: torch.Tensor) -> list[torch.Tensor]:
    """(out, in) -> the (in, block) transposed blocks of ``block_rows`` rows, in order."""
    return [part.t() for part in weight.split(block_rows(weight))]


def block_products(x: torch.Tensor, blocks: List[torch.Tensor]) -> torch.Tensor:  # noqa: UP006
    """``blocked_products`` from a weight's ``weight_blocks``: (S, R, D_in) -> (S, R, out).
    TorchScript compiles it too (the lanes' loop calls it with blocks made once)."""
    items = x.shape[0]
    parts = [
        torch.bmm(x, block.expand(items, block.shape[0], block.shape[1])) for block in blocks
    ]  # each (S, R, block)
    return torch.cat(parts, dim=-1)  # (S, R, out)


def block_rows(weight: torch.Tensor) -> int:
    """The weight rows of one ``blocked_products`` block: about BLOCK_BYTES, a multiple of 64."""
    return max(64, BLOCK_BYTES // (weight.element_size() * weight.shape[1]) // 64 * 64)


def few_row_products_exact(weight: torch.Tensor, rows: int) -> bool:
    """Whether ``blocked_products`` of R = ``rows`` rows keeps ``linear``'s bits for this weight
    shape, dtype and thread count (CPU only; checked on random data, all of FEW_ROWS at once).

    True with MKL on 1 thread for every count, and on 2 threads except 5-7 and 9-11 rows, whose
    ``linear`` splits its work between the threads (torch 2.13, docs/benchmarks.md).
    """
    if weight.device.type != "cpu" or rows not in FEW_ROWS:
        return False
    key = (tuple(weight.shape), weight.dtype, torch.get_num_threads())
    exact = remembered("few_row_products_exact", key, lambda: _blocked_probe(weight), frozenset)
    return rows in exact


def _blocked_probe(weight: torch.Tensor) -> frozenset[int]:
    generator = torch.Generator().manual_seed(2)
    out_dim, in_dim = weight.shape
    x = torch.randn(2, FEW_ROWS[-1], in_dim, generator=generator, dtype=weight.dtype)
    probe = torch.randn(out_dim, in_dim, generator=generator, dtype=weight.dtype) * in_dim**-0.5
    with torch.no_grad():
        return frozenset(
            count
            for count in FEW_ROWS
            if torch.equal(
                blocked_products(x[:, :count], probe),
                torch.stack([nn.functional.linear(item[:count], probe) for item in x]),
            )
        )


def few_row_inputs(
    inputs: torch.Tensor, lengths: list[int], weight: torch.Tensor, start: int, threads: Callable[[int], int]
) -> dict[int, torch.Tensor]:
    """The input projections of positions ``start`` .. T-1, each with fewer than HOIST_MIN_ROWS
    rows, taken before the recurrence: every run of two or more positions with the same row
    count R is one ``blocked_products``, where that keeps each position's bits.

    Args:
        inputs: (B, T, D_in); lengths: B ints, non-increasing; weight: (4H, D_in).
        start: the first position not hoisted (``hoisted_inputs``).
        threads: the torch threads a step of R rows runs on; the products are taken on as many.

    Returns:
        position -> its (R, 4H) projection; positions left out compute their own. Empty when a
        gradient is needed: it is an inference lever, and the expanded weight's gradient would
        be summed in another order (and held S times over).
    """
    projected: dict[int, torch.Tensor] = {}
    if torch.is_grad_enabled() and (weight.requires_grad or inputs.requires_grad):
        return projected
    index, steps = start, (lengths[0] if lengths else 0)
    while index < steps:
        rows = active_rows(lengths, index)
        end = lengths[rows - 1]  # positions index .. end - 1 have exactly R rows
        with thread_count(threads(rows)):
            if end - index >= 2 and few_row_products_exact(weight, rows):
                block = inputs[:rows, index:end].transpose(0, 1).contiguous()  # (S, R, D_in)
                for offset, product in enumerate(blocked_products(block, weight)):
                    projected[index + offset] = product  # (R, 4H)
        index = end
    return projected


_CALLER_THREADS = threading.local()  # .count: set inside ``one_thread_per_stack``


def same_bits_on_one_thread(weight: torch.Tensor) -> bool:
    """Whether ``linear`` with >= 16 rows gives the same bits on 1 thread as on the current count.

    True with MKL on CPU, where only some products of 5-11 rows round by thread count. Checked
    once per weight shape, dtype and thread count, on random data of that shape.
    """
    threads = torch.get_num_threads()
    key = (tuple(weight.shape), weight.dtype, threads)
    compute = lambda: _one_thread_probe(weight)
    return remembered("same_bits_on_one_thread", key, compute, bool)


def _one_thread_probe(weight: torch.Tensor) -> bool:
    generator = torch.Generator().manual_seed(1)
    out_dim, in_dim = weight.shape
    x = torch.randn(80, in_dim, generator=generator, dtype=weight.dtype)  # (80, in)
    probe = torch.randn(out_dim, in_dim, generator=generator, dtype=weight.dtype) * in_dim**-0.5
    bias = torch.randn(out_dim, generator=generator, dtype=weight.dtype)
    with torch.no_grad():
        products = [step_linear(probe)(x[:rows], bias) for rows in (16, 17, 64, 80)]
        with thread_count(1):
            alone = [step_linear(probe)(x[:rows], bias) for rows in (16, 17, 64, 80)]
    return all(torch.equal(a, b) for a, b in zip(products, alone))


@contextlib.contextmanager
def one_thread_per_stack() -> Iterator[None]:
    """Within this (per Python thread): steps run on one torch thread where that keeps their bits.

    For a stack that runs beside another one (``on_side_thread``): two stacks on one thread
    each keep two cores busy without the two sharing each core. A step moves to one thread at
    the row counts where each of its products keeps its bits there (``rows_alone``: some
    products of 5-11 rows round by thread count on the AMD EPYC, those of 16 rows and up with a
    wide input on the Intel Xeon); the others keep the caller's thread count. The gate
    arithmetic splits its work between threads at multiples of 32 elements when the cell size
    is a multiple of 64, so its bits do not change either (``caller_threads``).
    """
    outer = getattr(_CALLER_THREADS, "count", None)
    _CALLER_THREADS.count = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(_CALLER_THREADS.count)
        _CALLER_THREADS.count = outer


def beside_another_stack() -> bool:
    """Whether this Python thread runs inside ``one_thread_per_stack``."""
    return getattr(_CALLER_THREADS, "count", None) is not None


def caller_threads(cell_size: int) -> int | None:
    """Inside ``one_thread_per_stack``: the caller's thread count, where steps may move to one
    thread at all (``rows_alone`` says at which row counts).

    None: keep the thread count as it is (outside it, on one thread, or a cell size whose gate
    arithmetic splits its work between threads elsewhere than at multiples of 32 elements).
    """
    caller = getattr(_CALLER_THREADS, "count", None)
    if caller is None or caller == 1 or cell_size % 64 != 0:
        return None
    return caller


def rows_alone(products: list[tuple[torch.Tensor, bool]], caller: int) -> frozenset[int]:
    """The row counts at which every per-step product (weight, with a bias or not) keeps on one
    thread the bits it has on ``caller`` threads: those below HOIST_MIN_ROWS by
    ``one_thread_rows``, and HOIST_MIN_ROWS itself standing for every count from there up, by
    ``same_bits_on_one_thread`` (``threads_for`` reads it so).

    On the AMD EPYC: all but 5-7 and 9-11, and 16 up. On the Intel Xeon (AVX-512): 1-15 only,
    as products with an input 1,024 or more wide round differently on 1 and 2 threads from 16
    rows up (README, Exactness).
    """
    with thread_count(caller):  # the probes compare the caller's count with one thread
        found = [one_thread_rows(weight, with_bias) for weight, with_bias in products]
        many = all(same_bits_on_one_thread(weight) for weight, _ in products)
    return frozenset.intersection(*found) | ({HOIST_MIN_ROWS} if many else set())


@contextlib.contextmanager
def thread_count(threads: int) -> Iterator[None]:
    """Within this: torch runs on ``threads`` threads; the count before is restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def one_thread_rows(weight: torch.Tensor, with_bias: bool) -> frozenset[int]:
    """The row counts of FEW_ROWS whose ``linear`` (with a bias or without) has the same bits on
    one thread as on the current count, for this weight shape and dtype (CPU; random data).

    With MKL on torch 2.13 and 2 threads: all but 5-7 and 9-11, so one sentence at a time runs
    each stack on a thread of its own (docs/benchmarks.md).
    """
    threads = torch.get_num_threads()
    key = (tuple(weight.shape), weight.dtype, threads, with_bias)
    compute = lambda: _one_thread_rows_probe(weight, with_bias)
    return remembered("one_thread_rows", key, compute, frozenset)


def _one_thread_rows_probe(weight: torch.Tensor, with_bias: bool) -> frozenset[int]:
    generator = torch.Generator().manual_seed(3)
    out_dim, in_dim = weight.shape
    x = torch.randn(FEW_ROWS[-1], in_dim, generator=generator, dtype=weight.dtype)
    probe = torch.randn(out_dim, in_dim, generator=generator, dtype=weight.dtype) * in_dim**-0.5
    bias = torch.randn(out_dim, generator=generator, dtype=weight.dtype) if with_bias else None
    with torch.no_grad():
        products = [nn.functional.linear(x[:rows], probe, bias) for rows in FEW_ROWS]
        with thread_count(1):
            alone = [nn.functional.linear(x[:rows], probe, bias) for rows in FEW_ROWS]
    return frozenset(rows for rows, a, b in zip(FEW_ROWS, products, alone) if torch.equal(a, b))


def threads_for(rows: int, caller: int, alone: frozenset[int]) -> int:
    """The torch threads a step of ``rows`` rows runs on inside ``one_thread_per_stack``.

    ``alone``: ``rows_alone`` of every product the step takes (HOIST_MIN_ROWS in it: every
    count from there up).
    """
    return 1 if min(rows, HOIST_MIN_ROWS) in alone else caller


_POOL: tuple[int, ThreadPoolExecutor] | None = None  # (the process id, its pool)


def on_side_thread(function: Callable[[], T]) -> Callable[[], T]:
    """Start ``function`` on the side thread, in the caller's grad mode and context; -> wait for
    its result."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():  # a forked child has no copy of the thread
        _POOL = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="elmo-backward"))
    inference = torch.is_inference_mode_enabled()
    context = contextvars.copy_context()  # the caller's context variables (``lanes.rows_alone``)

    def in_callers_mode() -> T:
        with torch.inference_mode(inference), torch.no_grad():
            return function()

    return _POOL[1].submit(context.run, in_callers_mode).result


def on_one_thread(function: Callable[[], T]) -> Callable[[], T]:
    """``function`` inside ``one_thread_per_stack``."""

    def run() -> T:
        with one_thread_per_stack():
            return function()

    return run
