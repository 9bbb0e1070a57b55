"""Data-parallel training with torch's DistributedDataParallel, one process per GPU (or CPU worker), launched
by ``torchrun`` (``faceapp train --nproc N`` starts it; the environment torchrun sets - RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR/PORT - is what turns a run distributed).

How the one training loop (``faceapp.training.loop``) runs under it:

- Batches: every rank draws the same global batch from the same seeded sampler (shuffled or P x K) and takes
  its contiguous 1/N share (``RankBatches``), so ``--batch-size`` is the global batch, the steps per epoch and
  the learning-rate schedule are those of one process, and a P x K batch stays P/N identities x K images on
  each rank. DDP averages the gradients, so with equal shares a step is the single-process step (up to
  BatchNorm, whose statistics are per rank, and CPU augmentation, which draws per rank).
- Margin-loss heads (ArcFace, CosFace... weight ``classes x dim``) are replicated: each rank holds the whole
  head and DDP averages its gradient. At this project's class counts (thousands of identities, a few MB)
  that costs nothing; a partial-FC shard (arcface_torch) pays off only with hundreds of thousands of classes.
- Rank 0 alone writes: checkpoints, history, validation, the exported model and progress. Every rank reads the
  checkpoint on ``--resume`` (identical state), and the sampler position (epoch, batch) resumes exactly.
- Alignment caches are built by rank 0 first; the other ranks wait, then read them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.distributed as dist

from faceapp.core.errors import IncompatibleError


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run: rank, world size, local rank (one process: 0, 1, 0)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: str) -> str:
        """The device of this rank: ``cuda:<local rank>`` for a CUDA run, else ``device`` unchanged."""
        if self.enabled and device.startswith("cuda"):
            return f"cuda:{self.local_rank}"
        return device

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the ranks (the logged loss is the global batch's)."""
        if not self.enabled:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world_size


def context_from_env() -> DistContext:
    """The context torchrun describes in the environment (one process when WORLD_SIZE is unset or 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return DistContext()
    return DistContext(rank=int(os.environ["RANK"]), world_size=world, local_rank=int(os.environ.get("LOCAL_RANK", 0)))


def init_process_group(ctx: DistContext, device: str) -> None:
    """Join the process group (NCCL for CUDA, gloo for CPU) when the run is distributed and not joined yet."""
    if not ctx.enabled or dist.is_initialized():
        return
    if device.startswith("cuda"):
        torch.cuda.set_device(ctx.local_rank)
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", rank=ctx.rank, world_size=ctx.world_size)


def close_process_group(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


class RankBatches:
    """This rank's contiguous share of each global batch of ``base`` (a ``BatchSampler``)."""

    def __init__(self, base: object, rank: int, world_size: int, batch_size: int) -> None:
        if batch_size % world_size:
            raise IncompatibleError(f"--batch-size {batch_size} must be a multiple of --nproc {world_size} "
                                    "(every rank takes an equal share of each batch)")
        self.base, self.rank, self.world_size = base, rank, world_size

    def __len__(self) -> int:
        return len(self.base)   # type: ignore[arg-type]

    def batches(self, epoch: int) -> list[np.ndarray]:
        out = []
        for batch in self.base.batches(epoch):   # type: ignore[attr-defined]
            share = len(batch) // self.world_size
            out.append(batch[self.rank * share:(self.rank + 1) * share])
        return out


def wrap(module: torch.nn.Module, ctx: DistContext, device: str) -> torch.nn.Module:
    """``module`` under DistributedDataParallel when the run is distributed and it has trainable weights."""
    if not ctx.enabled or not any(p.requires_grad for p in module.parameters()):
        return module
    ids = [torch.device(device).index] if device.startswith("cuda") else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=False)


def torchrun_command(nproc: int, argv: Sequence[str]) -> list[str]:
    """The torchrun line that runs ``faceapp <argv>`` in ``nproc`` processes on this machine."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "faceapp", *argv]


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``faceapp <argv>`` under torchrun with ``nproc`` processes; returns its exit status."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return subprocess.call(torchrun_command(nproc, argv), env=env)


def strip_nproc(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N`` (what each torchrun worker is given)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--nproc":
            skip = True
            continue
        if arg.startswith("--nproc="):
            continue
        out.append(arg)
    return out


__all__ = ["DistContext", "RankBatches", "close_process_group", "context_from_env", "init_process_group", "launch",
           "strip_nproc", "torchrun_command", "wrap"]
