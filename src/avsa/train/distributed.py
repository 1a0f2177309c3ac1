"""One helper to set up a run from torchrun's variables (DINO-style).

``torchrun --nproc_per_node=G -m avsa.cli train ...`` sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address; a plain
``avsa train`` runs as a single process. Backend: NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from avsa.errors import ConfigError
from avsa.train.config import DEVICE_TYPES


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` → CUDA (this process's local GPU) when available, else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise ConfigError(f"device={name!r} is not a device avsa trains on; use auto, cpu, cuda or cuda:<index>")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name!r} but CUDA is not available here; use device=cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


def setup(device: str = "auto") -> DistInfo:
    """Initialise the process group when launched by torchrun; no-op otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def teardown() -> None:
    """Destroy the process group if one was created."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def any_true(flag: bool, info: DistInfo) -> bool:
    """True on every rank when ``flag`` is true on at least one."""
    if not info.distributed:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def mean_over_ranks(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Average scalar metrics over all ranks (for logging)."""
    if not info.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], device=info.device, dtype=torch.float64)
    dist.all_reduce(t)
    t /= info.world_size
    return dict(zip(keys, t.tolist()))
