"""Single process or torchrun data parallelism behind one small context object.

torchrun sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; when they are present (and
``WORLD_SIZE > 1``) :func:`setup` joins the process group (``nccl`` on CUDA, ``gloo`` on CPU)
and gives each rank its device. Without them everything below is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from restcn_infer.errors import DeviceError

#: Training devices (``restcn-train --device``).
TRAIN_DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Context:
    rank: int
    world_size: int
    device: torch.device
    local_world_size: int = 1  # processes on this machine (they share its CPUs)

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and reports progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cuda`` without a GPU is a DeviceError."""
    if name not in TRAIN_DEVICES:
        raise DeviceError(f"unknown device {name!r}; expected one of {TRAIN_DEVICES}")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: no CUDA device is available (torch "
                         f"{torch.__version__}, built with CUDA {torch.version.cuda})")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def setup(device: str) -> Context:
    """Join the torchrun process group if there is one; pick this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return Context(rank=rank, world_size=world_size, device=dev,
                   local_world_size=local_world_size)


def cleanup(ctx: Context) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(ctx: Context, tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (a no-op in a single process)."""
    if ctx.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def average_buffers(ctx: Context, module: torch.nn.Module) -> None:
    """Average floating-point buffers (BatchNorm running statistics) over ranks in place.

    DDP broadcasts rank 0's buffers at every forward, but the last training step leaves each
    rank with its own; averaging makes evaluation and the saved weights the same everywhere.
    """
    if not ctx.distributed:
        return
    for buf in module.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            buf.div_(ctx.world_size)


def all_gather_objects(ctx: Context, obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` (``[obj]`` in a single process)."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()
