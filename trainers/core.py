"""Shared training primitives: the run (model, optimizer, schedule, generation backend), task sampling, rollouts,
per-token batches from Samples, teacher scoring, gradient accumulation, EMA and frozen teachers.

Algorithms (one file each) compose these; none of them subclasses another.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import torch

from distillgym.agents.generation import SamplingParams, completion_logprobs
from distillgym.agents.policies import ActRequest, Agent, ModelAgent
from distillgym.agents.prompts import PromptBuilder, reply_text
from distillgym.agents.rollout import collect
from distillgym.envs.core.protocol import AgentProtocol
from distillgym.envs.core.text_env import SPLIT_SIZE
from distillgym.trainers import distributed
from distillgym.trainers.config import TrainConfig
from distillgym.types import Episode, Sample


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class Run:
    """Everything a training run holds between iterations."""

    cfg: TrainConfig
    model: Any
    tokenizer: Any
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    backend: Any  # TransformersBackend, or a ServerFleet (generation=vllm_server)
    device: torch.device
    out: Path
    family: str  # the env's family name (what skills are filed under)
    protocol: AgentProtocol  # how the model talks to the env: role, answer format, reply parser
    iteration: int = 0  # iterations completed
    env_steps: int = 0  # environment steps taken in training rollouts so far
    gen_tokens: int = 0  # tokens the model generated in training rollouts so far (a token budget's measure)
    state: AlgoState | None = None  # what the algorithm's setup built (checkpointed: its state_dict)
    dist: distributed.Dist = field(default_factory=distributed.Dist)  # this rank under torchrun (one process: 0 of 1)
    servers: list[Any] = field(default_factory=list)  # vLLM servers the run started (generation_servers)
    # parallel=fsdp under torchrun: the sharded module the optimizer steps (`model` stays whole on every rank, for
    # generation, scoring and checkpoints, and takes the learner's weights after every step); else None
    learner: Any = None

    @property
    def trained(self) -> Any:
        """The module the optimizer steps: the sharded learner under FSDP, else the model itself."""
        return self.model if self.learner is None else self.learner

    @property
    def pad_id(self) -> int:
        return self.backend.pad_id

    def builder(self, history: int | None = None) -> PromptBuilder:
        return PromptBuilder(self.tokenizer, self.protocol,
                             history=self.cfg.history if history is None else history,
                             privileged_at=self.cfg.privileged_at)


def make_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int) -> Any:
    """Linear warmup, then constant, linear decay to 0 or cosine decay to 0."""

    def factor(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
        return 1.0 - progress if cfg.schedule == "linear" else 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def enable_checkpointing(model: Any) -> None:
    """Activation (gradient) checkpointing, non-reentrant (works when inputs need no grad, and under LoRA); it
    applies in training mode only, so generation in eval mode is unaffected."""
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def checkpointing(model: Any) -> bool:
    """Whether activation checkpointing is on for `model`."""
    name = "is_activation_checkpointing" if hasattr(model, "activation_checkpointing_enable") else \
        "is_gradient_checkpointing"
    return bool(getattr(model, name, False))


def wrap_lora(model: Any, cfg: TrainConfig) -> Any:
    """LoRA adapters through peft (only the adapters train)."""
    from peft import LoraConfig, get_peft_model

    return get_peft_model(
        model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules=cfg.lora_targets, lora_dropout=0.0)
    )


#: Where seed s's stream of fresh training tasks starts in the train split: s * stride (mod the split's size); odd
#: and near 2**31 / golden ratio, so the streams of small seeds lie far apart. Seed 0 starts at task 0.
STREAM_STRIDE = 1_327_217_885


def train_tasks(cfg: TrainConfig, iteration: int) -> list[int]:
    """The training task indices of an iteration: fresh ones from the seed's own stream, or a seeded draw from a
    pool of `train_pool` (the same pool for every seed, drawn in a seed-dependent order)."""
    if cfg.train_pool:
        rng = np.random.default_rng([cfg.seed, iteration, 7])
        k = min(cfg.tasks_per_iter, cfg.train_pool)
        return sorted(int(t) for t in rng.choice(cfg.train_pool, size=k, replace=False))
    start = cfg.seed * STREAM_STRIDE + iteration * cfg.tasks_per_iter
    return [(start + i) % SPLIT_SIZE for i in range(cfg.tasks_per_iter)]


def model_agent(run: Run, *, privileged: bool | str | Callable[[ActRequest], str | None] = False,
                temperature: float | None = None) -> ModelAgent:
    cfg = run.cfg
    t = cfg.temperature if temperature is None else temperature
    sampling = SamplingParams(temperature=t, top_p=cfg.top_p, max_tokens=cfg.max_tokens)
    return ModelAgent(run.backend, sampling=sampling, history=cfg.history, privileged=privileged,
                      name=f"{cfg.model}@{run.iteration}", privileged_at=cfg.privileged_at)


def rollout(run: Run, agent: Agent, tasks: Sequence[int], group_size: int, *, split: str = "train") -> list[Episode]:
    """Episodes of `agent` on `tasks`, seeded by the run's seed and iteration (a resumed run replays them)."""
    tasks = list(tasks)
    mine = distributed.share(tasks, run.dist) if run.dist.on else tasks  # ranks play their share, then gather
    eps = collect(agent, run.cfg.env, mine, split=split, group_size=group_size, num_envs=run.cfg.num_envs,
                  seed=run.cfg.seed * 100_003 + run.iteration, env_kwargs=run.cfg.env_kwargs,
                  progress=False)
    if run.dist.on:
        eps = distributed.gather_shares(eps, [group_size] * len(tasks), run.dist)
        for i, ep in enumerate(eps):
            ep.group_id = i // group_size  # the task's position in the whole iteration, as one process numbers it
    if split == "train":
        run.env_steps += sum(e.num_steps for e in eps)
        run.gen_tokens += sum(e.num_completion_tokens for e in eps)
    return eps


