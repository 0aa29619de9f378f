"""Loading a file's weights into a model: built without drawing random ones first, and each
weight at a 64-byte boundary.

A module's constructor fills its parameters with random numbers (``nn.Linear``'s Kaiming
uniform, our LSTM's uniform, ...). When a file's weights replace them at once, drawing those
numbers is wasted: on the published ORIGINAL model, 0.41 s of a 2.4 s ``elmo embed`` of one
sentence (docs/benchmarks.md). Inside ``without_random_init`` the random initialisers leave
their tensor as it is (memory from ``torch.empty``), and everything else (zeros, constants,
the buffers a constructor computes) runs as usual. The caller must then overwrite every
parameter (``load_published`` and ``from_pretrained`` check that the file holds them all).

On some CPUs the BLAS rounds a one-row product differently when its weight does not start at a
64-byte boundary. Measured on an AMD EPYC (Zen 4, AVX-512) with torch 2.13's MKL: ``linear`` of
one row against an 8 x 64 or a 512 x 4,096 weight starting 4, 8 or 24 bytes past a boundary
differed in the last bit from the same weight at a boundary; two or more rows did not. Every
tensor torch allocates starts at a boundary (c10's 64-byte alignment), so a model built in
memory always reads aligned weights. A file's tensors need not: safetensors maps each one at its
offset in the file, and numpy (h5py) aligns to 16 bytes. So a model read back from its directory
gave other bits than the model that wrote it (a sentence alone in its batch's last steps runs
one-row products), and the kernels' probes, which run on fresh weights, would vouch for a layout
the model did not have. The loaders pass each tensor through ``aligned``, which copies only what
is off a boundary: the published shapes' large weights are on one in both formats, so loading
them copies a few biases at most.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

ALIGNMENT = 64  # bytes; c10's alignment of every CPU allocation

# The initialisers that draw random numbers. Deterministic ones (zeros_, constant_, ones_, eye_)
# are cheap and may compute something a constructor relies on, so they still run.
RANDOM_INITIALISERS = frozenset(
    {
        torch.Tensor.uniform_,
        torch.Tensor.normal_,
        nn.init.uniform_,
        nn.init.normal_,
        nn.init.trunc_normal_,
        nn.init.kaiming_uniform_,
        nn.init.kaiming_normal_,
        nn.init.xavier_uniform_,
        nn.init.xavier_normal_,
        nn.init.orthogonal_,
        nn.init.sparse_,
    }
)


class _SkipRandomInit(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in RANDOM_INITIALISERS:
            return args[0] if args else kwargs["tensor"]  # the tensor, left as it is
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def without_random_init() -> Iterator[None]:
    """Within this: random initialisers do nothing, and the global generator is not drawn from.

    For constructing a module whose every parameter is overwritten next (loading a file).
    """
    with _SkipRandomInit():
        yield


def aligned(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` itself when it starts at a 64-byte boundary (or is not on the CPU), else a
    contiguous copy of it, which does."""
    if tensor.device.type != "cpu" or tensor.data_ptr() % ALIGNMENT == 0:
        return tensor
    return tensor.clone(memory_format=torch.contiguous_format)
