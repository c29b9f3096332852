"""MC-GRPO (ProAct's second stage): GRPO over single states, each reply scored by the Monte-Carlo critic.

Each iteration: the current policy plays one episode of each training task; `states_per_iter` of the states it
visited are drawn; at each, `samples_per_state` (G) replies are sampled from the prompt the policy saw there, and
reply i earns r_i = Q_MC(s, a_i) (a reply that names no action: the invalid reward). The advantage is r normalized
within the G replies; when all G name the same action (a group GRPO would drop), it is that action's standing among
the legal ones instead: (Q(s, a) - mean_legal Q) / std_legal Q. Then the PPO-clipped update with the ratio cap.

`variant` names ProAct's other two: "step" (r_i = the immediate reward of a_i; all-same groups dropped) and
"trajectory" (Traj-GRPO: G whole episodes per task, each turn gets its episode's group-normalized return).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from distillgym.agents.generation import SamplingParams
from distillgym.agents.policies import row_seed
from distillgym.envs.core.make import make_env
from distillgym.trainers import core, grpo, mc_critic
from distillgym.trainers.advantages import episode_advantages, group_advantages
from distillgym.trainers.config import Clip, Reduce, opt
from distillgym.types import Sample


@dataclass
class Config(mc_critic.ProActPG, mc_critic.MCCritic, Clip, Reduce):
    variant: Literal["mc", "step", "trajectory"] = opt(
        "mc", "mc (r = Q_MC of the reply) | step (r = its immediate reward) | trajectory (Traj-GRPO: episode returns)")
    samples_per_state: int = opt(8, "G: replies sampled at each state (mc, step)")
    states_per_iter: int = opt(8, "states drawn from the iteration's own episodes (mc, step)")
    fallback: bool = opt(True, "mc: when all G replies name one action, use (Q(a) - mean legal Q) / std legal Q")
    eps: float = opt(1e-6, "added to the std of an advantage's normalization")


def needs(cfg: Config) -> set[str]:
    return mc_critic.needs(cfg)


def setup(run: core.Run, cfg: Config) -> grpo.State:
    mc_critic.check(cfg, "mc_grpo.")
    if cfg.samples_per_state < 2 and cfg.variant != "trajectory":
        raise ValueError(f"config field mc_grpo.samples_per_state must be >= 2, got {cfg.samples_per_state}")
    if cfg.states_per_iter < 1:
        raise ValueError(f"config field mc_grpo.states_per_iter must be >= 1, got {cfg.states_per_iter}")
    return grpo.State(core.frozen_copy(run.model) if cfg.kl_coef else None)


def fallback_advantage(q_action: float, legal_q: dict[str, float], eps: float = 1e-6) -> float:
    """The advantage of a group whose replies all name one action: its Q's standing among the legal actions'
    (population std; 0 when they are all equal or there is one)."""
    values = np.asarray(list(legal_q.values()), dtype=np.float64)
    if values.size < 2 or values.std() <= 0:
        return 0.0
    return float((q_action - values.mean()) / (values.std() + eps))


def state_advantages(rewards: list[float], actions: list[str | None], cfg: Config,
                     critic: mc_critic.StateCritic | None) -> list[float]:
    """The G replies' advantages at one state (see the module docstring)."""
    same = len(set(actions)) == 1 and actions[0] is not None
    if same and cfg.variant == "step":
        return [0.0] * len(rewards)
    if same and cfg.variant == "mc" and cfg.fallback and critic is not None:
        return [fallback_advantage(rewards[0], critic.legal_q(), cfg.eps)] * len(rewards)
    return group_advantages(rewards, [0] * len(rewards), eps=cfg.eps).tolist()


