"""ProAct's Monte-Carlo critic on the policy's own episodes: put an env back at any turn of a recorded episode, then
value actions (Q_MC, for MC-GRPO) and states (V_MC, for MC-PPO) there by rollouts.

Families with a batch simulator (Sokoban, 2048) roll out uniformly random policies on it, batched; any family can
roll out the expert (with noise) through snapshots instead, which is what says something in Household and Apps,
where a random walk rarely reaches the goal (and what costs: every rollout step is a real env step there).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from distillgym.envs.core.mc import env_returns, mc_q_values, rollout_returns
from distillgym.envs.core.search import legal_actions, rollout_policy
from distillgym.trainers.config import opt
from distillgym.types import Episode


@dataclass
class MCCritic:
    """Config fields of the Monte-Carlo critic (ProAct: 1000 random rollouts; 2048 horizon 1000, gamma 0.9;
    Sokoban horizon 200, gamma 0.95)."""

    mc_rollouts: int = opt(1000, "rollouts per Monte-Carlo value")
    mc_horizon: int = opt(200, "steps per rollout (ProAct: 200 Sokoban, 1000 2048)")
    mc_gamma: float = opt(0.95, "discount of the rollouts' returns (ProAct: 0.95 Sokoban, 0.9 2048)")
    mc_policy: Literal["random", "expert"] = opt(
        "random", "rollout policy: random (batched on the family's simulator where it has one) | expert (with "
        "mc_noise; through env snapshots: the informative choice for Household and Apps, at a real env step each)")
    mc_noise: float = opt(0.1, "the expert rollout policy's chance of a random legal move")
    invalid_reward: float | None = opt(
        None, "reward of a reply that names no action (None: the env's invalid_action_penalty; ProAct Sokoban: -2)")


@dataclass
class ProActPG:
    """ProAct's policy-gradient settings (its release: symmetric clip 0.4, importance cap 5, no KL), shared by
    MC-GRPO and MC-PPO; they override the Clip group's defaults."""

    clip_low: float = opt(0.4, "PPO clip below 1 (ProAct: 0.4)")
    clip_high: float = opt(0.4, "PPO clip above 1 (ProAct: 0.4)")
    ratio_cap: float = opt(5.0, "drop tokens whose ratio pi/pi_old exceeds this (ProAct's importance cap: 5)")
    kl_coef: float = opt(0.0, "k3 KL to the initial policy (ProAct: none)")


def needs(cfg: MCCritic) -> set[str]:
    """Monte-Carlo values replay states through snapshots; expert rollouts need the expert."""
    return {"snapshot"} | ({"expert"} if cfg.mc_policy == "expert" else set())


def check(cfg: MCCritic, where: str) -> None:
    """Clear errors for impossible critic settings."""
    if cfg.mc_rollouts < 1 or cfg.mc_horizon < 1:
        raise ValueError(f"config fields {where}mc_rollouts and {where}mc_horizon must be >= 1")
    if not 0.0 <= cfg.mc_gamma <= 1.0:
        raise ValueError(f"config field {where}mc_gamma must be in [0, 1], got {cfg.mc_gamma}")
    if not 0.0 <= cfg.mc_noise <= 1.0:
        raise ValueError(f"config field {where}mc_noise must be in [0, 1], got {cfg.mc_noise}")


def walk(env: Any, episode: Episode) -> Iterator[int]:
    """Put `env` at each state of `episode` in turn: yields t with the env where the episode stood before its turn t,
    then (t = num_steps) after its last turn. Reset to its task, then its actions replayed (every family is
    deterministic in the task and the actions; a different observation is an error, not a silently wrong value)."""
    obs, _ = env.reset(options={"split": episode.split, "task_index": episode.task_index})
    for t, turn in enumerate(episode.turns):
        if obs != turn.observation:
            raise RuntimeError(f"replaying task {episode.task_index} of {episode.env_id} to turn {t} gave another "
                               "observation than the episode recorded: the env is not deterministic in its actions")
        yield t
        obs, *_ = env.step(turn.action)
    yield episode.num_steps


