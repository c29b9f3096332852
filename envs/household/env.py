"""Household-v0: ALFWorld-style household tasks on a native engine (seeded, offline, microseconds per step)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

from distillgym.envs.core import TextEnv
from distillgym.envs.core.protocol import AgentProtocol
from distillgym.envs.household.catalog import TASK_TYPES
from distillgym.envs.household.expert import expert_plan, next_command
from distillgym.envs.household.generator import HouseholdConfig, generate
from distillgym.envs.household.world import NOTHING, Command, Household, HouseState, parse_command

#: ALFWorld's role line (as verl-agent words it) and its command grammar, so that ALFWorld prompts carry over; shared
#: by Household-v0 and ALFWorld-v0.
ALFRED_PROTOCOL = AgentProtocol(
    "You are an expert agent operating in the ALFRED Embodied Environment. Commands: go to (receptacle), "
    "open/close (receptacle), take (object) from (receptacle), move (object) to (receptacle), "
    "heat/cool/clean (object) with (receptacle), slice (object) with (object), use (object), "
    "examine (something), inventory, look.",
    "Think briefly if it helps, then give one command inside <action></action>, for example "
    "<action>go to countertop 1</action>.",
)


@lru_cache(maxsize=65536)
def _command(text: str) -> Command | None:
    """Parsed expert commands (the same few strings recur across steps and episodes)."""
    return parse_command(text)


@dataclass(frozen=True)
class _Episode:
    house: Household
    state: HouseState
    plan: tuple[str, ...] | None  # the expert's remaining plan from `state` (None: not computed yet)


class HouseholdEnv(TextEnv[Command]):
    """ALFWorld's six task types in generated households, in ALFWorld's words and command grammar.

    The reset seed picks the task; the split picks the pool of (task type, object, receptacle) triples and
    layouts: `train` draws from the seen pool, `test` from the unseen pool (pairings and layouts never generated
    for training), unless `pool` says otherwise (`split="test", pool="seen"` is ALFWorld's valid_seen).
    Reward is 1 when the goal holds (the episode then ends), else 0; commands that parse but do not apply get
    ALFWorld's "Nothing happens." and count as steps; text that is no command at all is an invalid action.

    Args:
        rooms, clutter, distractors, max_copies, task_types: see `HouseholdConfig`.
        pool: "seen", "unseen" or None (seen for train, unseen for test).
        split, max_steps (ALFWorld's 50), invalid_action_penalty (0, as ALFWorld), privileged, render_mode:
            see `TextEnv`.
    """

    family: ClassVar[str] = "household"
    agent_protocol: ClassVar[AgentProtocol] = ALFRED_PROTOCOL

    def __init__(
        self,
        *,
        rooms: int = 1,
        clutter: int = 10,
        distractors: int = 2,
        max_copies: int = 3,
        task_types: tuple[str, ...] | list[str] | str | None = None,
        pool: str | None = None,
        split: str = "train",
        max_steps: int = 50,
        invalid_action_penalty: float = 0.0,
        privileged: bool = True,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            split=split,
            max_steps=max_steps,
            invalid_action_penalty=invalid_action_penalty,
            privileged=privileged,
            render_mode=render_mode,
        )
        if pool not in (None, "seen", "unseen"):
            raise ValueError(f"pool must be 'seen', 'unseen' or None, got {pool!r}")
        if isinstance(task_types, str):
            task_types = (task_types,)
        self.config = HouseholdConfig(
            rooms=int(rooms),
            clutter=int(clutter),
            distractors=int(distractors),
            max_copies=int(max_copies),
            task_types=tuple(task_types) if task_types else TASK_TYPES,
        )
        self.pool = pool
        self._e: _Episode | None = None
        self._solution: tuple[str, ...] = ()

    # ----------------------------------------------------------------- TextEnv hooks
    def _new_task(self, seed: int, options: dict[str, Any]) -> None:
        pool = options.pop("pool", None) or self.pool or ("seen" if self._task_split == "train" else "unseen")
        if options:
            raise ValueError(f"unknown reset option(s) for Household: {sorted(options)}; known: pool, split, "
                             "task_index")
        house = generate(seed, self.config, pool)
        self._pool_used = pool
        plan = expert_plan(house, house.start) if self.compute_privileged else None
        self._solution = tuple(plan or ())
        self._e = _Episode(house, house.start, None if plan is None else tuple(plan))

    def parse_action(self, text: object) -> Command | None:
        return parse_command(text)

    def _apply(self, action: Command) -> tuple[float, bool, str]:
        e = self._ep
        new, text = e.house.apply(e.state, action)
        plan = e.plan
        if new != e.state:
            # keep the expert's plan when the agent follows it, else re-plan lazily
            plan = plan[1:] if plan and _command(plan[0]) == action else None
        self._e = _Episode(e.house, new, plan)
        if e.house.goal_holds(new):
            return 1.0, True, text
        return 0.0, False, text

    def _observation(self, feedback: str) -> str:
        # ALFWorld's observation is the game's response alone; the first one welcomes and states the task
        return feedback if feedback else self._ep.house.intro(self._ep.state)

    def _board_text(self) -> str:
        e = self._ep
        return e.house.look_around(e.state)

    def task_text(self) -> str:
        return "Your task is to: " + self._ep.house.task.description

    def admissible_actions(self) -> list[str]:
        e = self._ep
        return e.house.admissible(e.state)

    def is_success(self) -> bool:
        e = self._ep
        return e.house.goal_holds(e.state)

    def privileged_info(self) -> dict[str, Any]:
        plan = self._current_plan()
        return {
            "solution": list(self._solution),
            "expert_plan": None if plan is None else list(plan),
            "expert_action": plan[0] if plan else None,
        }

    def expert_action(self) -> str | None:
        e = self._ep
        if e.plan is not None:
            return e.plan[0] if e.plan else None
        return next_command(e.house, e.state)

    def _extra_info(self) -> dict[str, Any]:
        task = self._ep.house.task
        return {"task_type": task.type, "object": task.obj, "receptacle": task.recep, "pool": self._pool_used,
                "rooms": len(self._ep.house.rooms)}

    def invalid_feedback(self, action: object) -> str:
        return NOTHING

    def _get_state(self) -> tuple[_Episode, tuple[str, ...], str]:
        return (self._ep, self._solution, self._pool_used)

    def _set_state(self, state: tuple[_Episode, tuple[str, ...], str]) -> None:
        self._e, self._solution, self._pool_used = state

    # ----------------------------------------------------------------- access for experts, exports, tests
    @property
    def house(self) -> Household:
        return self._ep.house

    @property
    def state(self) -> HouseState:
        return self._ep.state

    def _current_plan(self) -> tuple[str, ...] | None:
        e = self._ep
        if e.plan is None:
            plan = expert_plan(e.house, e.state)
            self._e = _Episode(e.house, e.state, None if plan is None else tuple(plan))
        return self._ep.plan

    @property
    def _ep(self) -> _Episode:
        if self._e is None:
            raise RuntimeError("Call reset() first.")
        return self._e