def iteration(run: core.Run, cfg: Config, state: grpo.State) -> dict[str, float]:
    if cfg.variant == "trajectory":
        return _trajectory(run, cfg, state)
    tasks = core.train_tasks(run.cfg, run.iteration)
    episodes = core.rollout(run, core.model_agent(run), tasks, 1)
    metrics = core.episode_metrics(episodes)
    turns = [(i, t) for i, ep in enumerate(episodes) for t, turn in enumerate(ep.turns) if turn.prompt_ids]
    rng = np.random.default_rng([run.cfg.seed, run.iteration, 11])
    picked = [turns[k] for k in sorted(rng.choice(len(turns), size=min(cfg.states_per_iter, len(turns)),
                                                  replace=False))] if turns else []
    env = make_env(run.cfg.env, **run.cfg.env_kwargs)
    samples: list[Sample] = []
    advantages: list[list[float]] = []
    fallbacks, sim_steps, q_spread = 0, 0, []
    try:
        for k, (i, t) in enumerate(picked):
            ep, turn = episodes[i], episodes[i].turns[t]
            assert turn.prompt_ids is not None
            mc_critic.goto(env, ep, t)
            seed = row_seed(run.cfg.seed * 100_003 + run.iteration, k, 0)
            params = SamplingParams(temperature=run.cfg.temperature, top_p=run.cfg.top_p,
                                    max_tokens=run.cfg.max_tokens, stop=run.protocol.stop,
                                    seeds=tuple(row_seed(seed, g, 1) for g in range(cfg.samples_per_state)))
            completions = run.backend.generate([turn.prompt_ids] * cfg.samples_per_state, params)
            run.gen_tokens += sum(len(c.ids) for c in completions)
            replies = [run.protocol.parse(c.text) or c.text for c in completions]
            critic = mc_critic.StateCritic(env, cfg, seed)
            actions = [critic.action_name(a) for a in replies]
            rewards = [critic.q(a) if cfg.variant == "mc" else _immediate(env, a, cfg) for a in replies]
            adv = state_advantages(rewards, actions, cfg, critic)
            fallbacks += len(set(actions)) == 1 and actions[0] is not None
            sim_steps += critic.sim_steps
            q_spread.append(float(np.std(rewards)))
            for c, a in zip(completions, adv, strict=True):
                if a == 0.0 or not c.ids:
                    continue
                samples.append(Sample(list(turn.prompt_ids), list(c.ids), [1] * len(c.ids), list(c.logprobs)))
                advantages.append([a] * len(c.ids))
    finally:
        env.close()
    metrics.update({"states": len(picked), "samples": len(samples), "same_action_frac": fallbacks / max(1, len(picked)),
                    "mc/sim_steps": sim_steps, "reward_std": float(np.mean(q_spread)) if q_spread else 0.0})
    if samples:
        metrics.update(grpo.policy_gradient_step(run, samples, advantages, cfg, reference=state.reference))
    return metrics


def _immediate(env: Any, action: str, cfg: Config) -> float:
    """Step-GRPO's reward: what the env pays for `action` at once (from a snapshot; the env is put back)."""
    base = env.unwrapped
    if base.parse_action(action) is None and cfg.invalid_reward is not None:
        return cfg.invalid_reward
    snap = base.snapshot()
    _, reward, *_ = base.step(action)
    base.restore(snap)
    return float(reward)


def _trajectory(run: core.Run, cfg: Config, state: grpo.State) -> dict[str, float]:
    """Traj-GRPO: G episodes of each task; each turn's advantage is its episode's group-normalized return."""
    episodes = core.rollout(run, core.model_agent(run), core.train_tasks(run.cfg, run.iteration),
                            run.cfg.group_size)
    adv = episode_advantages(episodes, eps=cfg.eps)
    per_turn = [[float(a)] * ep.num_steps for a, ep in zip(adv, episodes, strict=True)]
    samples, advantages = grpo.token_samples(episodes, per_turn, drop_zero=True)
    metrics = core.episode_metrics(episodes)
    metrics["samples"] = len(samples)
    if samples:
        metrics.update(grpo.policy_gradient_step(run, samples, advantages, cfg, reference=state.reference))
    return metrics
