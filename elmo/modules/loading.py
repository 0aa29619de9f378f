"""Building a model whose weights are about to be loaded: without drawing random ones first.

A module's constructor fills its parameters with random numbers (``nn.Linear``'s Kaiming
uniform, our LSTM's uniform, ...). When a file's weights replace them at once, drawing those
numbers is wasted: on the published ORIGINAL model, 0.41 s of a 2.4 s ``elmo embed`` of one
sentence (docs/benchmarks.md). Inside ``without_random_init`` the random initialisers leave
their tensor as it is (memory from ``torch.empty``), and everything else (zeros, constants,
the buffers a constructor computes) runs as usual. The caller must then overwrite every
parameter (``load_published`` and ``from_pretrained`` check that the file holds them all).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

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
