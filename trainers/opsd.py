"""OPSD: on-policy self-distillation with privileged information. One set of weights; the teacher is the model
(fixed at its initial weights by default, or an EMA, or the live weights) with the step's privileged context
(expert plan, solution) in its prompt; the student acts without it. Both published variants:

- variant=jsd (Zhao et al. 2026, "Self-Distilled Reasoner"): the student's samples, full-vocabulary generalized
  JSD_beta between teacher and student at every sampled position, gradient through the student only;
- variant=rl (Penaloza et al. 2026): maximize E[R] - kl_coef * KL(pi_S || sg pi_T) on the student's samples, with
  the KL folded into the reward (kl_mode=reward) or backpropagated directly (kl_mode=loss), GRPO-style advantages
  and the PPO clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from distillgym.trainers import core, grpo, opd
from distillgym.trainers.advantages import group_advantages
from distillgym.trainers.config import Clip, Distill, Reduce, opt
from distillgym.trainers.losses import clipped_pg, kl_full


@dataclass
class Config(Distill, Clip, Reduce):
    variant: Literal["jsd", "rl"] = opt(
        "jsd", "jsd (full-vocabulary JSD self-distillation) | rl (RL with a reverse-KL term)")
    teacher: Literal["frozen", "ema", "self"] = opt(
        "frozen", "frozen (the initial policy, recommended by Zhao et al.) | ema | self (the live weights)")
    kl_coef: float = opt(0.5, "variant=rl: beta, the reverse-KL weight (0.5 in Penaloza et al.)")
    kl_mode: Literal["reward", "loss"] = opt(
        "reward", "variant=rl: reward (KL folded into the return) | loss (exact KL backpropagated)")
    normalize_std: bool = opt(False, "variant=rl: divide advantages by the std (Penaloza et al. do not: A = R - mean)")
    skip_uninformed: bool = opt(
        False, "variant=jsd: distill only steps whose privileged info names a next action")


def needs(cfg: Config) -> set[str]:
    return {"privileged"}  # the teacher's context


def setup(run: core.Run, cfg: Config) -> core.TeacherState:
    return core.TeacherState(core.make_teacher(run, cfg.teacher), cfg.teacher)


def iteration(run: core.Run, cfg: Config, state: core.TeacherState) -> dict[str, float]:
    episodes = core.rollout(run, core.model_agent(run), core.train_tasks(run.cfg, run.iteration),
                            run.cfg.group_size)
    skip = cfg.variant == "jsd" and cfg.skip_uninformed
    samples, prompts, info = core.distill_inputs(run, episodes, teacher_privileged=True, skip_uninformed=skip)
    metrics = {**core.episode_metrics(episodes), "samples": len(samples), **info}
    if not samples:
        return metrics
    if cfg.variant == "jsd":
        jsd = opd.Config(teacher=cfg.teacher, jsd_beta=cfg.jsd_beta, ema_decay=cfg.ema_decay, loss_agg=cfg.loss_agg)
        metrics.update(opd.distill_step(run, samples, prompts, jsd, state))
        return metrics
    metrics.update(rl_step(run, episodes, samples, prompts, cfg, state))
    return metrics


def rl_step(run: core.Run, episodes: list, samples: list, prompts: list, cfg: Config,
            state: core.TeacherState) -> dict[str, float]:
    """E[R] - kl_coef * KL(pi_S || sg pi_T): the KL (exact over the vocabulary, summed over an episode's tokens)
    lowers each episode's return, or enters the loss per token."""
    teacher = state.teacher
    ep_of = core.sample_episodes(episodes)
    rewards = [ep.total_reward for ep in episodes]
    if cfg.kl_mode == "reward":
        kl_sum = core.episode_kl_sums(run, samples, ep_of, len(episodes), p_model=run.model, p_prompts=None,
                                      q_model=teacher, q_prompts=prompts)
        rewards = [r - cfg.kl_coef * k for r, k in zip(rewards, kl_sum, strict=True)]
    groups = [ep.group_id if ep.group_id is not None else ("solo", i) for i, ep in enumerate(episodes)]
    adv = group_advantages(rewards, groups, normalize_std=cfg.normalize_std)
    token_adv = [[float(adv[ep_of[j]])] * len(s.completion_ids) for j, s in enumerate(samples)]
    if cfg.kl_mode == "reward":
        pg = grpo.Config(clip_low=cfg.clip_low, clip_high=cfg.clip_high, loss_agg=cfg.loss_agg)
        out = grpo.policy_gradient_step(run, samples, token_adv, pg)
    else:
        out = _pg_with_kl_loss(run, samples, prompts, token_adv, cfg, teacher)
    if cfg.teacher == "ema":
        core.ema_update(teacher, run.model, cfg.ema_decay)
    return out


def _pg_with_kl_loss(run: core.Run, samples: list, prompts: list, token_adv: list, cfg: Config,
                     teacher: Any) -> dict[str, float]:
    def loss_fn(micro: core.Micro, num_tokens: int, num_seqs: int) -> tuple[torch.Tensor, dict[str, float]]:
        batch = core.make_batch(micro.samples, run.device, micro.cols["advantages"])
        logp, logits = core.logprobs(micro.model, micro.samples, run.pad_id, logits=True)
        with torch.no_grad():
            _, t_logits = core.logprobs(teacher, micro.samples, run.pad_id, prompts=micro.cols["teacher_prompts"],
                                        logits=True)
        pg, _ = clipped_pg(logp, batch.old_logp, batch.advantages, clip_low=cfg.clip_low, clip_high=cfg.clip_high,
                           ratio_cap=cfg.ratio_cap)
        kl = kl_full(logits, t_logits)
        per_token = pg + cfg.kl_coef * kl
        m = batch.mask.sum().clamp(min=1)
        metrics = {"kl_teacher": float((kl.detach() * batch.mask).sum() / m)}
        return core.reduce_step(per_token, batch.mask, cfg.loss_agg, num_tokens=num_tokens, num_seqs=num_seqs), metrics

    return core.optimize(run, samples, loss_fn, advantages=token_adv, teacher_prompts=prompts)


def teacher_context(run: core.Run, cfg: Config, state: core.TeacherState) -> bool:
    """The self-teacher reads the env's privileged info (what `eval/teacher_gap` measures)."""
    return True
