"""The text-environment contract shared by every distillgym family (docs/design.md, "The environment contract").

A `TextEnv` is a `gymnasium.Env[str, str]`: observations and actions are text. Subclasses implement a handful of
hooks (`_new_task`, `_apply`, `_board_text`, ...); this base class owns what must be identical in every family:
seeding and the train/test split, the step limit, invalid-action feedback and penalty, the `info` keys,
`snapshot()`/`restore()`, and rendering.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, TypeVar

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding

from distillgym.envs.core.parsing import describe_action
from distillgym.envs.core.protocol import DEFAULT_PROTOCOL, AgentProtocol
from distillgym.envs.core.spaces import TextSpace

Split = Literal["train", "test"]
SPLITS: tuple[str, ...] = ("train", "test")
#: Each split owns a disjoint range of task seeds: train = [0, 2**31), test = [2**31, 2**32).
SPLIT_SIZE = 2**31
SPLIT_OFFSET: dict[str, int] = {"train": 0, "test": SPLIT_SIZE}

ActT = TypeVar("ActT")


def task_seed(split: str, index: int) -> int:
    """The generation seed of task `index` of `split`; the two splits' seed ranges never overlap."""
    if split not in SPLIT_OFFSET:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0 <= int(index) < SPLIT_SIZE:
        raise ValueError(f"task index (the reset seed) must be in [0, {SPLIT_SIZE}), got {index}")
    return SPLIT_OFFSET[split] + int(index)


def choose_task(env: gym.Env[Any, Any], seed: int | None, options: dict[str, Any] | None,
                split: str) -> tuple[str, int, dict[str, Any]]:
    """(split, task index, the other options) a reset asks for: the options' `split` (else `split`) and
    `task_index`, else the seed, else a draw from the env's `np_random`."""
    options = dict(options or {})
    split = options.pop("split", split)
    if "task_index" in options:
        index = int(options.pop("task_index"))
    elif seed is not None:
        index = int(seed)
    else:
        index = int(env.np_random.integers(SPLIT_SIZE))
    return split, index, options


@dataclass(frozen=True)
class EnvSnapshot:
    """Everything needed to put an env back exactly where it was (see `TextEnv.snapshot`)."""

    family: str
    task_index: int
    task_seed: int
    split: str
    steps: int
    done: bool
    last_obs: str
    last_feedback: str
    state: Any  # the family's own immutable state


class LazyPrivileged(Mapping[str, Any]):
    """`info["privileged"]`: a read-only mapping whose entries (an expert's plan or search, often the costliest part
    of a step) are computed when first read, then kept. Read while the env is still at that step, it asks the env
    itself; read later, it computes them from the state the env recorded for that step
    (`TextEnv._privileged_state`), so an info kept across steps still says what it said. `dict(...)`, copies and
    pickles give a plain dict (json needs `dict(...)`); `evaluated` says whether anything has read it yet."""

    __slots__ = ("_env", "_state", "_value", "_version")

    def __init__(self, env: TextEnv[Any], version: int, state: Any) -> None:
        self._env: TextEnv[Any] | None = env
        self._version = version
        self._state = state
        self._value: dict[str, Any] | None = None

    @property
    def evaluated(self) -> bool:
        return self._value is not None

    def _get(self) -> dict[str, Any]:
        if self._value is None:
            env = self._env
            assert env is not None
            self._value = dict(env.privileged_info() if env._version == self._version
                               else env._privileged_info_at(self._state))
            self._env = self._state = None  # the answer is all that is needed now
        return self._value

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return repr(self._get())

    def __copy__(self) -> dict[str, Any]:
        return dict(self._get())

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return copy.deepcopy(self._get(), memo)

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (self._get(),))


