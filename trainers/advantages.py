"""Advantage estimators: GRPO's group normalization and GiGPO's step-level anchor-state groups (numpy, per
episode or per turn; the trainers copy a turn's advantage onto its tokens)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import numpy as np

from distillgym.types import Episode


def group_advantages(
    rewards: Sequence[float], groups: Sequence[Hashable], *, normalize_std: bool = True, eps: float = 1e-6
) -> np.ndarray:
    """(R_i - mean_group R) [/ (std_group R + eps)] for each i; the std is the population std (as verl-agent;
    TRL uses the sample std), and a group of one gets advantage 0."""
    r = np.asarray(rewards, dtype=np.float64)
    if len(r) != len(groups):
        raise ValueError(f"{len(r)} rewards but {len(groups)} group ids")
    out = np.zeros_like(r)
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    for idx in members.values():
        x = r[idx]
        a = x - x.mean()
        if normalize_std and x.std() + eps > 0:  # an all-equal group stays at 0 (no 0/0)
            a = a / (x.std() + eps)
        out[idx] = a
    return out


def discounted_returns(rewards: Sequence[float], gamma: float) -> list[float]:
    """G_t = sum_k gamma^k r_{t+k} for each step t."""
    out, g = [0.0] * len(rewards), 0.0
    for t in range(len(rewards) - 1, -1, -1):
        g = float(rewards[t]) + gamma * g
        out[t] = g
    return out


def episode_advantages(episodes: Sequence[Episode], *, normalize_std: bool = True, eps: float = 1e-6) -> np.ndarray:
    """GRPO over whole episodes: total reward normalized within each group (Episode.group_id)."""
    groups = [e.group_id if e.group_id is not None else ("solo", i) for i, e in enumerate(episodes)]
    return group_advantages([e.total_reward for e in episodes], groups, normalize_std=normalize_std, eps=eps)


def gigpo_advantages(
    episodes: Sequence[Episode],
    *,
    gamma: float = 0.95,
    step_weight: float = 1.0,
    normalize_std: bool = True,
    eps: float = 1e-6,
) -> list[list[float]]:
    """GiGPO: per-turn advantage A = A_episode + step_weight * A_step, where A_step normalizes the discounted return
    of a turn within its anchor-state group: the turns, across the rollouts of one task group, that acted on an
    identical observation."""
    ep_adv = episode_advantages(episodes, normalize_std=normalize_std, eps=eps)
    keys, returns, where = [], [], []
    for i, ep in enumerate(episodes):
        group = ep.group_id if ep.group_id is not None else ("solo", i)
        for t, g in enumerate(discounted_returns([turn.reward for turn in ep.turns], gamma)):
            keys.append((group, ep.turns[t].observation))
            returns.append(g)
            where.append((i, t))
    step_adv = group_advantages(returns, keys, normalize_std=normalize_std, eps=eps)
    out = [[0.0] * ep.num_steps for ep in episodes]
    for (i, t), a in zip(where, step_adv, strict=True):
        out[i][t] = float(ep_adv[i] + step_weight * a)
    return out