# --------------------------------------------------------------------------------------- batches and scoring


@dataclass
class Batch:
    """Per-token tensors for a list of Samples: [B, T] on the run's device."""

    samples: list[Sample]
    mask: torch.Tensor  # 1 on model tokens
    old_logp: torch.Tensor  # sampled logprobs (0 on env tokens and padding)
    advantages: torch.Tensor  # per token
    num_tokens: int  # model tokens in the whole optimizer step (for token-mean aggregation across micro-batches)
    num_seqs: int  # sequences in the whole optimizer step


def token_tensor(rows: Sequence[Sequence[float]], width: int, device: torch.device) -> torch.Tensor:
    out = torch.zeros((len(rows), width), dtype=torch.float32)
    for i, r in enumerate(rows):
        if len(r):
            out[i, : len(r)] = torch.tensor(list(r), dtype=torch.float32)
    return out.to(device)


def make_batch(samples: list[Sample], device: torch.device, advantages: Sequence[Sequence[float]] | None = None,
               *, num_tokens: int | None = None, num_seqs: int | None = None) -> Batch:
    """Tensors of `samples`; per-token advantages default to each Sample's scalar advantage."""
    width = max(1, max(len(s.completion_ids) for s in samples))
    if advantages is None:
        advantages = [[s.advantage] * len(s.completion_ids) for s in samples]
    mask = token_tensor([s.loss_mask for s in samples], width, device)
    return Batch(
        samples=samples,
        mask=mask,
        old_logp=token_tensor([s.old_logprobs for s in samples], width, device),
        advantages=token_tensor(advantages, width, device),
        num_tokens=num_tokens if num_tokens is not None else int(mask.sum().item()),
        num_seqs=num_seqs if num_seqs is not None else len(samples),
    )


@overload
def logprobs(model: Any, samples: Sequence[Sample], pad_id: int, *, prompts: Sequence[Sequence[int]] | None = None,
             temperature: float = 1.0, logits: Literal[True]) -> tuple[torch.Tensor, torch.Tensor]: ...
@overload
def logprobs(model: Any, samples: Sequence[Sample], pad_id: int, *, prompts: Sequence[Sequence[int]] | None = None,
             temperature: float = 1.0, logits: bool = False
             ) -> tuple[torch.Tensor, torch.Tensor | None]: ...
