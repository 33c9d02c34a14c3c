"""Process-group setup and deterministic data sharding for `torchrun` (single- or multi-node).

`torchrun --nproc_per_node=N [--nnodes=M ...] -m roberta.cli pretrain ...` sets RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT; `init_distributed()` reads them. Without them everything runs as one process.
NCCL is used on GPU, gloo on CPU.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | torch.device | None = None, backend: str | None = None) -> DistInfo:
    """Join the process group described by the torchrun environment (idempotent); pick this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{local_rank}")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        backend = backend or ("nccl" if device.type == "cuda" else "gloo")
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        logger.info("joined process group: rank %d of %d (%s, %s)", rank, world_size, backend, device)
    if dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def cleanup() -> None:
    """Leave the process group (end of a torchrun job)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    """Sum over ranks (a no-op on one process)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def gather_objects(obj) -> list:
    """Every rank's `obj`, indexed by rank (a one-element list on one process)."""
    if dist.is_available() and dist.is_initialized():
        out = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]


class ShardedSampler(torch.utils.data.Sampler):
    """A deterministic, resumable DistributedSampler: order = f(seed, epoch), rank r takes every world-th index.

    Like torch's DistributedSampler, the index list is padded (by repeating its start) to a multiple of the
    world size so every rank sees the same number of items. `start` skips that many of this rank's items,
    which is how a resumed run continues mid-epoch without reading the skipped data.
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1, shuffle: bool = True, seed: int = 0,
                 lengths=None, batch_size: int = 1):
        if length <= 0:
            raise ValueError("cannot sample from an empty dataset")
        if lengths is not None and len(lengths) != length:
            raise ValueError(f"lengths has {len(lengths)} entries for a dataset of {length} items")
        self.length, self.rank, self.world_size = length, rank, world_size
        self.shuffle, self.seed = shuffle, seed
        self.lengths = None if lengths is None else torch.as_tensor(lengths, dtype=torch.long)  # (N,)
        self.batch_size = batch_size
        self.epoch, self.start = 0, 0
        self.per_rank = math.ceil(length / world_size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.length, generator=g).tolist()
            if self.lengths is not None:
                order = self._group_by_length(order, g)
        else:
            order = list(range(self.length))
        total = self.per_rank * self.world_size
        while len(order) < total:  # (a loop: a dataset smaller than the world size repeats more than once)
            order += order[: total - len(order)]
        return order[self.rank:total:self.world_size]

    def _group_by_length(self, order: list[int], g: torch.Generator) -> list[int]:
        """transformers' `group_by_length`: batches of similar lengths, so padding wastes little compute.

        The shuffled order is cut into mega-batches of 50 global batches, each sorted by length (longest
        first) and cut into global batches (rank r then takes every world-th item of each); the batches are
        then shuffled, so a step's length is random while its examples are alike. Still f(seed, epoch).
        """
        step = self.batch_size * self.world_size
        mega = step * 50
        batches = []
        for i in range(0, len(order), mega):
            chunk = torch.tensor(order[i:i + mega])
            chunk = chunk[torch.argsort(self.lengths[chunk], descending=True, stable=True)].tolist()
            batches += [chunk[k:k + step] for k in range(0, len(chunk), step)]
        # The last, possibly short batch stays last: a short batch mid-epoch would upset the per-rank split.
        head, tail = batches[:-1], batches[-1:]
        head = [head[k] for k in torch.randperm(len(head), generator=g).tolist()]
        return [j for batch in head + tail for j in batch]

    def __iter__(self):
        return iter(self.indices()[self.start:])

    def __len__(self) -> int:
        return self.per_rank - self.start
