"""What makes the exact recurrence fast on a CPU without changing a bit.

Each piece below was measured on torch 2.13 with MKL (scripts/bench_gemm_rows.py,
scripts/bench_lstm_ab.py, docs/benchmarks.md), and each has a probe that checks, once per
weight shape, dtype and thread count, that it keeps the bits on the machine at hand:

* ``step_linear``: the per-step products read a weight packed once into MKL's GEMM layout;
* ``hoisted_inputs``: the input projections of every position with >= ``HOIST_MIN_ROWS`` real
  rows come from one GEMM (``rows_are_independent`` checks that a row's bits do not depend on
  how many rows share its GEMM);
* ``one_thread_per_stack`` and ``on_side_thread``: the backward stack runs on a side thread
  beside the forward one, each on one torch thread for steps of >= 16 rows
  (``same_bits_on_one_thread`` checks that this keeps the bits).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch
from torch import nn

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


def step_linear(weight: torch.Tensor) -> Callable:
    """``x, bias=None -> linear(x, weight, bias)`` for a layer's per-step products.

    When no gradient is needed on a CPU with MKL, the weight is packed once into MKL's GEMM
    layout, so the T per-step GEMMs do not each repack it. The result is bit-identical to
    ``linear``: checked on torch 2.13 for 1 to 100 rows, weights from 16 x 5 to 16384 x 512, with
    and without bias, with 1 and 2 threads (tests/kernels/test_cpu.py, and the fixture tests).

    Args:
        weight: (out, in).
    """
    if _can_prepack(weight):
        packed = torch.ops.mkl._mkl_reorder_linear_weight(weight, PACK_ROWS)
        return lambda x, bias=None: torch.ops.mkl._mkl_linear(x, packed, weight, bias, PACK_ROWS)
    return lambda x, bias=None: nn.functional.linear(x, weight, bias)


def _can_prepack(weight: torch.Tensor) -> bool:
    return (
        weight.device.type == "cpu"
        and weight.dtype == torch.float32
        and not (torch.is_grad_enabled() and weight.requires_grad)
        and torch.backends.mkl.is_available()
        and hasattr(torch.ops.mkl, "_mkl_reorder_linear_weight")
    )


_INDEPENDENT: dict[tuple, bool] = {}


def rows_are_independent(weight: torch.Tensor) -> bool:
    """Whether ``linear`` gives each row the same bits in a GEMM of any number (>= 16) of rows.

    True on CPU with MKL (and the row kernels of most BLAS); GPU libraries often pick another
    kernel, or split the sum, by the row count. Checked once per weight shape, dtype, device and
    thread count, on random data of that shape.
    """
    key = (tuple(weight.shape), weight.dtype, weight.device.type, torch.get_num_threads())
    if key not in _INDEPENDENT:
        generator = torch.Generator().manual_seed(0)
        out_dim, in_dim = weight.shape
        options = {"generator": generator, "dtype": weight.dtype}
        x = torch.randn(320, in_dim, **options).to(weight.device)  # (320, in)
        probe = (torch.randn(out_dim, in_dim, **options) * in_dim**-0.5).to(weight.device)
        with torch.no_grad():
            together = nn.functional.linear(x, probe)  # (320, out)
            _INDEPENDENT[key] = all(
                torch.equal(nn.functional.linear(x[start:end], probe), together[start:end])
                for start, end in ((0, HOIST_MIN_ROWS), (100, 117), (150, 214), (240, 320))
            )
    return _INDEPENDENT[key]


def hoisted_inputs(
    inputs: torch.Tensor, lengths: list[int], weight: torch.Tensor
) -> tuple[torch.Tensor, list[int]]:
    """The input projections of every position with >= HOIST_MIN_ROWS real rows, as one GEMM.

    Positions 0 .. S-1 have that many rows (rows are sorted by decreasing length). Their real
    rows are gathered time-major, so that position t's rows are one contiguous block.

    Args:
        inputs: (B, T, D_in); lengths: B ints, non-increasing; weight: (4H, D_in).

    Returns:
        projected (N, 4H), N = the real rows of positions 0 .. S-1, and S + 1 offsets:
        position t's rows are ``projected[offsets[t] : offsets[t + 1]]``.
    """
    steps = lengths[HOIST_MIN_ROWS - 1] if len(lengths) >= HOIST_MIN_ROWS else 0
    rows = [active_rows(lengths, index) for index in range(steps)]
    offsets = [0]
    for count in rows:
        offsets.append(offsets[-1] + count)
    if steps == 0:
        return inputs.new_zeros(0, weight.shape[0]), offsets
    counts = torch.tensor(rows, device=inputs.device)  # (S,)
    real = torch.arange(inputs.shape[0], device=inputs.device) < counts[:, None]  # (S, B)
    packed = inputs[:, :steps].transpose(0, 1)[real]  # (N, D_in), time-major
    return nn.functional.linear(packed, weight), offsets  # (N, 4H)


_ONE_THREAD: dict[tuple, bool] = {}
_CALLER_THREADS = threading.local()  # .count: set inside ``one_thread_per_stack``


def same_bits_on_one_thread(weight: torch.Tensor) -> bool:
    """Whether ``linear`` with >= 16 rows gives the same bits on 1 thread as on the current count.

    True with MKL on CPU, where only some products of 5-11 rows round by thread count. Checked
    once per weight shape, dtype and thread count, on random data of that shape.
    """
    threads = torch.get_num_threads()
    key = (tuple(weight.shape), weight.dtype, threads)
    if key not in _ONE_THREAD:
        generator = torch.Generator().manual_seed(1)
        out_dim, in_dim = weight.shape
        x = torch.randn(80, in_dim, generator=generator, dtype=weight.dtype)  # (80, in)
        probe = torch.randn(out_dim, in_dim, generator=generator, dtype=weight.dtype) * in_dim**-0.5
        bias = torch.randn(out_dim, generator=generator, dtype=weight.dtype)
        with torch.no_grad():
            products = [step_linear(probe)(x[:rows], bias) for rows in (16, 17, 64, 80)]
            torch.set_num_threads(1)
            try:
                alone = [step_linear(probe)(x[:rows], bias) for rows in (16, 17, 64, 80)]
            finally:
                torch.set_num_threads(threads)
        _ONE_THREAD[key] = all(torch.equal(a, b) for a, b in zip(products, alone))
    return _ONE_THREAD[key]


@contextlib.contextmanager
def one_thread_per_stack() -> Iterator[None]:
    """Within this (per Python thread): steps of >= 16 rows run on one torch thread.

    For a stack that runs beside another one (``on_side_thread``): two stacks on one thread
    each keep two cores busy without the two sharing each core. Steps with fewer than
    HOIST_MIN_ROWS rows keep the caller's thread count, since some products of 5-11 rows round
    by thread count; from 16 rows up the bits are the same (``same_bits_on_one_thread``), and
    the gate arithmetic splits its work between threads at multiples of 32 elements when the
    cell size is a multiple of 64, so its bits do not change either.
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


