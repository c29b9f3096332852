"""Sokoban as a multi-turn text environment: seeded rooms, an A* expert, privileged plans, MC-ready."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar

from distillgym.envs.core import TextEnv, describe_action, parse_direction
from distillgym.envs.core.protocol import AgentProtocol, directional
from distillgym.envs.sokoban.generator import GeneratorConfig, generate_room
from distillgym.envs.sokoban.room import ACTIONS, LEGEND, SYMBOLS, Room, State, apply_move, render
from distillgym.envs.sokoban.sim import SokobanBatchSimulator, SokobanRewards
from distillgym.envs.sokoban.solver import expert_plan, is_dead

_EVENT_TEXT = {
    -2: "You bumped into something: nothing moved.",
    1: "You pushed a box onto a target.",
    -1: "You pushed a box off a target.",
}


@dataclass(frozen=True)
class _SokobanState:
    room: Room
    state: State
    solution: tuple[int, ...]
    plan: tuple[int, ...] | None  # the expert's remaining plan from `state` (None: none found)


class SokobanEnv(TextEnv[int]):
    """Push every box onto a target. Rooms are generated from the task seed by reverse play and are always
    solvable within the step limit by the built-in A* expert, whose plan is the privileged information.

    Args:
        dim: room (height, width), each in 6..10 for the registered presets (5..16 accepted).
        num_boxes: 1..4 for the presets (up to 6 accepted).
        symbols: "ragen" (`# _ O X √ P S`, RAGEN/verl-agent) or "xsb" (`# space . $ * @ +`, the classic format).
        reward_step, reward_box_on_target, reward_box_off_target, reward_solved: gym-sokoban's scheme by default.
        expert_budget: A* expansions allowed when re-planning from a state off the expert's path.
        generator: extra `GeneratorConfig` fields (reverse_rounds, reverse_walks, pull_probability...);
            `max_plan_length` defaults to `max_steps`, so that every room is solvable within the step limit.
        split, max_steps, invalid_action_penalty, privileged, render_mode: see `TextEnv`.
    """

    family: ClassVar[str] = "sokoban"
    agent_protocol: ClassVar[AgentProtocol] = directional("You are an expert Sokoban player.")

    def __init__(
        self,
        *,
        dim: tuple[int, int] | list[int] = (6, 6),
        num_boxes: int = 1,
        symbols: str = "ragen",
        reward_step: float = -0.1,
        reward_box_on_target: float = 1.0,
        reward_box_off_target: float = -1.0,
        reward_solved: float = 10.0,
        expert_budget: int = 2000,
        generator: dict[str, Any] | None = None,
        split: str = "train",
        max_steps: int = 120,
        invalid_action_penalty: float = -1.0,
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
        if symbols not in SYMBOLS:
            raise ValueError(f"symbols must be one of {sorted(SYMBOLS)}, got {symbols!r}")
        if len(tuple(dim)) != 2:
            raise ValueError(f"dim must be (height, width), got {dim!r}")
        extra = dict(generator or {})
        unknown = set(extra) - set(GeneratorConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown generator option(s) {sorted(unknown)}; see GeneratorConfig")
        extra.setdefault("max_plan_length", self.max_steps)  # only rooms the expert solves within the limit
        self.generator_config = GeneratorConfig(
            height=int(dim[0]), width=int(dim[1]), num_boxes=int(num_boxes), **extra
        )
        self.symbols = symbols
        self.rewards = SokobanRewards(reward_step, reward_box_on_target, reward_box_off_target, reward_solved)
        self.expert_budget = int(expert_budget)
        self._s: _SokobanState | None = None
        self._plan_cache: OrderedDict[State, tuple[int, ...] | None] = OrderedDict()
        self._dead_cache: dict[tuple[int, ...], bool] = {}  # `is_dead` by box cells (the player plays no part)
        self._task_text: str | None = None  # the same for every task of this env: built once

    # ----------------------------------------------------------------- TextEnv hooks
    def _new_task(self, seed: int, options: dict[str, Any]) -> None:
        if options:
            raise ValueError(f"unknown reset option(s) for Sokoban: {sorted(options)}")
        room, plan = generate_room(seed, self.generator_config)
        self._clear_caches()
        self._s = _SokobanState(room, room.start, tuple(plan), tuple(plan))

    def parse_action(self, text: object) -> int | None:
        name = parse_direction(text)
        return None if name is None else ACTIONS.index(name)

    def _apply(self, action: int) -> tuple[float, bool, str]:
        s = self._st
        new_state, event = apply_move(s.room.layout, s.state, action)
        reward = self.rewards.step
        if event == 1:
            reward += self.rewards.box_on_target
        elif event == -1:
            reward += self.rewards.box_off_target
        # keep the expert's remaining plan when the agent follows it, else re-plan when the plan is next asked for
        plan: tuple[int, ...] | None
        if new_state == s.state:
            plan = s.plan
        elif s.plan and s.plan[0] == action:
            plan = s.plan[1:]
        else:
            plan = None
        self._s = _SokobanState(s.room, new_state, s.solution, plan)
        solved = new_state.solved(s.room.layout)
        if solved:
            reward += self.rewards.solved
            return reward, True, "All boxes are on targets: puzzle solved!"
        return reward, False, _EVENT_TEXT.get(event, "")

    def _board_text(self) -> str:
        return render(self._st.room.layout, self._st.state, self.symbols)

    def task_text(self) -> str:
        if self._task_text is None:
            self._task_text = self._describe_task()
        return self._task_text

    def _describe_task(self) -> str:
        sym = SYMBOLS[self.symbols]
        legend = ", ".join(f"{sym[k]!r} = {LEGEND[k]}" for k in SYMBOLS[self.symbols])
        n = self.generator_config.num_boxes
        return (
            "You are playing Sokoban. Push every box onto a target. You can push a box one square by walking "
            "into it, if the square beyond it is free; you cannot pull boxes, push two at once, or walk through "
            f"walls. The room has {n} box{'es' if n > 1 else ''}. Symbols: {legend}. "
            f"You have {self.max_steps} moves. Reply with exactly one move: Up, Down, Left or Right."
        )

    def admissible_actions(self) -> list[str]:
        s = self._st
        return [ACTIONS[a] for a in range(4) if apply_move(s.room.layout, s.state, a)[1] != -2]

    def is_success(self) -> bool:
        s = self._st
        return s.state.solved(s.room.layout)

    def privileged_info(self) -> dict[str, Any]:
        return self._privileged_info_at(self._st)

    def _privileged_state(self) -> _SokobanState:
        return self._st  # immutable: the room, the state, its plan if known

    def _privileged_info_at(self, s: _SokobanState) -> dict[str, Any]:
        if s is self._s:
            plan = self._current_plan()
        elif s.plan is not None or s.state.solved(s.room.layout):
            plan = s.plan
        elif s.room == self._st.room:
            plan = self._replan(s.state)
        else:  # another task's state (the env has been reset since): plan it without this room's cache
            result = expert_plan(s.room.layout, s.state, max_expansions=self.expert_budget)
            plan = None if result.plan is None else tuple(result.plan)
        return {
            "solution": [ACTIONS[a] for a in s.solution],
            "expert_plan": None if plan is None else [ACTIONS[a] for a in plan],
            "expert_action": ACTIONS[plan[0]] if plan else None,
        }

    def expert_action(self) -> str | None:
        plan = self._current_plan()
        return ACTIONS[plan[0]] if plan else None

    def _extra_info(self) -> dict[str, Any]:
        s = self._st
        layout = s.room.layout
        return {
            "num_boxes": len(s.state.boxes),
            "boxes_on_target": sum(b in layout.targets for b in s.state.boxes),
            "deadlock": self._is_dead(),
            "solution_length": len(s.solution),
        }

    def invalid_feedback(self, action: object) -> str:
        return f"Invalid action {describe_action(action)}. Reply with exactly one move: Up, Down, Left or Right."

    def _get_state(self) -> _SokobanState:
        return self._st

    def _set_state(self, state: _SokobanState) -> None:
        if self._s is None or self._s.room != state.room:
            self._clear_caches()  # cached plans and deadlocks belong to the room they were made in
        self._s = state

    # ----------------------------------------------------------------- expert and Monte-Carlo
    @property
    def room(self) -> Room:
        return self._st.room

    @property
    def state(self) -> State:
        return self._st.state

    def batch_simulator(self) -> SokobanBatchSimulator:
        """The dynamics of this room over a batch of copies of the current state (for `mc_q_values`)."""
        return SokobanBatchSimulator(self._st.room.layout, self._st.state, self.rewards)

    def _current_plan(self) -> tuple[int, ...] | None:
        s = self._st
        if s.plan is None and not s.state.solved(s.room.layout):
            self._s = _SokobanState(s.room, s.state, s.solution, self._replan(s.state))
        return self._st.plan

    def _clear_caches(self) -> None:
        self._plan_cache.clear()
        self._dead_cache.clear()

    def _is_dead(self) -> bool:
        s = self._st
        boxes = s.state.boxes
        dead = self._dead_cache.get(boxes)
        if dead is None:
            if len(self._dead_cache) >= 4096:
                self._dead_cache.clear()
            dead = self._dead_cache[boxes] = is_dead(s.room.layout, s.state)
        return dead

    def _replan(self, state: State) -> tuple[int, ...] | None:
        if state in self._plan_cache:
            self._plan_cache.move_to_end(state)
            return self._plan_cache[state]
        result = expert_plan(self._st.room.layout, state, max_expansions=self.expert_budget)
        plan = None if result.plan is None else tuple(result.plan)
        self._plan_cache[state] = plan
        if len(self._plan_cache) > 4096:
            self._plan_cache.popitem(last=False)
        return plan

    @property
    def _st(self) -> _SokobanState:
        if self._s is None:
            raise RuntimeError("Call reset() first.")
        return self._s
