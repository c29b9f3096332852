"""On-policy distillation (GKD, Agarwal et al.; TRL's GKDTrainer): the student samples, a teacher scores the
student's own tokens, and the student minimizes the generalized JSD to the teacher at every sampled position
over the full vocabulary (or the sampled-token reverse-KL variant). With probability 1 - lmbda an iteration
trains on the expert's demonstrations instead (GKD's off-policy data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from distillgym.agents.policies import ExpertAgent
from distillgym.trainers import core
from distillgym.trainers.config import Distill, Reduce, opt
from distillgym.trainers.losses import generalized_jsd, sampled_token_distill


@dataclass
class Config(Distill, Reduce):
    teacher: Literal["model", "frozen", "ema", "self"] = opt(
        "model", "model (teacher_path) | frozen (the initial policy) | ema | self (the live weights)")
    teacher_path: str = opt("", "the teacher model for teacher=model (same tokenizer as the student)")
    teacher_privileged: bool = opt(False, "the teacher also sees each step's privileged info (that is OPSD's idea)")
    skip_uninformed: bool = opt(
        False, "with teacher_privileged: distill only steps whose privileged info names a next action")
    loss: Literal["jsd", "sampled"] = opt(
        "jsd", "jsd (full vocabulary, generalized JSD) | sampled (sampled-token reverse KL)")
    lmbda: float = opt(1.0, "fraction of iterations on the student's own samples (else expert demonstrations)")


def needs(cfg: Config) -> set[str]:
    """The env's privileged information for a privileged teacher; its expert for off-policy iterations."""
    return ({"privileged"} if cfg.teacher_privileged else set()) | ({"expert"} if cfg.lmbda < 1 else set())


def setup(run: core.Run, cfg: Config) -> core.TeacherState:
    return core.TeacherState(core.make_teacher(run, cfg.teacher, cfg.teacher_path), cfg.teacher)


def distill_step(run: core.Run, samples: list, teacher_prompts: list, cfg: Config,
                 state: core.TeacherState) -> dict[str, float]:
    """One optimizer step pulling the student toward the teacher on `samples` (shared with OPSD)."""
    teacher = state.teacher

    def loss_fn(micro: core.Micro, num_tokens: int, num_seqs: int) -> tuple[torch.Tensor, dict[str, float]]:
        batch = core.make_batch(micro.samples, run.device)
        full = cfg.loss == "jsd"
        logp, logits = core.logprobs(micro.model, micro.samples, run.pad_id, logits=full)
        with torch.no_grad():
            t_logp, t_logits = core.logprobs(teacher, micro.samples, run.pad_id, prompts=micro.cols["teacher_prompts"],
                                             logits=full)
        if logits is not None and t_logits is not None:
            per_token = generalized_jsd(logits, t_logits, beta=cfg.jsd_beta)
        else:
            per_token = sampled_token_distill(logp, t_logp)
        m = batch.mask.sum().clamp(min=1)
        metrics = {"teacher_gap": float(((logp - t_logp).detach() * batch.mask).sum() / m)}
        return core.reduce_step(per_token, batch.mask, cfg.loss_agg, num_tokens=num_tokens, num_seqs=num_seqs), metrics

    out = core.optimize(run, samples, loss_fn, teacher_prompts=teacher_prompts)
    if cfg.teacher == "ema":
        core.ema_update(teacher, run.model, cfg.ema_decay)
    return out


def iteration(run: core.Run, cfg: Config, state: core.TeacherState) -> dict[str, float]:
    tasks = core.train_tasks(run.cfg, run.iteration)
    on_policy = np.random.default_rng([run.cfg.seed, run.iteration, 11]).random() < cfg.lmbda
    if on_policy:
        episodes = core.rollout(run, core.model_agent(run), tasks, run.cfg.group_size)
    else:
        episodes = core.tokenize_demonstrations(run, core.rollout(run, ExpertAgent(), tasks, 1))
    samples, prompts, info = core.distill_inputs(run, episodes, teacher_privileged=cfg.teacher_privileged,
                                                 skip_uninformed=cfg.teacher_privileged and cfg.skip_uninformed)
    metrics = {**core.episode_metrics(episodes), "on_policy": float(on_policy), "samples": len(samples), **info}
    if samples:
        metrics.update(distill_step(run, samples, prompts, cfg, state))
    return metrics