class TextEnv(gym.Env[str, str], Generic[ActT]):
    """Base class of all distillgym text environments.

    Args:
        split: "train" or "test"; the reset seed indexes tasks inside the split's own seed range.
        max_steps: episode step limit (counted over every `step` call, invalid ones included); the episode is
            truncated when it is reached.
        invalid_action_penalty: reward for an action that cannot be parsed; the step still counts.
        privileged: give `info["privileged"]` (expert plan, solution) at every step, computed when first read
            (a `LazyPrivileged` mapping); False gives an empty dict.
        render_mode: None, "ansi" (render() returns the text) or "human" (render() prints it).
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi", "human"], "render_fps": 4}  # noqa: RUF012 (gymnasium's)
    family: ClassVar[str] = "text"
    agent_protocol: ClassVar[AgentProtocol] = DEFAULT_PROTOCOL  # how agents talk to this family
    max_observation_length: ClassVar[int] = 8192
    max_action_length: ClassVar[int] = 1 << 20
    #: Actions are free-form (code cells): most text is a valid action, answered by the environment itself.
    free_form_actions: ClassVar[bool] = False

    def __init__(
        self,
        *,
        split: str = "train",
        max_steps: int = 100,
        invalid_action_penalty: float = -1.0,
        privileged: bool = True,
        render_mode: str | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if int(max_steps) < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.split = split
        self.max_steps = int(max_steps)
        self.invalid_action_penalty = float(invalid_action_penalty)
        self.compute_privileged = bool(privileged)
        self.render_mode = render_mode
        self.observation_space = TextSpace(self.max_observation_length)
        self.action_space = TextSpace(self.max_action_length)
        self._task_index = -1
        self._task_seed = -1
        self._task_split = split
        self._steps = 0
        self._done = False
        self._last_obs = ""
        self._last_feedback = ""
        self._version = 0  # bumped whenever the state may change (reset, step, restore): what a lazy info is tied to

    # ----------------------------------------------------------------- family hooks
    @abstractmethod
    def _new_task(self, seed: int, options: dict[str, Any]) -> None:
        """Generate the task of generation seed `seed` and set the family state to its start."""

    @abstractmethod
    def parse_action(self, text: object) -> ActT | None:
        """The family's action named by `text`, or None when it names none. Never raises."""

    @abstractmethod
    def _apply(self, action: ActT) -> tuple[float, bool, str]:
        """Apply a parsed action; return (reward, terminated, feedback text, may be empty)."""

    @abstractmethod
    def _board_text(self) -> str:
        """The current state as the agent sees it."""

    @abstractmethod
    def task_text(self) -> str:
        """The instruction an agent is given for this task (rules, goal, action format)."""

    @abstractmethod
    def admissible_actions(self) -> list[str] | None:
        """The actions that are valid now, or None when the family does not enumerate them."""

    @abstractmethod
    def is_success(self) -> bool:
        """Whether the task's goal holds now."""

    @abstractmethod
    def privileged_info(self) -> dict[str, Any]:
        """Teacher-only information about the current task/state (expert plan, solution...)."""

    @abstractmethod
    def expert_action(self) -> str | None:
        """The expert's next action from the current state (None when it has none, e.g. a deadlock)."""

    @abstractmethod
    def _get_state(self) -> Any:
        """The family's state, immutable or deep-copied, for `snapshot()`."""

    @abstractmethod
    def _set_state(self, state: Any) -> None:
        """Restore what `_get_state` returned."""

    def _privileged_state(self) -> Any:
        """What `privileged_info()` depends on now, recorded at every step for a lazy info read after the env has
        moved on: cheap and immutable. Default: a snapshot; a family overrides it with less (2048: the board)."""
        return self.snapshot()

    def _privileged_info_at(self, state: Any) -> dict[str, Any]:
        """`privileged_info()` as it was when `_privileged_state()` returned `state`. Default: put the snapshot back,
        ask, and return to where the env is (its RNG and step count included)."""
        here, version = self.snapshot(), self._version
        try:
            self.restore(state)
            return self.privileged_info()
        finally:
            self.restore(here)
            self._version = version

    def _extra_info(self) -> dict[str, Any]:
        """Per-family extras, stored under the family's own key in `info`."""
        return {}

    def resample_chance(self, seed: int) -> None:
        """Draw what chance does next from `seed` instead of the task's own stream (search over a stochastic family
        averages over outcomes this way). Deterministic families have no chance: nothing to do."""

    def invalid_feedback(self, action: object) -> str:
        return f"Invalid action {describe_action(action)}. Reply with one of the valid actions."

    # ----------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Start task `seed` of the env's split (a random one drawn from the env's RNG when seed is None).

        options: `split` overrides the env's split for this episode; `task_index` picks the task independently
        of the RNG seed; families document their own extra options.
        """
        if seed is not None and type(seed) is int and seed >= 0:
            # gymnasium's seeding, deferred: `np_random` is built from this seed when first read (most resets
            # with a seed never read it, and building it is a good part of a cheap reset).
            self._np_random_pending, self._np_random_seed = True, seed
        else:
            super().reset(seed=seed)  # None, or gymnasium's own error for a bad seed
        self._version += 1
        split, index, options = choose_task(self, seed, options, self.split)
        self._task_seed = task_seed(split, index)
        self._task_index = index
        self._task_split = split
        self._steps = 0
        self._done = False
        self._last_feedback = ""
        self._new_task(self._task_seed, options)
        self._last_obs = self._observation("")
        if self.render_mode == "human":
            self.render()
        return self._last_obs, self._info(invalid=False)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._task_seed < 0:
            raise gym.error.ResetNeeded("Call reset() before step().")
        if self._done:
            feedback = "The episode is over. Call reset() to start a new task."
            self._last_obs = self._observation(feedback)
            return self._last_obs, 0.0, True, False, self._info(invalid=True)
        self._steps += 1
        self._version += 1
        parsed = self.parse_action(action)
        if parsed is None:
            reward, terminated, feedback = self.invalid_action_penalty, False, self.invalid_feedback(action)
        else:
            reward, terminated, feedback = self._apply(parsed)
        truncated = not terminated and self._steps >= self.max_steps
        if truncated and not feedback:
            feedback = f"Step limit ({self.max_steps}) reached."
        self._done = terminated or truncated
        self._last_feedback = feedback
        self._last_obs = self._observation(feedback)
        if self.render_mode == "human":
            self.render()
        return (
            self._last_obs,
            float(reward),
            bool(terminated),
            bool(truncated),
            self._info(invalid=parsed is None),
        )

    def render(self) -> str | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'human'.")
            return None
        name = self.spec.id if self.spec else type(self).__name__
        text = f"{self._last_obs}\n[{name}] step {self._steps}/{self.max_steps}"
        if self.render_mode == "human":
            print(text)
            return None
        return text

    # gymnasium keeps `np_random` in `_np_random` (and `check_env` reads it there): here it is built when first
    # read from the seed the last reset recorded, the same generator `gymnasium.Env.reset(seed=...)` makes.
    _generator: np.random.Generator | None = None
    _np_random_pending = False

    @property
    def _np_random(self) -> np.random.Generator | None:
        if self._np_random_pending:
            self._np_random_pending = False
            self._generator = seeding.np_random(self._np_random_seed)[0]
        return self._generator

    @_np_random.setter
    def _np_random(self, value: np.random.Generator | None) -> None:
        self._np_random_pending, self._generator = False, value

    # ----------------------------------------------------------------- snapshot / restore
    def snapshot(self) -> EnvSnapshot:
        """A cheap, exact copy of the env's state: `restore(snapshot())` then the same actions give the same
        observations, rewards and infos (RNG state included)."""
        return EnvSnapshot(
            family=self.family,
            task_index=self._task_index,
            task_seed=self._task_seed,
            split=self._task_split,
            steps=self._steps,
            done=self._done,
            last_obs=self._last_obs,
            last_feedback=self._last_feedback,
            state=self._get_state(),
        )

    def restore(self, snap: EnvSnapshot) -> None:
        """Put the env back to `snap` (taken from an env of the same family and constructor options)."""
        if not isinstance(snap, EnvSnapshot) or snap.family != self.family:
            raise ValueError(f"restore() needs a snapshot of a {self.family!r} env, got {type(snap).__name__}")
        self._version += 1
        self._task_index = snap.task_index
        self._task_seed = snap.task_seed
        self._task_split = snap.split
        self._steps = snap.steps
        self._done = snap.done
        self._last_obs = snap.last_obs
        self._last_feedback = snap.last_feedback
        self._set_state(copy.deepcopy(snap.state))

    # ----------------------------------------------------------------- helpers
    @property
    def steps(self) -> int:
        return self._steps

    @property
    def current_task_seed(self) -> int:
        return self._task_seed

    @property
    def last_observation(self) -> str:
        return self._last_obs

    def _observation(self, feedback: str) -> str:
        board = self._board_text()
        return f"{feedback}\n{board}" if feedback else board

    def _info(self, *, invalid: bool) -> dict[str, Any]:
        info: dict[str, Any] = {
            "task": self.task_text(),
            "admissible_actions": self.admissible_actions(),
            "privileged": LazyPrivileged(self, self._version, self._privileged_state())
            if self.compute_privileged else {},
            "success": bool(self.is_success()),
            "invalid_action": invalid,
            "feedback": self._last_feedback,
            "step": self._steps,
            "task_index": self._task_index,
            "task_seed": self._task_seed,
            "split": self._task_split,
        }
        extra = self._extra_info()
        if extra:
            info[self.family] = extra
        return info
