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
from distillgym.envs.core.make import EnvLike, env_name, make_env
from distillgym.envs.core.protocol import DEFAULT_PROTOCOL, family_of, protocol_of
from distillgym.envs.core.text_env import TextEnv, task_seed
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
    env: EnvLike | Sequence[gym.Env],
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

    `env` is a registered id, an entry point `"package.module:EnvClass"` or a factory (`num_envs` copies are made
    with `env_kwargs`; see `envs.core.make`), or a list of env instances to play on (kept open). Rollouts step the env
    as made, wrappers included. A distillgym env is reset to task i of the split (`options`); any other env with the
    seed of that task (`envs.core.task_seed`: the train and test seeds never overlap), its `info["task"]` as the
    task text when it gives one, and the agent protocol it declares (`agent_protocol`) or the default one.

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
    owned = isinstance(env, str) or callable(env)  # envs made here are closed here; instances stay open
    if isinstance(env, str) or callable(env):  # (spelled out again for the type checker's narrowing)
        made = [make_env(env, **env_kwargs) for _ in range(min(num_envs, len(queue)))]
        env_id = env_name(env, made[0] if made else None)
    else:
        made = list(env)
        if not made:
            raise ValueError("no environment instances given")
        env_id = env_name(type(made[0]), made[0])
    slots = [_Slot(e) for e in made]
    family = family_of(made[0]) if made else ""
    protocol = protocol_of(made[0]) if made else DEFAULT_PROTOCOL
    agent_name = getattr(agent, "name", type(agent).__name__)
    next_item = 0
    tokens = 0
    start = time.perf_counter()
    bar = tqdm(total=len(queue), desc=desc or f"{agent_name} on {env_id}", unit="ep", disable=not progress)

    def start_episode(slot: _Slot) -> None:
        nonlocal next_item
        group, task = queue[next_item]
        if isinstance(slot.env.unwrapped, TextEnv) or getattr(slot.env.unwrapped, "takes_task_index", False):
            obs, info = slot.env.reset(options={"split": split, "task_index": task})
        else:  # any gymnasium text env: the task's seed
            seed_of_task = task_seed(split, task)
            obs, info = slot.env.reset(seed=seed_of_task)
            info = {"task_index": task, "task_seed": seed_of_task, "split": split, "task": "", **info}
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
                    env=s.env.unwrapped,
                    family=family,
                    protocol=protocol,
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
                turn_info.update(res.info)
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
                    if isinstance(info.get(family), dict):  # the family's extras at the end (2048's score, max tile)
                        slot.episode.meta["final"] = _json_safe(info[family])
                    episodes[slot.index] = slot.episode
                    slot.episode = None
                    bar.update(1)
                    elapsed = max(time.perf_counter() - start, 1e-9)
                    bar.set_postfix(tok_s=f"{tokens / elapsed:.0f}", steps=step, refresh=False)
                    if next_item < len(queue):
                        start_episode(slot)
    finally:
        bar.close()
        if owned:
            for slot in slots:
                slot.env.close()
    return [e for e in episodes if e is not None]