def caller_threads(cell_size: int, weights: tuple[torch.Tensor, ...]) -> int | None:
    """Inside ``one_thread_per_stack`` where that keeps every bit: the caller's thread count.

    None: keep the thread count as it is (outside it, on one thread, or where a probe fails).
    """
    caller = getattr(_CALLER_THREADS, "count", None)
    if caller is None or caller == 1 or cell_size % 64 != 0:
        return None
    if not all(same_bits_on_one_thread(weight) for weight in weights):
        return None
    return caller


def threads_for(rows: int, caller: int) -> int:
    """The torch threads a step of ``rows`` rows runs on inside ``one_thread_per_stack``."""
    return 1 if rows >= HOIST_MIN_ROWS else caller


_POOL: tuple[int, ThreadPoolExecutor] | None = None  # (the process id, its pool)


def on_side_thread(function: Callable[[], T]) -> Callable[[], T]:
    """Start ``function`` on the side thread, in the caller's grad mode; -> wait for its result."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():  # a forked child has no copy of the thread
        _POOL = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="elmo-backward"))
    inference = torch.is_inference_mode_enabled()

    def in_callers_mode() -> T:
        with torch.inference_mode(inference), torch.no_grad():
            return function()

    return _POOL[1].submit(in_callers_mode).result


def on_one_thread(function: Callable[[], T]) -> Callable[[], T]:
    """``function`` inside ``one_thread_per_stack``."""

    def run() -> T:
        with one_thread_per_stack():
            return function()

    return run
