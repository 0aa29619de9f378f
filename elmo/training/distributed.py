"""Multi-process training under torchrun (DistributedDataParallel); a no-op in one process."""

from __future__ import annotations

import io
import os
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch import nn


class World(NamedTuple):
    rank: int  # this process's index
    size: int  # number of processes
    local_rank: int  # index on this machine (selects the GPU)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup() -> World:
    """Join the process group torchrun describes (gloo on CPU, nccl on GPU); one process otherwise."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(0, 1, 0)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    return World(dist.get_rank(), dist.get_world_size(), local_rank)


def wrap(module: nn.Module, device: torch.device, find_unused: bool = False) -> nn.Module:
    """DistributedDataParallel around ``module`` (gradients averaged over processes)."""
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        module, device_ids=device_ids, find_unused_parameters=find_unused
    )


def gather(obj: Any, world: World) -> list[Any]:
    """Every process's ``obj``, in rank order (a one-element list in one process).

    ``obj`` holds tensors and plain data. It travels as ``torch.save`` bytes: pickling tensors
    straight through ``all_gather_object`` fails to unpickle them (UntypedStorage has no dtype).
    """
    if world.size == 1:
        return [obj]
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    gathered: list[Any] = [None] * world.size
    dist.all_gather_object(gathered, buffer.getvalue())
    return [
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True) for data in gathered
    ]


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def teardown(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
