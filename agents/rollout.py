"""Vectorized rollout: many episodes at once, one batched `agent.act` per step across all running environments.

`collect` plays the given tasks (GRPO-style: `group_size` episodes per task, sharing a `group_id`) on
`num_envs` environments and returns one `Episode` per episode, in task order, recording exactly the token ids the
model saw and sampled. Everything is deterministic in `seed`: task i of a split is the same task everywhere, and
the agent's randomness is seeded per step from `seed`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

import distillgym  # noqa: F401  (registers the environments)
from distillgym.agents.policies import ActRequest, Agent
from distillgym.agents.prompts import PastTurn
from distillgym.types import Episode, Turn


@dataclass
class _Slot:
    env: Any
    episode: Episode | None = None
    index: int = -1
    observation: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    past: list[PastTurn] = field(default_factory=list)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def step_seed(seed: int, step: int) -> int:
    """The agent's seed for batch step `step` of a rollout seeded `seed` (independent streams per step)."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1, np.uint64)[0] >> 1)


def collect(
    agent: Agent,
    env_id: str,
    tasks: int | Sequence[int] = 8,
    *,
    split: str = "test",
    group_size: int = 1,
    num_envs: int = 16,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> list[Episode]:
    """Play `tasks` (a count, meaning task indices 0..n-1, or explicit indices) of `split`, `group_size` times each.

    Returns Episodes ordered by task, then group member; `Episode.group_id` is the task's position in `tasks`.
    """
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    task_list = list(range(tasks)) if isinstance(tasks, int) else [int(t) for t in tasks]
    queue = [(g, t) for g, t in enumerate(task_list) for _ in range(group_size)]
    episodes: list[Episode | None] = [None] * len(queue)
    env_kwargs = dict(env_kwargs or {})
    full_id = env_id if "/" in env_id else f"distillgym/{env_id}"
    slots = [_Slot(gym.make(full_id, **env_kwargs).unwrapped) for _ in range(min(num_envs, len(queue)))]
    family = slots[0].env.family if slots else ""
    agent_name = getattr(agent, "name", type(agent).__name__)
    next_item = 0
    tokens = 0
    start = time.perf_counter()
    bar = tqdm(total=len(queue), desc=desc or f"{agent_name} on {env_id}", unit="ep", disable=not progress)

    def start_episode(slot: _Slot) -> None:
        nonlocal next_item
        group, task = queue[next_item]
        obs, info = slot.env.reset(options={"split": split, "task_index": task})
        slot.index, next_item = next_item, next_item + 1
        slot.observation, slot.info, slot.past = obs, info, []
        slot.episode = Episode(
            env_id=env_id,
            task_index=int(info["task_index"]),
            task_seed=int(info["task_seed"]),
            split=str(info["split"]),
            task=str(info["task"]),
            initial_observation=obs,
            privileged=_json_safe(dict(info.get("privileged") or {})),
            agent=agent_name,
            group_id=group,
            meta={"rollout_seed": seed},
        )

    for slot in slots:
        start_episode(slot)
    step = 0
    try:
        while any(s.episode is not None for s in slots):
            running = [s for s in slots if s.episode is not None]
            requests = [
                ActRequest(
                    env=s.env,
                    family=family,
                    task=s.episode.task,
                    observation=s.observation,
                    info=s.info,
                    past=s.past,
                    episode=s.index,
                    step=s.episode.num_steps,
                    seed=seed,
                )
                for s in running
                if s.episode is not None
            ]
            results = agent.act(requests, step_seed(seed, step))
            step += 1
            for slot, res in zip(running, results, strict=True):
                assert slot.episode is not None
                obs, reward, terminated, truncated, info = slot.env.step(res.action)
                turn_info: dict[str, Any] = {}
                if slot.info.get("privileged"):
                    turn_info["privileged"] = _json_safe(dict(slot.info["privileged"]))
                if res.reply != res.action:
                    turn_info["reply"] = res.reply
                slot.episode.turns.append(
                    Turn(
                        observation=slot.observation,
                        action=res.action,
                        reward=float(reward),
                        terminated=bool(terminated),
                        truncated=bool(truncated),
                        invalid_action=bool(info.get("invalid_action", False)),
                        prompt_ids=res.prompt_ids,
                        completion_ids=res.completion_ids,
                        logprobs=res.logprobs,
                        info=turn_info,
                    )
                )
                tokens += len(res.completion_ids or [])
                slot.past.append(PastTurn(slot.observation, res.reply, res.completion_ids))
                slot.observation, slot.info = obs, info
                if terminated or truncated:
                    slot.episode.success = bool(info.get("success", False))
                    episodes[slot.index] = slot.episode
                    slot.episode = None
                    bar.update(1)
                    elapsed = max(time.perf_counter() - start, 1e-9)
                    bar.set_postfix(tok_s=f"{tokens / elapsed:.0f}", steps=step, refresh=False)
                    if next_item < len(queue):
                        start_episode(slot)
    finally:
        bar.close()
        for slot in slots:
            slot.env.close()
    return [e for e in episodes if e is not None]
