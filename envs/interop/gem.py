"""GEM (`gem-llm`, "a Gym for agentic LLMs") environments as `gymnasium.Env[str, str]`: any `gem.make` id, or a GEM
env instance, plays in distillgym's `collect`, `eval` and `train` (the algorithms that need no expert, privileged
information or snapshots).

    env = make_env("gem:game:Sokoban-v0-easy")          # or GemEnv("game:GuessTheNumber-v0-easy"), GemEnv(env=...)
    distillgym eval -e gem:game:GuessTheNumber-v0-easy -a expert ...   # refused: a GEM env has no expert
    distillgym train algo=grpo env=gem:game:Sokoban-v0-easy ...

What the adapter does, and leaves to the env:

- Text in, text out, as GEM has it: the reply goes to GEM's `step` whole, so the env's own action format (its
  instructions ask for `\\boxed{...}`) and its own parser decide; the agent protocol asks the model to answer as
  the instructions say and passes the reply through.
- `info["task"]` is GEM's first observation (the instructions); an observation is GEM's text plus its
  `info["suffix"]` (the current board or the next prompt, which GEM's own observation wrapper appends).
- Seeds and splits: `reset(seed=i)` plays task i of the split (`split="train"` or `"test"`: disjoint seed ranges, as
  in every distillgym env); GEM seeds Python's and numpy's global generators at reset and draws from them while it
  plays, so the adapter keeps each env's own copy of both and swaps it in around every GEM call: envs of one batch
  do not draw from each other's streams, and the caller's global generators are left as they were.
- `info`: distillgym's keys (task, admissible_actions None, privileged {}, success, invalid_action, feedback, step,
  task_index, task_seed, split) and GEM's own under `info["gem"]`. GEM reports no success: by default an episode
  succeeds when it terminates, not truncated, with GEM's success reward (1.0; `success_reward=`), and a reply is
  invalid when GEM answers with its format-error reward (-0.1).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from distillgym.envs.core.protocol import AgentProtocol
from distillgym.envs.core.spaces import TextSpace
from distillgym.envs.core.text_env import SPLITS, choose_task, task_seed

PREFIX = "gem:"


def _whole_reply(text: str) -> str | None:
    text = text.strip()
    return text or None


GEM_PROTOCOL = AgentProtocol(
    "You are an agent playing a text game; its instructions say how to answer.",
    "Answer in the format the game's instructions ask for (for example \\boxed{...}).",
    parse=_whole_reply,
    stop=(),
)


class GemEnv(gym.Env[str, str]):
    """One GEM environment (`env_id` for `gem.make`, with `kwargs`; or `env=` an instance) as a gymnasium env.

    Args:
        split: "train" or "test"; the reset seed indexes tasks inside the split's own seed range.
        max_steps: truncate an episode after this many steps (None: only GEM's own limit).
        success_reward: the GEM reward that means the task was solved when the episode terminates on it.
        success: a function of (reward, terminated, truncated, gem_info) -> bool that replaces that rule.
        isolate_rng: keep this env's own copies of Python's and numpy's global generators (default; about 0.15 ms
            per call, mostly numpy's state copy); False lets GEM use the globals as it does alone (faster, but envs
            of a batch then draw from one stream and reset the caller's generators).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's)
    family: ClassVar[str] = "gem"
    agent_protocol: ClassVar[AgentProtocol] = GEM_PROTOCOL
    #: what distillgym's algorithms may need and a GEM env does not give (trainers check `capabilities`)
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: reset takes distillgym's options {"split", "task_index"} (rollouts pass them, as to every distillgym env)
    takes_task_index: ClassVar[bool] = True

    def __init__(self, env_id: str | None = None, *, env: Any = None, split: str = "train",
                 max_steps: int | None = None, success_reward: float = 1.0,
                 success: Callable[[float, bool, bool, dict[str, Any]], bool] | None = None,
                 isolate_rng: bool = True, **kwargs: Any) -> None:
        try:
            import gem
        except ImportError as e:
            raise ImportError("GEM environments need gem-llm: pip install 'distillgym[gem]'") from e
        if (env_id is None) == (env is None):
            raise ValueError("GemEnv needs exactly one of env_id (a gem.make id) or env (a GEM env instance)")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if max_steps is not None and int(max_steps) < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.isolate_rng = bool(isolate_rng)
        saved = _global_state()
        try:  # GEM envs reset (and draw from the global generators) in their constructors
            if env is None:
                try:
                    env = gem.make(env_id, **kwargs)
                except ValueError as e:
                    known = ", ".join(sorted(gem.envs.registration.ENV_REGISTRY)[:12])
                    raise ValueError(f"unknown GEM environment {env_id!r} ({e}); GEM ids look like: {known}, ...") \
                        from e
            elif kwargs:
                raise ValueError(f"constructor arguments {sorted(kwargs)} apply to env_id, not to a GEM env instance")
        finally:
            self._mine = _global_state()
            _set_global_state(saved)
        from gem.utils.constants import LanguageGameReward

        self._format_error = LanguageGameReward.format_error_reward  # GEM's reward for a reply it cannot parse
        self.gem = env
        self.gem_id = env_id or getattr(env, "env_id", type(env).__name__)
        self.split = split
        self.max_steps = None if max_steps is None else int(max_steps)
        self.success_reward = float(success_reward)
        self._success = success
        self.observation_space = TextSpace(1 << 16)
        self.action_space = TextSpace(1 << 16)
        self._task = ""
        self._index = -1
        self._seed = -1
        self._steps = 0
        self._done = False

    # ----------------------------------------------------------------- the env's own generators
    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self.isolate_rng:
            return fn(*args, **kwargs)
        saved = _global_state()
        _set_global_state(self._mine)
        try:
            return fn(*args, **kwargs)
        finally:
            self._mine = _global_state()
            _set_global_state(saved)

    # ----------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        split, index, options = choose_task(self, seed, options, self.split)
        if options:
            raise ValueError(f"unknown reset option(s) {sorted(options)} for a GEM env (it takes: split, task_index)")
        self._seed = task_seed(split, index)
        self._index, self._split, self._steps, self._done = index, split, 0, False
        obs, gem_info = self._call(self.gem.reset, seed=self._seed)
        self._task = str(obs)
        suffix = str(gem_info.get("suffix") or "")
        return suffix or self._task, self._info(gem_info, reward=0.0, terminated=False, truncated=False,
                                                invalid=False, feedback="")

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._seed < 0:
            raise gym.error.ResetNeeded("Call reset() before step().")
        if self._done:
            info = self._info({}, reward=0.0, terminated=True, truncated=False, invalid=True,
                              feedback="The episode is over. Call reset() to start a new task.")
            return info["feedback"], 0.0, True, False, info
        self._steps += 1
        obs, reward, terminated, truncated, gem_info = self._call(self.gem.step, str(action))
        reward, terminated, truncated = float(reward), bool(terminated), bool(truncated)
        if self.max_steps is not None and self._steps >= self.max_steps and not terminated:
            truncated = True
        self._done = terminated or truncated
        invalid = reward == self._format_error
        suffix = str(gem_info.get("suffix") or "") if not self._done else ""
        text = f"{obs}\n{suffix}" if suffix else str(obs)
        return text, reward, terminated, truncated, self._info(gem_info, reward=reward, terminated=terminated,
                                                                truncated=truncated, invalid=invalid,
                                                                feedback=str(obs))

    def sample_random_action(self) -> str:
        """GEM's random move for the current state, in the env's own format (drawn from this env's stream)."""
        return str(self._call(self.gem.sample_random_action))

    def close(self) -> None:
        close = getattr(self.gem, "close", None)
        if callable(close):
            close()

    # ----------------------------------------------------------------- info
    def task_text(self) -> str:
        return self._task

    def _info(self, gem_info: dict[str, Any], *, reward: float, terminated: bool, truncated: bool, invalid: bool,
              feedback: str) -> dict[str, Any]:
        if self._success is not None:
            success = bool(self._success(reward, terminated, truncated, gem_info))
        else:
            success = terminated and not truncated and reward >= self.success_reward
        return {
            "task": self._task,
            "admissible_actions": None,
            "privileged": {},
            "success": success,
            "invalid_action": invalid,
            "feedback": feedback,
            "step": self._steps,
            "task_index": self._index,
            "task_seed": self._seed,
            "split": self._split,
            "gem": {"id": self.gem_id, **{k: v for k, v in gem_info.items() if k != "suffix"}},
        }


def _global_state() -> tuple[Any, Any]:
    return random.getstate(), np.random.get_state()


def _set_global_state(state: tuple[Any, Any]) -> None:
    random.setstate(state[0])
    np.random.set_state(state[1])


def make(name: str, **kwargs: Any) -> GemEnv:
    """`gem:<gem id>` (the prefix optional) as a GemEnv."""
    return GemEnv(name.removeprefix(PREFIX), **kwargs)
