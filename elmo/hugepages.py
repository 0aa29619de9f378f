"""Transparent huge pages for torch's large tensors: fewer page faults on every fresh allocation.

torch's CPU allocator takes memory from glibc's ``malloc``, which maps blocks above its mmap
threshold (at most 32 MiB) afresh and unmaps them on free. Each new mapping then faults its
pages in on first touch, one 4 KiB page at a time, so an elementwise op writing a fresh
42 MiB tensor (a training step's sampled softmax: 1,280 predictions x 8,193 logits) spends most
of its time in the kernel's fault handler: ~40 ms for what the arithmetic does in a few.

With ``THP_MEM_ALLOC_ENABLE=1`` torch aligns allocations of 2 MiB and more to 2 MiB and asks the
kernel for huge pages there (``madvise(MADV_HUGEPAGE)``): 512 times fewer faults. A training
step of the published small shape took 8% less time (1,363 -> 1,248 ms, batch 64, 2 threads;
docs/benchmarks.md).
The kernel decides: with ``/sys/kernel/mm/transparent_hugepage/enabled`` at ``never`` nothing
changes, and at ``always`` every large mapping already gets them.

torch reads the variable once, at its first allocation, so it is set before torch is imported,
and only when the user has not set it (``THP_MEM_ALLOC_ENABLE=0`` keeps 4 KiB pages).
"""

from __future__ import annotations

import os
import sys

SETTING = "THP_MEM_ALLOC_ENABLE"
added = False  # whether this process's environment holds the setting because of us, not the user


def use_huge_pages() -> bool:
    """Set ``THP_MEM_ALLOC_ENABLE=1`` for this process (and its children) unless it is too late
    (torch already imported) or the user chose. -> whether it was set."""
    global added
    if "torch" in sys.modules or SETTING in os.environ:
        return False
    os.environ[SETTING] = "1"
    added = True
    return True
