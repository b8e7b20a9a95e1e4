"""Data-parallel runs: the process group, DDP wrapping, and splitting the data across ranks.

``--nproc N`` starts N copies of the experiment under ``torch.distributed.run``
(torchrun); each reads RANK / WORLD_SIZE / LOCAL_RANK from its environment and joins
one process group (NCCL on CUDA, gloo on the CPU). Every rank runs the same code with
the same seed; the model is wrapped in `DistributedDataParallel`, which averages the
gradients, and each rank sees its own slice of the data. Only rank 0 writes files.
With a single process every helper here is a no-op, so experiments call them always.
"""

from __future__ import annotations

import os
from typing import Any


def env_rank() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment; (0, 1, 0) outside it."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def init_process_group(device_type: str) -> None:
    """Join the group torchrun set up (NCCL for CUDA, gloo otherwise)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")


def backend_name() -> str | None:
    """The process group's backend ("gloo", "nccl"), or None outside a group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return str(dist.get_backend())
    return None


def gather_ints(value: int, device: Any = "cpu") -> list[int]:
    """Every rank's `value`, in rank order, on every rank (``[value]`` outside a group).

    A collective: every rank must call it, or the others wait for it.
    """
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return [int(value)]
    # NCCL only moves CUDA tensors; gloo takes CPU ones.
    where = device if getattr(device, "type", str(device)) == "cuda" else "cpu"
    mine = torch.tensor([int(value)], dtype=torch.int64, device=where)
    parts = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, mine)
    return [int(p.item()) for p in parts]


def destroy_process_group(*, wait_for_all: bool = False) -> None:
    """Leave the group. `wait_for_all`: first wait until every rank got here, so no rank tears the
    group down while another still talks to it (gloo then aborts the slower rank)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if wait_for_all and dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()


def wrap_model(model: Any, ctx: Any) -> Any:
    """Move `model` to the run's device, compile it if asked, wrap it in DDP when world_size > 1.

    Keep the unwrapped module for checkpoints (``model.module`` when wrapped).
    """
    import torch

    model = model.to(ctx.device)
    if getattr(ctx, "compile", False):
        model = torch.compile(model)
    if ctx.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=ids)
    return model


def sampler(dataset: Any, ctx: Any, *, shuffle: bool = True, drop_last: bool = False) -> Any:
    """A sampler for ``DataLoader``: this rank's share when distributed, seeded shuffling otherwise.

    Call ``sampler.set_epoch(epoch)`` each epoch when it has that method (DistributedSampler).
    """
    import torch
    from torch.utils.data import DistributedSampler, RandomSampler, SequentialSampler

    if ctx.world_size > 1:
        return DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=shuffle,
                                  seed=ctx.seed, drop_last=drop_last)
    if shuffle:
        return RandomSampler(dataset, generator=torch.Generator().manual_seed(ctx.seed))
    return SequentialSampler(dataset)


def shard(n: int, ctx: Any) -> range:
    """Indices ``rank, rank + world, ...`` of ``range(n)``: this rank's rows of an in-memory tensor."""
    return range(ctx.rank, n, ctx.world_size)


def all_reduce_sum(values: Any, ctx: Any) -> Any:
    """Element-wise sum over ranks of per-rank partial sums: a tensor (returned on the CPU) or a
    list of floats (returned as floats). With one process the values come back as they are."""
    import torch

    is_tensor = isinstance(values, torch.Tensor)
    if ctx.world_size == 1:
        return values if is_tensor else [float(v) for v in values]
    import torch.distributed as dist

    # gloo reduces CPU tensors, NCCL CUDA ones; float64 keeps large counts exact.
    device = ctx.device if ctx.device.type == "cuda" else "cpu"
    t = values.to(device).clone() if is_tensor else torch.tensor([float(v) for v in values],
                                                                  dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.cpu() if is_tensor else [float(v) for v in t.tolist()]


def all_reduce_mean(value: float, ctx: Any) -> float:
    """The mean of a scalar over all ranks (for metrics computed on each rank's shard)."""
    return all_reduce_sum([value], ctx)[0] / ctx.world_size


def barrier(ctx: Any) -> None:
    """Wait until every rank gets here (nothing to wait for with one process)."""
    if ctx.world_size > 1:
        import torch.distributed as dist

        dist.barrier()
