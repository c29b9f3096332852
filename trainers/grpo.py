"""GRPO (group-relative policy optimization), with GiGPO's step-level advantage as an option.

Each iteration: G rollouts of each training task with the current policy; advantage of an episode = its return
normalized within its group (GiGPO adds a step advantage normalized within anchor-state groups); the PPO-clipped
surrogate on every model token, optionally with a k3 KL penalty to the initial policy; `updates_per_iter`
optimizer steps (PPO epochs). The objective: docs/algorithms.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch

from distillgym.trainers import core
from distillgym.trainers.advantages import episode_advantages, gigpo_advantages
from distillgym.trainers.config import Clip, Reduce, opt
from distillgym.trainers.losses import clipped_pg, kl_k3


@dataclass
class Config(Clip, Reduce):
    kl_coef: float = opt(0.0, "k3 KL penalty to a frozen copy of the initial policy (0: no reference model)")
    advantage: Literal["grpo", "gigpo"] = opt(
        "grpo", "grpo (episode return, group-normalized) | gigpo (+ step-level anchor-state groups)")
    normalize_std: bool = opt(True, "divide by the group's reward std (Dr. GRPO turns this off)")
    gigpo_gamma: float = opt(0.95, "discount of GiGPO's step returns")
    gigpo_step_weight: float = opt(1.0, "weight w of the step advantage: A = A_episode + w * A_step")
    drop_zero_advantage: bool = opt(True, "skip samples whose advantage is 0 everywhere (all-equal groups)")
    chain: bool = opt(False, "train on chained multi-turn sequences instead of one sample per turn")


@dataclass
class State(core.AlgoState):
    """The reference policy of the KL penalty: a frozen copy of the initial policy (rebuilt at setup)."""

    reference: Any = None


def setup(run: core.Run, cfg: Config) -> State:
    return State(core.frozen_copy(run.model) if cfg.kl_coef else None)


def turn_advantages(episodes: list, cfg: Config) -> list[list[float]]:
    if cfg.advantage == "gigpo":
        return gigpo_advantages(episodes, gamma=cfg.gigpo_gamma, step_weight=cfg.gigpo_step_weight,
                                normalize_std=cfg.normalize_std)
    adv = episode_advantages(episodes, normalize_std=cfg.normalize_std)
    return [[float(a)] * ep.num_steps for a, ep in zip(adv, episodes, strict=True)]


def token_samples(episodes: list, per_turn: list[list[float]], *, drop_zero: bool, chain: bool = False
                  ) -> tuple[list, list[list[float]]]:
    """Samples of `episodes` and each one's per-token advantage (its turn's; 0 on env tokens); with `drop_zero`,
    samples whose advantage is 0 everywhere are left out."""
    samples, advantages = [], []
    for ep, adv in zip(episodes, per_turn, strict=True):
        for s in ep.samples(chain=chain):
            token_adv = [adv[k] if k >= 0 else 0.0 for k in s.turn_index or []]
            if drop_zero and not any(token_adv):
                continue
            samples.append(s)
            advantages.append(token_adv)
    return samples, advantages


ExtraLoss = Callable[[core.Micro, torch.Tensor, core.Batch], tuple[torch.Tensor, dict[str, float]]]


class PGConfig(Protocol):
    """The fields a policy-gradient step reads (any algorithm's config that has them)."""

    @property
    def clip_low(self) -> float: ...
    @property
    def clip_high(self) -> float: ...
    @property
    def ratio_cap(self) -> float: ...
    @property
    def kl_coef(self) -> float: ...
    @property
    def loss_agg(self) -> str: ...


def policy_gradient_step(run: core.Run, samples: list, advantages: list[list[float]], cfg: PGConfig,
                         extra: ExtraLoss | None = None, reference: Any = None, **columns: list[Any]) -> dict:
    """The clipped-surrogate update over `samples` with per-token `advantages` (shared with other trainers), with
    `cfg.kl_coef` x k3 KL to `reference` when given. `extra(micro, logp, batch)` adds a per-token term to the loss
    (with its metrics), e.g. Skill-SD's; `columns` are more per-row data for it (in `micro.cols`)."""
    max_len = max(len(s.completion_ids) for s in samples)

    def loss_fn(micro: core.Micro, num_tokens: int, num_seqs: int) -> tuple[torch.Tensor, dict[str, float]]:
        batch = core.make_batch(micro.samples, run.device, micro.cols["advantages"])
        logp, _ = core.logprobs(micro.model, micro.samples, run.pad_id)
        per_token, clipped = clipped_pg(logp, batch.old_logp, batch.advantages, clip_low=cfg.clip_low,
                                        clip_high=cfg.clip_high, ratio_cap=cfg.ratio_cap)
        metrics = {}
        if cfg.kl_coef and reference is not None:
            with torch.no_grad():
                ref_logp, _ = core.logprobs(reference, micro.samples, run.pad_id)
            kl = kl_k3(logp, ref_logp)
            per_token = per_token + cfg.kl_coef * kl
            metrics["kl_ref"] = float((kl.detach() * batch.mask).sum() / batch.mask.sum().clamp(min=1))
        if extra is not None:
            term, extra_metrics = extra(micro, logp, batch)
            per_token = per_token + term
            metrics.update(extra_metrics)
        m = batch.mask.sum().clamp(min=1)
        metrics["clip_frac"] = float((clipped * batch.mask).sum() / m)
        metrics["ratio"] = float((torch.exp(logp - batch.old_logp).detach() * batch.mask).sum() / m)
        loss = core.reduce_step(per_token, batch.mask, cfg.loss_agg, num_tokens=num_tokens, num_seqs=num_seqs,
                                max_len=max_len)
        return loss, metrics

    return core.optimize(run, samples, loss_fn, advantages=advantages, **columns)


def iteration(run: core.Run, cfg: Config, state: State) -> dict[str, float]:
    episodes = core.rollout(run, core.model_agent(run), core.train_tasks(run.cfg, run.iteration),
                            run.cfg.group_size)
    samples, advantages = token_samples(episodes, turn_advantages(episodes, cfg), drop_zero=cfg.drop_zero_advantage,
                                        chain=cfg.chain)
    metrics = core.episode_metrics(episodes)
    metrics["samples"] = len(samples)
    if samples:
        metrics.update(policy_gradient_step(run, samples, advantages, cfg, reference=state.reference))
    return metrics
