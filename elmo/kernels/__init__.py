"""Recurrence kernels: how the LSTM contextualiser's recurrence runs, chosen by name.

    bilm.kernel = "fused"                 # or ElmoEmbedder(..., kernel="fused"), trainer.kernel=fused

``exact`` (the default) keeps every bit of the reference loop on CPU; ``fused`` is equal up to
float rounding; ``bf16`` is the fused kernel with its products in bfloat16 (on the published
small and medium shapes those of 16 rows or more), for inference where the CPU has bfloat16
instructions (refused elsewhere).

A new kernel is a subclass of ``RecurrenceKernel`` (``elmo.kernels.base``) in a
file of its own, plus one line in ``KERNELS`` (or a ``register_kernel`` call).
"""

from __future__ import annotations

from elmo.kernels.base import RecurrenceKernel
from elmo.kernels.bf16 import Bf16Kernel
from elmo.kernels.exact import ExactKernel
from elmo.kernels.fused import FusedKernel

KERNELS: dict[str, type[RecurrenceKernel]] = {"exact": ExactKernel, "fused": FusedKernel, "bf16": Bf16Kernel}
DEFAULT_KERNEL = "exact"


def register_kernel(name: str, kernel: type[RecurrenceKernel]) -> None:
    """Make ``kernel`` selectable as ``name`` everywhere a kernel name is accepted."""
    if not (isinstance(kernel, type) and issubclass(kernel, RecurrenceKernel)):
        raise TypeError(f"a kernel must be a RecurrenceKernel subclass, got {kernel!r}")
    KERNELS[name] = kernel


def kernel_names(training: bool = False) -> list[str]:
    """The names a kernel setting accepts (``training``: those of kernels that train)."""
    return [name for name, kernel in KERNELS.items() if kernel.trains or not training]


def get_kernel(kernel: str | RecurrenceKernel) -> RecurrenceKernel:
    """The kernel of that name (a kernel instance passes through)."""
    if isinstance(kernel, RecurrenceKernel):
        return kernel
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; expected one of {kernel_names()}")
    return KERNELS[kernel]()


__all__ = ["DEFAULT_KERNEL", "KERNELS", "RecurrenceKernel", "get_kernel", "kernel_names", "register_kernel"]
