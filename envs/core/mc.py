"""Monte-Carlo action values from a snapshot, vectorized over rollouts (ProAct's MC-Critic).

Q_MC(s, a) = 1/M sum_m [ r(s, a) + sum_{t>=1} gamma^t r_t ]: take `a` from the env's current state, then follow
a rollout policy (uniformly random by default) for up to `horizon` steps in total. Every family provides a
`BatchSimulator`: its dynamics over a batch of states held as numpy arrays, so that M rollouts advance together
with a few array operations per step instead of a Python loop per rollout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

Batch = dict[str, np.ndarray]
#: A rollout policy: (batch of states, rng) -> action indices, shape (n,).
RolloutPolicy = Callable[[Batch, np.random.Generator], np.ndarray]


class BatchSimulator(Protocol):
    """A family's dynamics over batches of states (dict of arrays sharing the leading dimension n)."""

    action_names: tuple[str, ...]

    def replicate(self, n: int) -> Batch:
        """n copies of the env's current state."""
        ...

    def root_actions(self) -> list[int]:
        """Indices of the actions that change the env's current state (the ones worth a Q value)."""
        ...

    def step(self, batch: Batch, actions: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Advance every state in place; return (rewards (n,), terminated (n,) bool)."""
        ...


def take(batch: Batch, idx: np.ndarray) -> Batch:
    """The sub-batch at `idx` (rows of every array)."""
    return {k: np.take(v, idx, axis=0) for k, v in batch.items()}  # np.take: ~10x faster than v[idx] here


def rollout_returns(
    sim: BatchSimulator,
    batch: Batch,
    first_actions: np.ndarray,
    *,
    horizon: int,
    gamma: float,
    rng: np.random.Generator,
    policy: RolloutPolicy | None = None,
) -> np.ndarray:
    """Discounted returns of rollouts that start with `first_actions` then follow `policy` (random if None).

    Finished rollouts are dropped from the working batch as they end, so a step costs in proportion to the
    rollouts still alive.
    """
    n = len(first_actions)
    num_actions = len(sim.action_names)
    returns = np.zeros(n, dtype=np.float64)
    rewards, done = sim.step(batch, np.asarray(first_actions), rng)
    returns += rewards
    alive = np.flatnonzero(~done)
    batch = take(batch, alive)
    discount = 1.0
    for _ in range(1, horizon):
        if alive.size == 0:
            break
        discount *= gamma
        # the uniform default draws floats: cheaper per call than rng.integers
        uniform = (rng.random(alive.size) * num_actions).astype(np.intp) if policy is None else None
        actions = policy(batch, rng) if policy is not None else uniform
        rewards, done = sim.step(batch, np.asarray(actions), rng)
        returns[alive] += discount * rewards
        if done.any():
            keep = np.flatnonzero(~done)
            alive = alive[keep]
            batch = take(batch, keep)
    return returns


def mc_q_values(
    env: Any,
    *,
    num_rollouts: int = 1000,
    horizon: int = 200,
    gamma: float = 0.95,
    policy: RolloutPolicy | None = None,
    seed: int | None = None,
    actions: Sequence[str] | None = None,
) -> dict[str, float]:
    """Monte-Carlo Q(s, a) for every action that changes the current state of `env` (a distillgym env), or for the
    named `actions` (any of the simulator's action names: a move that changes nothing gets its penalty, then the
    rollout from the unchanged state).

    The env itself is not touched: the rollouts run on the family's batch simulator, from a copy of the current
    state. ProAct's reference settings: M=1000, horizon 1000 and gamma 0.9 for 2048; horizon 200 and gamma 0.95
    for Sokoban.

    Returns:
        {action name: Q value}, e.g. {"Up": 3.1, "Left": 2.7}. Empty when no action changes the state.
    """
    if num_rollouts < 1 or horizon < 1:
        raise ValueError(f"num_rollouts and horizon must be >= 1, got {num_rollouts} and {horizon}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    sim: BatchSimulator = env.unwrapped.batch_simulator()
    if actions is None:
        chosen = sim.root_actions()
    else:
        unknown = [a for a in actions if a not in sim.action_names]
        if unknown:
            raise ValueError(f"unknown action(s) {unknown}: the simulator's actions are {list(sim.action_names)}")
        chosen = [sim.action_names.index(a) for a in actions]
    if not chosen:
        return {}
    rng = np.random.default_rng(seed)
    batch = sim.replicate(len(chosen) * num_rollouts)
    first = np.repeat(np.asarray(chosen, dtype=np.int64), num_rollouts)
    returns = rollout_returns(sim, batch, first, horizon=horizon, gamma=gamma, rng=rng, policy=policy)
    q = returns.reshape(len(chosen), num_rollouts).mean(axis=1)
    return {sim.action_names[a]: float(v) for a, v in zip(chosen, q, strict=True)}


#: A rollout policy that acts in a live env: (unwrapped env, rng) -> action text.
EnvPolicy = Callable[[Any, np.random.Generator], str]


def env_returns(
    env: Any,
    policy: EnvPolicy,
    *,
    first_action: str | None = None,
    num_rollouts: int = 16,
    horizon: int = 50,
    gamma: float = 0.95,
    rng: np.random.Generator,
) -> float:
    """Mean discounted return of `num_rollouts` rollouts through the env itself (snapshot / restore; for families
    without a batch simulator, or policies a simulator cannot run: the expert, a model): `first_action`, when given,
    then `policy` for up to `horizon` steps in total. The env ends where it began."""
    base = env.unwrapped
    start = base.snapshot()
    total = 0.0
    try:
        for _ in range(num_rollouts):
            base.restore(start)
            ret, discount = 0.0, 1.0
            for t in range(horizon):
                action = first_action if t == 0 and first_action is not None else policy(base, rng)
                _, r, terminated, truncated, _ = base.step(action)
                ret += discount * float(r)
                discount *= gamma
                if terminated or truncated:
                    break
            total += ret
    finally:
        base.restore(start)
    return total / num_rollouts
