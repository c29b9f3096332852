"""pi-Distill (Penaloza et al. 2026): one set of weights trained as a teacher that sees privileged information and
as a student that does not, on the same teacher-generated trajectories.

J = alpha * J_T + (1 - alpha) * J_S, with R = R_env - kl_coef * KL(pi_T || sg pi_S) (summed over the episode's
tokens, exact over the vocabulary) and A = R - mean over the task's K rollouts:
- J_T: PPO-clipped policy gradient of the teacher (privileged prompt) on its own samples;
- J_S: the student (plain prompt) on the teacher's samples, PPO-clipped importance ratio pi_S / sg(pi_T), plus
  kl_coef * KL(sg pi_T || pi_S) per token.
alpha can anneal linearly from alpha_start to alpha over alpha_anneal_iters iterations (0 -> 0.5 is robust).
With skip_uninformed, J_S leaves out the steps whose privileged info names no next action (core.informed_turns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from distillgym.trainers import core
from distillgym.trainers.advantages import group_advantages
from distillgym.trainers.config import Clip, Reduce, opt
from distillgym.trainers.losses import clipped_pg, kl_full


@dataclass
class Config(Clip, Reduce):
    alpha: float = opt(0.5, "teacher weight: 0 student only, 1 teacher only (0.5 most robust in the paper)")
    alpha_start: float | None = opt(None, "anneal from this value to alpha (None: no annealing)")
    alpha_anneal_iters: int = opt(0, "iterations of linear annealing")
    kl_coef: float = opt(0.25, "beta: KL weight (0.25 in the paper)")
    drop_zero_advantage: bool = opt(True, "drop groups whose advantages are all 0")
    skip_uninformed: bool = opt(
        False, "the student term only on steps whose privileged info names a next action")


def needs(cfg: Config) -> set[str]:
    return {"privileged"}  # the teacher's context


def setup(run: core.Run, cfg: Config) -> core.AlgoState:
    """No state of its own: teacher and student are the training model under two prompts."""
    if not 0.0 <= cfg.alpha <= 1.0:
        raise ValueError(f"config field pi_distill.alpha must be in [0, 1], got {cfg.alpha}")
    return core.AlgoState()


def current_alpha(cfg: Config, iteration: int) -> float:
    if cfg.alpha_start is None or cfg.alpha_anneal_iters <= 0:
        return cfg.alpha
    frac = min(1.0, iteration / cfg.alpha_anneal_iters)
    return cfg.alpha_start + frac * (cfg.alpha - cfg.alpha_start)


def iteration(run: core.Run, cfg: Config, state: core.AlgoState) -> dict[str, float]:
    alpha = current_alpha(cfg, run.iteration)
    teacher_agent = core.model_agent(run, privileged=True)  # the teacher generates
    episodes = core.rollout(run, teacher_agent, core.train_tasks(run.cfg, run.iteration), run.cfg.group_size)
    t_samples = [s for ep in episodes for s in ep.samples(chain=False)]  # teacher prompts, teacher logprobs
    s_prompts = core.teacher_prompts(episodes, run.builder(), None)  # the same turns under the student's prompt
    ep_of = core.sample_episodes(episodes)
    metrics = {**core.episode_metrics(episodes), "alpha": alpha, "samples": len(t_samples)}
    if not t_samples:
        return metrics

    # KL(pi_T || pi_S) per episode, for the reward: the same weights under the teacher's and the student's prompts
    kl_sum = core.episode_kl_sums(run, t_samples, ep_of, len(episodes), p_model=run.model, p_prompts=None,
                                  q_model=run.model, q_prompts=s_prompts)
    rewards = [ep.total_reward - cfg.kl_coef * k for ep, k in zip(episodes, kl_sum, strict=True)]
    groups = [ep.group_id if ep.group_id is not None else ("solo", i) for i, ep in enumerate(episodes)]
    adv = group_advantages(rewards, groups, normalize_std=False)
    keep = [j for j in range(len(t_samples)) if not (cfg.drop_zero_advantage and adv[ep_of[j]] == 0.0)]
    metrics["kl_teacher_student"] = float(sum(kl_sum) / max(1, len(episodes)))
    informed = core.informed_turns(episodes) if cfg.skip_uninformed else [True] * len(t_samples)
    if cfg.skip_uninformed:
        metrics["uninformed_frac"] = 1.0 - sum(informed) / len(informed)
    if not keep:
        return metrics
    samples = [t_samples[j] for j in keep]
    columns: dict[str, list[Any]] = {"student_prompts": [s_prompts[j] for j in keep],
               "advantages": [[float(adv[ep_of[j]])] * len(t_samples[j].completion_ids) for j in keep],
               "student_weight": [float(informed[j]) for j in keep]}

    def loss_fn(micro: core.Micro, num_tokens: int, num_seqs: int) -> tuple[torch.Tensor, dict[str, float]]:
        batch = core.make_batch(micro.samples, run.device, micro.cols["advantages"])
        t_logp, t_logits = core.logprobs(micro.model, micro.samples, run.pad_id, logits=True)
        s_logp, s_logits = core.logprobs(micro.model, micro.samples, run.pad_id, prompts=micro.cols["student_prompts"],
                                         logits=True)
        teacher_loss, _ = clipped_pg(t_logp, batch.old_logp, batch.advantages, clip_low=cfg.clip_low,
                                     clip_high=cfg.clip_high, ratio_cap=cfg.ratio_cap)
        student_pg, _ = clipped_pg(s_logp, t_logp.detach(), batch.advantages, clip_low=cfg.clip_low,
                                   clip_high=cfg.clip_high, ratio_cap=cfg.ratio_cap)
        student_loss = student_pg + cfg.kl_coef * kl_full(t_logits.detach(), s_logits)
        student_loss = student_loss * torch.tensor(micro.cols["student_weight"], device=run.device)[:, None]
        per_token = alpha * teacher_loss + (1 - alpha) * student_loss
        m = batch.mask.sum().clamp(min=1)
        metrics = {"student_teacher_ratio": float((torch.exp(s_logp - t_logp).detach() * batch.mask).sum() / m)}
        return core.reduce_step(per_token, batch.mask, cfg.loss_agg, num_tokens=num_tokens, num_seqs=num_seqs), metrics

    metrics.update(core.optimize(run, samples, loss_fn, **columns))
    return metrics


def teacher_context(run: core.Run, cfg: Config, state: core.AlgoState) -> bool:
    """The self-teacher reads the env's privileged info (what `eval/teacher_gap` measures)."""
    return True
