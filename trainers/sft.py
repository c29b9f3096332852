"""SFT: supervised fine-tuning on demonstrations (offline distillation from the expert, or from any recorded
episodes). Each iteration imitates the expert's episodes on that iteration's training tasks (or episodes read
from a JSONL file), with the mean token negative log-likelihood."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from distillgym.agents.policies import ExpertAgent
from distillgym.trainers import core
from distillgym.trainers.config import Reduce, opt
from distillgym.types import Episode, Sample


@dataclass
class Config(Reduce):
    data: str = opt("expert", "'expert' (the env's solver on the iteration's train tasks) or a JSONL file of Episodes")
    successful_only: bool = opt(True, "imitate only episodes that succeeded")
    teacher_prompt_copies: bool = opt(
        True, "also imitate each demonstration under the teacher's prompt (the step's privileged info in context), so "
        "that a model that later teaches itself (OPSD, pi-Distill) has learned to read it")
    skill_prompt_copies: bool = opt(
        False, "also imitate each demonstration with its own skill in the prompt (the ExpertSummarizer's summary of "
        "the episode), so that a Skill-SD teacher has learned to read a skill")
    copy_rows: int = opt(
        0, "rows of the copy task mixed into every step (a span of random tokens of the step's own text, a stretch "
        "of that text, the span again; the loss on the repeat): a rehearsal that keeps the look-back the copy warm-up "
        "taught (TinyConfig.copy_steps) from being trained away by imitation. 0 = off")
    copy_span: int = opt(24, "the longest span of a copy row, in tokens")
    copy_gap: int = opt(
        0, "the most tokens of text between a copy row's span and its repeat: how far back the model learns to look "
        "(a hint of a whole code cell puts ~200 tokens between a name in it and the same name in the reply)")


@dataclass
class State(core.AlgoState):
    """The demonstrations of `data=PATH` (read again at setup, so a checkpoint holds none of them)."""

    demonstrations: list[Episode] = field(default_factory=list)


def needs(cfg: Config) -> set[str]:
    """What SFT needs of the env: its expert, when the demonstrations are the expert's."""
    return {"expert"} if cfg.data == "expert" else set()


def setup(run: core.Run, cfg: Config) -> State:
    for name in ("copy_rows", "copy_gap"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"config field sft.{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.copy_span < 4:
        raise ValueError(f"config field sft.copy_span must be >= 4 (spans of 4..copy_span tokens), got {cfg.copy_span}")
    if cfg.data == "expert":
        return State()
    from distillgym.eval.export import read_jsonl

    return State(read_jsonl(cfg.data))


def _own_skills(episodes: list[Episode]) -> list[str | None]:
    """Each episode's ExpertSummarizer skill text (None where it teaches nothing)."""
    from distillgym.skills import ExpertSummarizer, task_key_of

    summarizer = ExpertSummarizer()
    skills = [summarizer.summarize(ep, task_key_of(ep)) for ep in episodes]
    return [skill.text() if skill is not None else None for skill in skills]


def _fixed(text: str | None) -> Callable[[Episode, int], str | None]:
    """The same privileged text at every turn."""
    return lambda _episode, _turn: text


def copy_samples(samples: list[Sample], cfg: Config, seed: int, iteration: int) -> list[Sample]:
    """`cfg.copy_rows` copy-task rows drawn from the tokens of this step's samples (reproducible per seed and
    iteration, so a resumed run draws the same ones); the loss is on the repeat from its second token."""
    from distillgym.agents.warmup import copy_row, distinct_tokens

    stream = [t for s in samples for t in (*s.prompt_ids, *s.completion_ids)]
    pool = distinct_tokens(stream)
    rng = random.Random(seed * 1_000_003 + iteration)
    out = []
    for _ in range(cfg.copy_rows):
        context, repeat = copy_row(pool, rng, rng.randint(4, cfg.copy_span), stream, cfg.copy_gap)
        out.append(Sample(context, repeat, [0] + [1] * (len(repeat) - 1), [0.0] * len(repeat)))
    return out


def file_batch(pool: list[Episode], k: int, seed: int, iteration: int) -> list[Episode]:
    """The `k` demonstrations of an iteration from a file's `pool`: epoch after epoch through the pool, each epoch in
    its own order drawn from the seed (so seeds differ, and a resumed run draws the same ones)."""
    if not pool:
        raise ValueError("sft.data holds no episodes")
    out = []
    for j in range(iteration * k, (iteration + 1) * k):
        epoch, pos = divmod(j, len(pool))
        order = np.random.default_rng([seed, epoch, 13]).permutation(len(pool))
        out.append(pool[int(order[pos])])
    return out


def iteration(run: core.Run, cfg: Config, state: State) -> dict[str, float]:
    if cfg.data == "expert":
        episodes = core.rollout(run, ExpertAgent(), core.train_tasks(run.cfg, run.iteration), 1)
    else:
        episodes = file_batch(state.demonstrations, run.cfg.tasks_per_iter, run.cfg.seed, run.iteration)
    if cfg.successful_only:
        episodes = [e for e in episodes if e.success]
    samples = [s for ep in core.tokenize_demonstrations(run, episodes) for s in ep.samples(chain=False)]
    if cfg.teacher_prompt_copies:
        taught = core.tokenize_demonstrations(run, episodes, privileged=core.step_privileged)
        samples += [s for ep in taught for s in ep.samples(chain=False)]
    if cfg.skill_prompt_copies:
        for ep, text in zip(episodes, _own_skills(episodes), strict=True):
            taught = core.tokenize_demonstrations(run, [ep], privileged=_fixed(text))
            samples += [s for e in taught for s in e.samples(chain=False)]
    if cfg.copy_rows and samples:
        samples += copy_samples(samples, cfg, run.cfg.seed, run.iteration)
    metrics = core.episode_metrics(episodes)
    metrics["samples"] = len(samples)
    if not samples:
        return metrics

    def loss_fn(micro: core.Micro, num_tokens: int, num_seqs: int) -> tuple[torch.Tensor, dict[str, float]]:
        batch = core.make_batch(micro.samples, run.device)
        logp, _ = core.logprobs(micro.model, micro.samples, run.pad_id)
        loss = core.reduce_step(-logp, batch.mask, cfg.loss_agg, num_tokens=num_tokens, num_seqs=num_seqs)
        return loss, {"nll": float(-(logp.detach() * batch.mask).sum() / batch.mask.sum().clamp(min=1))}

    metrics.update(core.optimize(run, samples, loss_fn))
    return metrics
