"""The learner under torchrun: ranks share the rollouts and the micro-batches of one global batch (torch.distributed).

`torchrun --nproc_per_node N -m distillgym.cli train ...` (or `python -m torch.distributed.run ...`) starts N ranks
of the same run; one process (no WORLD_SIZE, or 1) is the default and needs nothing from here. Each rank:

- holds the whole model and optimizer (data parallel, DDP's scheme), built from the same seed, so every rank
  starts equal and, taking the same step, stays equal;
- plays its share of the iteration's tasks (task i on rank i mod N, whole GRPO groups), and the episodes are
  gathered so that every rank holds the iteration's whole batch in the order one process would make it: every
  decision an algorithm takes on the batch (advantages, filters, skips) is the same on every rank;
- backpropagates its share of the step's micro-batches (micro-batch j on rank j mod N) with the loss divided by the
  whole step's token or sequence counts, then the gradients are summed across ranks in one flat all-reduce: the
  step's gradient is one process's, and every rank takes the same optimizer step.

Rank 0 alone evaluates, logs, writes checkpoints and the final model. A checkpoint holds whole (unsharded) state,
so a run resumes on any number of ranks. Sampled rollouts depend on the world size (an episode's sampling seed is
its position in its rank's share); expert rollouts and the update do not.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def on(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init(device: torch.device) -> Dist:
    """Join the process group torchrun describes (gloo on CPU, NCCL on CUDA); one process: Dist(0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as tdist

    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return Dist(rank=tdist.get_rank(), world=tdist.get_world_size())


def share(items: Sequence[T], dist: Dist) -> list[T]:
    """This rank's share of `items` (item i on rank i mod world)."""
    return list(items)[dist.rank :: dist.world]


def gather_shares(mine: list[Any], sizes: Sequence[int], dist: Dist) -> list[Any]:
    """Every rank's `mine` (rank r's share of len(sizes) items: item i on rank i mod world, item i made of sizes[i]
    consecutive entries), reassembled in item order on every rank."""
    import torch.distributed as tdist

    shares: list[Any] = [None] * dist.world
    tdist.all_gather_object(shares, mine)
    out: list[Any] = []
    cursor = [0] * dist.world
    for i, size in enumerate(sizes):
        r = i % dist.world
        out.extend(shares[r][cursor[r] : cursor[r] + size])
        cursor[r] += size
    return out


def sum_gradients(params: Sequence[torch.Tensor], dist: Dist) -> None:
    """Sum every parameter's gradient across ranks (one flat all-reduce; a rank without a micro-batch adds 0)."""
    import torch.distributed as tdist

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    tdist.all_reduce(flat)
    offset = 0
    for p, g in zip(params, grads, strict=True):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def sum_floats(values: dict[str, float], dist: Dist) -> dict[str, float]:
    """Per key, the sum across ranks of `values` (a rank may lack a key: one without a micro-batch has no metrics)."""
    import torch.distributed as tdist

    every: list[Any] = [None] * dist.world
    tdist.all_gather_object(every, values)
    out: dict[str, float] = {}
    for d in every:
        for k, v in d.items():
            out[k] = out.get(k, 0.0) + float(v)
    return out
