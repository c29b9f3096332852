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

With `parallel=fsdp` the update is FSDP2's (`fully_shard` on every transformer block and the root): each rank holds
1/N of the trained weights, their gradients and AdamW's moments, gathers a block's weights for its forward and
backward and reduce-scatters its gradients (summed: each rank's loss is already its share of the whole step's).
Every rank runs as many forward/backward passes (a rank short of a micro-batch backpropagates one times 0). Rollouts,
teachers and evaluation need whole weights and run a different number of forward passes on each rank, so each rank
also keeps the whole model (`Run.model`), which takes the learner's weights after every optimizer step (one
all-gather per parameter): the sharded state is what FSDP saves (gradients and optimizer moments, 3/4 of AdamW's
memory in fp32); with generation on vLLM servers the whole copy is what rank 0 sends them.

Rank 0 alone evaluates, logs, writes checkpoints and the final model. A checkpoint holds whole (unsharded) state,
so a run resumes on any number of ranks, with either scheme (an FSDP run gathers its optimizer state first).
Sampled rollouts depend on the world size (an episode's sampling seed is its position in its rank's share); expert
rollouts and the update do not.
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


def blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's repeated blocks: the children of its largest ModuleList (a transformer's decoder layers)."""
    lists = [list(m) for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    return max(lists, key=len) if lists else []


def shard(model: torch.nn.Module, dist: Dist, device: torch.device) -> torch.nn.Module:
    """The FSDP2 learner: a copy of `model` with each block and then the root `fully_shard`-ed over the ranks,
    gradients summed across ranks (not averaged)."""
    import copy

    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule, fully_shard

    learner = copy.deepcopy(model)
    mesh = init_device_mesh(device.type, (dist.world,))
    for block in blocks(learner):
        fully_shard(block, mesh=mesh)
    fully_shard(learner, mesh=mesh)
    for m in learner.modules():
        if isinstance(m, FSDPModule):  # a sum, in plain SUM collectives (gloo has no pre-multiplied sum)
            m.set_gradient_divide_factor(1.0)
            m.set_force_sum_reduction_for_comms(True)
    return learner


def whole(t: torch.Tensor) -> torch.Tensor:
    """A sharded tensor (DTensor) gathered whole; any other tensor as it is."""
    from torch.distributed.tensor import DTensor

    return t.full_tensor() if isinstance(t, DTensor) else t


def _trainable(model: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


@torch.no_grad()
def pull_weights(model: torch.nn.Module, learner: torch.nn.Module) -> None:
    """Copy the learner's trained weights into the whole `model` (an all-gather per parameter, on every rank)."""
    for (name, p), (lname, lp) in zip(_trainable(model), _trainable(learner), strict=True):
        if name != lname:
            raise RuntimeError(f"learner and model parameters differ: {lname} against {name}")
        p.copy_(whole(lp))


def push_weights(learner: torch.nn.Module, model: torch.nn.Module) -> None:
    """The whole `model`'s weights (a loaded checkpoint) into the learner's shards."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(learner, model.state_dict(), options=StateDictOptions(full_state_dict=True))


def whole_optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's state_dict with every sharded tensor gathered whole: the one-process format (a collective:
    every rank calls it)."""
    sd = optimizer.state_dict()
    state = {i: {k: whole(v) if torch.is_tensor(v) else v for k, v in sd["state"][i].items()}
             for i in sorted(sd["state"])}
    return {**sd, "state": state}


def load_sharded_optimizer(optimizer: torch.optim.Optimizer, sd: dict[str, Any]) -> None:
    """Load a whole (one-process) optimizer state_dict into an optimizer over sharded parameters: each moment is
    cut into the same shards as its parameter."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    params = [p for group in optimizer.param_groups for p in group["params"]]
    state = {}
    for i in sorted(sd["state"]):
        p = params[i]
        state[i] = {k: distribute_tensor(v.to(p.device), p.device_mesh, p.placements)
                    if isinstance(p, DTensor) and torch.is_tensor(v) and v.shape == p.shape else v
                    for k, v in sd["state"][i].items()}
    optimizer.load_state_dict({**sd, "state": state})


def local_fraction(learner: torch.nn.Module) -> float:
    """The share of the learner's parameter elements this rank holds (1/world when sharded evenly)."""
    from torch.distributed.tensor import DTensor

    params = list(learner.parameters())
    local = sum(p.to_local().numel() if isinstance(p, DTensor) else p.numel() for p in params)
    return local / max(1, sum(p.numel() for p in params))


def _local_bytes(t: torch.Tensor) -> int:
    from torch.distributed.tensor import DTensor

    local = t.to_local() if isinstance(t, DTensor) else t
    return local.numel() * local.element_size()


def train_state_bytes(trained: torch.nn.Module, optimizer: torch.optim.Optimizer,
                      whole_copy: torch.nn.Module | None = None) -> int:
    """Bytes this rank holds for the update: the trained weights, their gradients and the optimizer's state (this
    rank's shards under FSDP), plus the whole copy FSDP keeps for generation when given."""
    total = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            total += _local_bytes(p) + (_local_bytes(p.grad) if p.grad is not None else 0)
            total += sum(_local_bytes(v) for v in optimizer.state.get(p, {}).values() if torch.is_tensor(v))
    if whole_copy is not None:
        total += sum(_local_bytes(p) for p in whole_copy.parameters() if p.requires_grad)
    return total
