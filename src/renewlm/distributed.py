"""Processes and devices: one plain process, or many under `torchrun` (one node or many).

Training, evaluation and soups all run on a `Dist`: `setup()` makes a run's, `Dist.single(device)`
one plain process's (`renewlm eval`, a soup's search, tests). Under torchrun, RANK/WORLD_SIZE/LOCAL_RANK
are set and the process group starts with NCCL on CUDA and gloo on CPU. How the model is placed on them (FSDP2 sharding, precision, compile) is
model/parallel.py's. All communication is torch.distributed's; renewlm adds none of its own.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @classmethod
    def single(cls, device: torch.device) -> Dist:
        """One plain process on `device`, in no process group."""
        return cls(rank=0, world=1, local_rank=0, device=device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def first_message(self, message: str | None) -> str | None:
        """The first non-empty message of any process, on every process: a failure anywhere stops all."""
        if not self.distributed:
            return message
        messages: list = [None] * self.world
        dist.all_gather_object(messages, message)
        return next((m for m in messages if m), None)

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over processes of a few floats (one collective)."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def hardware(self) -> dict:
        """Where the processes run, as a version records it: the device's name, how many, and the host."""
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else f"cpu ({os.cpu_count()} cores)"
        return {"name": name, "count": self.world, "host": socket.gethostname()}


def setup() -> Dist:
    """Join the process group when started by torchrun; otherwise a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        torch.set_float32_matmul_precision("high")  # TF32 for fp32 matmuls (the head's fp32 work), as torchtitan
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(minutes=30), device_id=device if device.type == "cuda" else None)
    return Dist(rank=rank, world=world, local_rank=local_rank, device=device)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()