def logprobs(model: Any, samples: Sequence[Sample], pad_id: int, *, prompts: Sequence[Sequence[int]] | None = None,
             temperature: float = 1.0, logits: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probabilities [B, T] of the samples' completion ids (under their own prompts, or `prompts`), with
    gradients when enabled; the logits [B, T, V] too when asked."""
    p = prompts if prompts is not None else [s.prompt_ids for s in samples]
    logp, _, lg = completion_logprobs(model, p, [s.completion_ids for s in samples], pad_id=pad_id,
                                      temperature=temperature, return_logits=logits)
    return logp, lg


def check_same_vocab(student_tok: Any, teacher_tok: Any) -> None:
    """Teacher scoring needs one vocabulary: fail loudly otherwise."""
    if len(student_tok) != len(teacher_tok) or student_tok.get_vocab() != teacher_tok.get_vocab():
        raise ValueError(
            f"teacher and student tokenizers differ ({len(teacher_tok)} vs {len(student_tok)} tokens): a teacher "
            "can only score the student's token ids with the same vocabulary"
        )


def teacher_prompts(
    episodes: Sequence[Episode],
    builder: PromptBuilder,
    privileged: Callable[[Episode, int], Any] | None,
) -> list[list[int]]:
    """For each model turn (in Episode.samples(chain=False) order): the teacher's prompt for the same completion,
    the same history of exact reply ids and the privileged context `privileged(episode, turn)` (None: none)."""
    out = []
    for ep in episodes:
        view = (lambda k, ep=ep: privileged(ep, k)) if privileged is not None else None
        prompts = builder.replay(ep.task, ep.turns, view)
        out += [p for p, t in zip(prompts, ep.turns, strict=True) if t.prompt_ids is not None
                and t.completion_ids is not None]
    return out


def informed_turns(episodes: Sequence[Episode]) -> list[bool]:
    """For each model turn (in Episode.samples(chain=False) order): does the step's privileged info say what to do?
    False where it names an expert action and that action is None (the expert has no plan from there, e.g. a Sokoban
    room an earlier push made unsolvable: the teacher's context then holds only a stale solution from the start)."""
    out = []
    for ep in episodes:
        for k, turn in enumerate(ep.turns):
            if turn.prompt_ids is not None and turn.completion_ids is not None:
                info = step_privileged(ep, k)
                out.append(not (isinstance(info, dict) and "expert_action" in info and info["expert_action"] is None))
    return out


def step_privileged(ep: Episode, turn: int) -> Any:
    """Privileged context of a turn: what the env gave at that step (expert plan from there), else at reset."""
    return ep.turns[turn].info.get("privileged") or ep.privileged or None


def micro_batches(samples: list[Sample], size: int) -> list[list[Sample]]:
    return [samples[i : i + size] for i in range(0, len(samples), max(1, size))]


def length_order(samples: Sequence[Sample]) -> list[int]:
    """Indices of `samples` by total length (prompt + completion), stable: consecutive micro-batches then hold
    sequences of similar length, and each pads to less."""
    return sorted(range(len(samples)), key=lambda i: len(samples[i].prompt_ids) + len(samples[i].completion_ids))


def padded_tokens(samples: Sequence[Sample], size: int) -> int:
    """Token slots a forward pass over `samples` in micro-batches of `size` computes (each pads to its longest)."""
    total = 0
    for lo in range(0, len(samples), max(1, size)):
        micro = samples[lo : lo + size]
        total += len(micro) * (max(len(s.prompt_ids) for s in micro) + max(len(s.completion_ids) for s in micro))
    return total


@dataclass
class Micro:
    """One micro-batch: its Samples and, row for row, the per-row columns the step was given (advantages, teacher
    prompts, weights, ...), sliced alongside."""

    samples: list[Sample]
    cols: dict[str, list[Any]]
    model: Any  # the module to differentiate (`Run.trained`: the sharded learner under FSDP, else the model)

    def __len__(self) -> int:
        return len(self.samples)


LossFn = Callable[[Micro, int, int], tuple[torch.Tensor, dict[str, float]]]


def optimize(run: Run, samples: list[Sample], loss_fn: LossFn, **columns: Sequence[Any]) -> dict[str, float]:
    """`run.cfg.updates_per_iter` optimizer steps over `samples` (PPO epochs), each accumulated over micro-batches;
    returns the last step's metrics.

    `columns` are per-row data (one entry per Sample, e.g. `advantages=...`, `teacher_prompts=...`): each
    micro-batch carries its rows' slice in `micro.cols`. loss_fn(micro, num_tokens, num_seqs) returns that
    micro-batch's share of the step's loss (already divided by the whole step's token or sequence count) and
    metrics to average.
    """
    for name, col in columns.items():
        if len(col) != len(samples):
            raise ValueError(f"column {name!r} has {len(col)} rows for {len(samples)} samples")
    model = run.trained
    model.train()
    num_tokens = sum(sum(s.loss_mask) for s in samples)
    params = [p for p in model.parameters() if p.requires_grad]
    size = max(1, run.cfg.micro_batch_size)
    if run.cfg.bucket_by_length:  # similar lengths share a micro-batch: less padding, the same summed gradient
        order = length_order(samples)
        samples = [samples[i] for i in order]
        columns = {k: [v[i] for i in order] for k, v in columns.items()}
    autocast = torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.cfg.dtype == "bf16")
    starts: list[tuple[int, bool]] = [(lo, True) for lo in range(0, len(samples), size)]
    if run.dist.on:  # every rank holds the whole batch; each backpropagates its share of the micro-batches
        mine = distributed.share(starts, run.dist)
        if run.learner is not None:  # FSDP gathers and reduces in every forward/backward: ranks run as many,
            # a rank short of one backpropagates a micro-batch with its loss times 0
            mine += [(0, False)] * (-(-len(starts) // run.dist.world) - len(mine))
        starts = mine
    out: dict[str, float] = {}
    for _ in range(max(1, run.cfg.updates_per_iter)):
        run.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        loss_total = 0.0
        for lo, counts in starts:
            micro = Micro(samples[lo : lo + size], {k: list(v[lo : lo + size]) for k, v in columns.items()}, model)
            with autocast:
                loss, metrics = loss_fn(micro, num_tokens, len(samples))
            if not counts:
                loss = loss * 0.0
            loss.backward()
            if not counts:
                continue
            loss_total += float(loss.detach())
            for k, v in metrics.items():
                totals[k] = totals.get(k, 0.0) + float(v) * len(micro) / len(samples)
        if run.dist.on:  # the step's gradient and metrics: the sums of every rank's shares
            if run.learner is None:  # (FSDP has reduce-scattered them in the backward passes)
                distributed.sum_gradients(params, run.dist)
            summed = distributed.sum_floats({"loss": loss_total, **{f"m/{k}": v for k, v in totals.items()}},
                                            run.dist)
            loss_total = summed.pop("loss")
            totals = {k[2:]: v for k, v in summed.items()}
        grad_norm = distributed.whole(torch.nn.utils.clip_grad_norm_(params, run.cfg.max_grad_norm or float("inf")))
        run.optimizer.step()
        run.scheduler.step()
        if run.learner is not None:  # generation and scoring read the whole model: it takes the new weights
            distributed.pull_weights(run.model, run.learner)
        if getattr(run.backend, "prefix_cache", None) is not None:  # keys of the old weights must not be read
            run.backend.prefix_cache.clear()
        out = {"loss": loss_total, "grad_norm": float(grad_norm), "lr": float(run.scheduler.get_last_lr()[0]),
               **totals}
    out["memory/train_state_mb"] = distributed.train_state_bytes(
        model, run.optimizer, run.model if run.learner is not None else None) / 2**20
    if run.learner is not None:
        out["fsdp/local_fraction"] = distributed.local_fraction(run.learner)
    return out


# ------------------------------------------------------------------------------------------------- teachers


class AlgoState:
    """What an algorithm's `setup` builds and its `iteration` uses (a dataclass per algorithm). `state_dict` holds
    exactly what a resumed run cannot rebuild from its config (the base: nothing); checkpoints save it."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from `state_dict()`'s output (keys this state does not know are ignored)."""


@dataclass
class TeacherState(AlgoState):
    """A teacher's weights (see `make_teacher`): only an EMA teacher has weights to checkpoint; a frozen copy of the
    initial policy and a teacher model are rebuilt at setup, and 'self' is the training model."""

    teacher: Any
    kind: str

    def state_dict(self) -> dict[str, Any]:
        return {"teacher": self.teacher.state_dict()} if self.kind == "ema" else {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self.kind == "ema" and "teacher" in state:
            self.teacher.load_state_dict(state["teacher"])


def frozen_copy(model: Any) -> Any:
    """A frozen, detached copy of the model (a fixed teacher or a reference policy)."""
    teacher = copy.deepcopy(model)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


@torch.no_grad()
def ema_update(teacher: Any, student: Any, decay: float) -> None:
    """teacher <- decay * teacher + (1 - decay) * student, parameter by parameter."""
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.mul_(decay).add_(s.detach(), alpha=1 - decay)


def reduce_step(per_token: torch.Tensor, mask: torch.Tensor, mode: str, *, num_tokens: int, num_seqs: int,
                max_len: int | None = None) -> torch.Tensor:
    """A micro-batch's share of the step loss under aggregation `mode` (see losses.aggregate): the shares of all
    micro-batches of a step add up to the loss of the whole step computed at once."""
    from distillgym.trainers.losses import aggregate

    share = per_token.shape[0] / max(1, num_seqs)
    if mode == "dapo":
        return aggregate(per_token, mask, "dapo", num_tokens=max(1, num_tokens))
    if mode == "dr_grpo":
        return aggregate(per_token, mask, "dr_grpo", max_len=max_len) * share
    return aggregate(per_token, mask, mode) * share  # type: ignore[arg-type]


def episode_metrics(episodes: Sequence[Episode]) -> dict[str, float]:
    """Training-rollout statistics for the log."""
    if not episodes:
        return {}
    return {
        "reward": float(np.mean([e.total_reward for e in episodes])),
        "success": float(np.mean([e.success for e in episodes])),
        "steps": float(np.mean([e.num_steps for e in episodes])),
        "tokens": float(np.mean([e.num_completion_tokens for e in episodes])),
        "invalid": float(np.mean([float(t.invalid_action) for e in episodes for t in e.turns] or [0.0])),
    }


def demonstration_replies(tokenizer: Any, turns: Sequence[Any]) -> list[tuple[str, list[int]]]:
    """Each turn's reply as a model would have written it: (text, token ids ending with the end token). The text is
    the turn's recorded `info["reply"]` when it has one (a GLAD chain, a person's words), else
    `<action>ACTION</action>`."""
    end = [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
    texts = [turn.info["reply"] if isinstance(turn.info.get("reply"), str) else reply_text(turn.action)
             for turn in turns]
    return [(text, [*tokenizer(text, add_special_tokens=False)["input_ids"], *end]) for text in texts]


def tokenize_demonstrations(run: Run, episodes: Sequence[Episode], *,
                            privileged: Callable[[Episode, int], Any] | None = None) -> list[Episode]:
    """Copies of `episodes` whose token-less turns (experts, people) carry token ids: the reply
    `<action>ACTION</action><eos>` under the student's prompt with the same history, as if the model had written
    it (logprobs stay None); with `privileged`, under the teacher's prompt (`privileged(episode, turn)` as its
    privileged context). Episodes that already have token ids come back unchanged."""
    import dataclasses

    builder = run.builder()
    out: list[Episode] = []
    for ep in episodes:
        if all(t.completion_ids is not None for t in ep.turns):
            out.append(ep)
            continue
        replies = demonstration_replies(run.tokenizer, ep.turns)
        view = (lambda k, ep=ep: privileged(ep, k)) if privileged is not None else None
        prompts = builder.replay(ep.task, ep.turns, view, replies)
        turns = [dataclasses.replace(turn, prompt_ids=prompt, completion_ids=ids, logprobs=None,
                                     info={**turn.info, "reply": text})
                 for turn, prompt, (text, ids) in zip(ep.turns, prompts, replies, strict=True)]
        out.append(dataclasses.replace(ep, turns=turns))
    return out


def make_teacher(run: Run, kind: str, path: str = "") -> Any:
    """The teacher's weights: 'self' (the training model itself: synced every step), 'frozen' (a copy of the
    initial policy), 'ema' (a copy updated by `ema_update` after each step), or 'model' (a model at `path`,
    frozen; its vocabulary must match the student's)."""
    if kind == "self":
        return run.model
    if kind in ("frozen", "ema"):
        return frozen_copy(run.model)
    if kind == "model":
        if not path:
            raise ValueError("teacher 'model' needs teacher_path: a model directory or Hugging Face name")
        from distillgym.agents.models import load

        teacher, tok = load(path)
        check_same_vocab(run.tokenizer, tok)
        teacher.to(run.device)
        return frozen_copy(teacher)
    raise ValueError(f"unknown teacher kind {kind!r}: use self, frozen, ema or model")


def distill_inputs(
    run: Run, episodes: Sequence[Episode], *, teacher_privileged: bool, skip_uninformed: bool = False
) -> tuple[list[Sample], list[list[int]], dict[str, float]]:
    """Per-turn Samples of `episodes` (the student's own prompts), in the same order the teacher's prompts for the
    same completion ids (with each step's privileged context when `teacher_privileged`), and metrics.

    With `skip_uninformed`, the turns whose privileged info names no next action (`informed_turns`: the expert has
    no plan from there, so the teacher's context is a stale solution, not a hint) are left out, and the metrics
    give the fraction left out as `uninformed_frac`."""
    samples = [s for ep in episodes for s in ep.samples(chain=False)]
    privileged = step_privileged if teacher_privileged else None
    prompts = teacher_prompts(episodes, run.builder(), privileged)
    if len(prompts) != len(samples):
        raise RuntimeError("teacher prompts and samples are out of step")
    if not skip_uninformed:
        return samples, prompts, {}
    keep = informed_turns(episodes)
    kept = [(s, p) for s, p, k in zip(samples, prompts, keep, strict=True) if k]
    metrics = {"uninformed_frac": 1.0 - len(kept) / max(1, len(keep))}
    return [s for s, _ in kept], [p for _, p in kept], metrics


def sample_episodes(episodes: Sequence[Episode]) -> list[int]:
    """For each Sample of `episodes` (Episode.samples(chain=False) order), the index of its episode."""
    return [i for i, ep in enumerate(episodes) for _ in ep.samples(chain=False)]


@torch.no_grad()
def episode_kl_sums(run: Run, samples: Sequence[Sample], sample_episode: Sequence[int], num_episodes: int, *,
                    p_model: Any, p_prompts: Sequence[Sequence[int]] | None, q_model: Any,
                    q_prompts: Sequence[Sequence[int]] | None) -> list[float]:
    """Exact KL(p || q) over the vocabulary, summed over each episode's model tokens, where p and q are models
    scoring the same completion ids under their prompts (None: the samples' own)."""
    from distillgym.trainers.losses import kl_full

    sums = [0.0] * num_episodes
    size = run.cfg.micro_batch_size
    for lo in range(0, len(samples), size):
        micro = list(samples[lo : lo + size])
        mask = make_batch(micro, run.device).mask
        p_micro = None if p_prompts is None else list(p_prompts[lo : lo + len(micro)])
        q_micro = None if q_prompts is None else list(q_prompts[lo : lo + len(micro)])
        _, p_logits = logprobs(p_model, micro, run.pad_id, prompts=p_micro, logits=True)
        _, q_logits = logprobs(q_model, micro, run.pad_id, prompts=q_micro, logits=True)
        for j, v in enumerate((kl_full(p_logits, q_logits) * mask).sum(-1).tolist()):
            sums[sample_episode[lo + j]] += v
    return sums