def goto(env: Any, episode: Episode, turn: int) -> None:
    """Put `env` where `episode` stood before its turn `turn` (`walk`'s states)."""
    for t in walk(env, episode):
        if t == turn:
            return


class StateCritic:
    """Monte-Carlo values at the env's current state; Q values are cached per action (ProAct caches per action)."""

    def __init__(self, env: Any, cfg: MCCritic, seed: int) -> None:
        self.env, self.base, self.cfg = env, env.unwrapped, cfg
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        sim_fn = getattr(self.base, "batch_simulator", None)
        self.batched = cfg.mc_policy == "random" and callable(sim_fn)
        self.names: tuple[str, ...] = tuple(self.base.batch_simulator().action_names) if self.batched else ()
        self.policy = rollout_policy(cfg.mc_policy, cfg.mc_noise)
        self.cache: dict[str, float] = {}
        self.sim_steps = 0  # an upper bound of the simulated steps spent

    def action_name(self, action: str) -> str | None:
        """The simulator's name of `action` (None: the reply names no action of the env)."""
        parsed = self.base.parse_action(action)
        if parsed is None:
            return None
        if self.batched:
            return self.names[parsed] if isinstance(parsed, int) and 0 <= parsed < len(self.names) else None
        return action

    def is_valid(self, action: str) -> bool:
        return self.base.parse_action(action) is not None

    def q(self, action: str) -> float:
        """Q_MC(s, action): the reply's action then `mc_policy`; a reply that names no action gets the invalid
        reward and no continuation."""
        name = self.action_name(action)
        if name is None:
            return self.cfg.invalid_reward if self.cfg.invalid_reward is not None else self.base.invalid_action_penalty
        if name not in self.cache:
            self.sim_steps += self.cfg.mc_rollouts * self.cfg.mc_horizon
            if self.batched:
                self.cache[name] = mc_q_values(self.env, num_rollouts=self.cfg.mc_rollouts, horizon=self.cfg.mc_horizon,
                                               gamma=self.cfg.mc_gamma, seed=self._seed(name), actions=[name])[name]
            else:
                self.cache[name] = env_returns(self.env, self.policy, first_action=name,
                                               num_rollouts=self.cfg.mc_rollouts, horizon=self.cfg.mc_horizon,
                                               gamma=self.cfg.mc_gamma, rng=np.random.default_rng(self._seed(name)))
        return self.cache[name]

    def _seed(self, name: str) -> int:
        """A seed per action of this state: the same Q whichever order the actions are asked in."""
        return int(np.random.SeedSequence([self.seed, *name.encode()]).generate_state(1)[0])

    def legal_q(self) -> dict[str, float]:
        """Q_MC of every legal action of the state (the all-same-action fallback's reference); empty for a family
        that enumerates none (Apps' free-form code: the fallback has no reference there)."""
        try:
            actions = legal_actions(self.base)
        except ValueError:
            return {}
        return {a: self.q(a) for a in actions}

    def v(self) -> float:
        """V_MC(s): the mean discounted return of `mc_policy` from s (uniformly random first moves too)."""
        cfg = self.cfg
        self.sim_steps += cfg.mc_rollouts * cfg.mc_horizon
        if self.batched:
            sim = self.base.batch_simulator()
            first = self.rng.integers(len(sim.action_names), size=cfg.mc_rollouts)
            returns = rollout_returns(sim, sim.replicate(cfg.mc_rollouts), first, horizon=cfg.mc_horizon,
                                      gamma=cfg.mc_gamma, rng=self.rng)
            return float(returns.mean())
        return env_returns(self.env, self.policy, num_rollouts=cfg.mc_rollouts, horizon=cfg.mc_horizon,
                           gamma=cfg.mc_gamma, rng=self.rng)
