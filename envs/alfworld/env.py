"""ALFWorld-v0: ALFWorld's real games (downloaded data) played through TextWorld's PDDL backend."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym

from distillgym.envs.alfworld.games import (
    EVAL_SETS,
    TASK_TYPES,
    alfworld_names,
    data_root,
    find_games,
    load_game,
    task_type_of,
)
from distillgym.envs.core import TextEnv, is_printable_text
from distillgym.envs.core.protocol import AgentProtocol
from distillgym.envs.household.env import ALFRED_PROTOCOL

NOTHING = "Nothing happens."
#: Commands longer than this are invalid actions (ALFWorld's longest commands are under 60 characters).
MAX_COMMAND_CHARS = 256
EXPERTS: tuple[str, ...] = ("planner", "walkthrough")
# Commands that only observe: they never move the game along a walkthrough.
_OBSERVE = re.compile(r"^(look|inventory|examine .*|help)$")
_SPACES = re.compile(r"\s+")
_TASK_LINE = re.compile(r"^Your task is to.*$", re.MULTILINE)


class TextWorldBackendMissingError(ImportError):
    """TextWorld or its PDDL backend (Fast Downward) is not installed; the message says what to install."""


def _load_backend() -> tuple[Any, Any, Any]:
    """Import TextWorld's PDDL backend lazily (textworld pulls in spacy, jericho...: seconds to import)."""
    try:
        import textworld
        from textworld.envs.pddl import PddlEnv
        from textworld.envs.pddl import pddl as pddl_module
    except ImportError as e:
        raise TextWorldBackendMissingError(
            f"distillgym/ALFWorld-v0 plays ALFWorld's games with TextWorld's PDDL backend, which is not installed "
            f'({e}). Install it with: pip install "distillgym[alfworld]"'
        ) from e
    if getattr(pddl_module, "fast_downward_missing", False):
        raise TextWorldBackendMissingError(
            "distillgym/ALFWorld-v0 needs TextWorld's PDDL backend, which needs the Fast Downward planner: "
            "pip install \"distillgym[alfworld]\" (textworld + fast-downward-textworld, the same as textworld[pddl]; "
            "it compiles Fast Downward, ~2 min)."
        )
    from textworld.envs.pddl import logic as pddl_logic

    return textworld, PddlEnv, pddl_logic


class _TranslationCache:
    """`fast_downward` with `pddl2sas` memoized for one game.

    TextWorld's PddlState translates the game's PDDL to Fast Downward's SAS format twice (plain, and optimized
    for re-planning) every time it is built: once on load and again on every reset, and the translation is
    nearly all of a reset's time (seconds on a real ALFWorld kitchen). The translation depends on the domain
    and problem text only, so it is computed once per game.
    """

    def __init__(self, fast_downward: Any) -> None:
        self._fd = fast_downward
        self._memo: dict[tuple[str, str, bool], Any] = {}

    def pddl2sas(self, domain: str, problem: str, verbose: bool = False, optimize: bool = False) -> Any:
        key = (domain, problem, bool(optimize))
        if key not in self._memo:
            self._memo[key] = self._fd.pddl2sas(domain, problem, verbose=verbose, optimize=optimize)
        return self._memo[key]

    def clear(self) -> None:
        self._memo.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fd, name)


class _Checkpoint:
    """The PDDL backend's live state at one step, for restoring within the same episode without replaying.

    Only valid in the env and episode (`token`) it was taken in: Fast Downward's state registry, which the state
    id points into, is rebuilt at every reset. Treated as immutable: deepcopy returns it as is, and pickling
    drops it (a restored unpickled snapshot replays its commands instead).
    """

    __slots__ = ("facts", "game_state", "last_action", "moves", "operators", "state_id", "token")
    facts: Any
    game_state: Any
    last_action: Any
    moves: Any
    operators: Any
    state_id: Any
    token: Any

    def __init__(self, **kwargs: Any) -> None:
        for k, v in kwargs.items():
            setattr(self, k, v)

    def __deepcopy__(self, memo: dict[int, Any]) -> _Checkpoint:
        return self

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_Checkpoint, ())


@dataclass(frozen=True)
class _ALFWorldState:
    game_file: str
    commands: tuple[str, ...]  # every command the game was sent since reset, in order
    on_walkthrough: int  # walkthrough moves (not looks) followed so far, or -1 once the agent left the walkthrough
    text: str  # the game's last response (the intro after reset)
    won: bool
    admissible: tuple[str, ...]
    plan: tuple[str, ...] | None  # the expert's remaining plan (None: not computed for this state yet)
    plan_source: str | None
    checkpoint: _Checkpoint | None = field(default=None, compare=False)


class ALFWorldEnv(TextEnv[str]):
    """ALFWorld's text games (the real ALFRED scenes and tasks) through TextWorld's PDDL backend, as ALFWorld's
    own `AlfredTWEnv` plays them: ALFWorld's object names ("apple 1"), observations ("You arrive at loc 5. On the
    countertop 1, you see ..."), admissible commands, and `won` as success (reward 1, the episode ends).

    Data: ALFWorld's downloaded games (`pip install alfworld && alfworld-download`), found under `data_path`,
    else $ALFWORLD_DATA, else ~/.cache/alfworld; construction fails with `ALFWorldDataNotFoundError` (a
    FileNotFoundError saying how to get them) when the split has none. Split "train" plays json_2.1.1/train,
    "test" plays `eval_set` (valid_unseen, ALFWorld's out-of-distribution set, by default). The reset seed indexes
    the split's sorted games (modulo their number), after the `task_types` filter.

    Expert: `"planner"` (default) is ALFWorld's planner expert (`AlfredExpertType.PLANNER`): TextWorld's
    `policy_commands`, Fast Downward re-planning from the current state, computed lazily (only when the
    privileged info or `expert_action()` is asked for). Fast Downward is not optional here: TextWorld's PDDL
    backend runs the game itself on it, so wherever a game plays, the planner expert works. When the planner finds
    no plan it falls back to the rest of the game's stored walkthrough (if the file has one and the agent is
    still on it). `"walkthrough"` follows the stored walkthrough while the agent does and re-plans only once it
    leaves it (plans may differ from the planner's). A plan is kept while the agent follows it; the planner runs
    again only when the agent departs from it. Cost: the planner is a blind uniform-cost search, instant on small
    games but seconds to tens of seconds on a real-size kitchen (21 s from the start of a synthetic 35-receptacle,
    70-object one); json_2.1.1's downloaded files carry no walkthrough. With `privileged=False` nothing is
    planned unless `expert_action()` is called.

    Cost of play: a game's PDDL is translated for Fast Downward once per game (TextWorld would redo it at every
    reset): resetting a new game costs 0.1 s on the tiny test game and 3.6 s on the synthetic kitchen, resetting
    the same game again 0.02 s and 0.26 s; a step costs 15-80 ms, mostly TextWorld deriving the admissible
    commands' text.

    Actions: any non-empty printable string up to 256 characters goes to the game (case and runs of spaces
    normalized), which answers "Nothing happens." to anything it does not know; that costs a step, as in
    ALFWorld. Non-strings, empty or over-long text are invalid actions (also answered "Nothing happens.").

    Snapshots store the commands since reset plus a handle on Fast Downward's state: restoring within the same
    episode sets the planner's state back directly (about a millisecond), anything else resets the game and
    replays the commands (a reset plus one step per command).

    Args:
        data_path: ALFWorld's data folder (the one holding json_2.1.1); default $ALFWORLD_DATA or ~/.cache/alfworld.
        eval_set: ALFWorld's evaluation set the test split plays: "valid_unseen" (default) or "valid_seen".
        task_types: keep only these of ALFWorld's six task types (`TASK_TYPES`); default all.
        expert: "planner" or "walkthrough" (see above).
        split, max_steps (ALFWorld's 50), invalid_action_penalty (0, as ALFWorld), privileged, render_mode:
            see `TextEnv`.

    Reset options: `eval_set`, `task_types` (override the constructor's for this episode), `game_file` (play
    this game file, ignoring the split's list and the seed).
    """

    family: ClassVar[str] = "alfworld"
    agent_protocol: ClassVar[AgentProtocol] = ALFRED_PROTOCOL  # the same role line and grammar as Household-v0
    max_action_length: ClassVar[int] = MAX_COMMAND_CHARS

    def __init__(
        self,
        *,
        data_path: str | os.PathLike[str] | None = None,
        eval_set: str = "valid_unseen",
        task_types: tuple[str, ...] | list[str] | str | None = None,
        expert: str = "planner",
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
        if eval_set not in EVAL_SETS:
            raise ValueError(f"eval_set must be one of {EVAL_SETS}, got {eval_set!r}")
        if expert not in EXPERTS:
            raise ValueError(f"expert must be one of {EXPERTS}, got {expert!r}")
        self.data_path = data_root(data_path)
        self.eval_set = eval_set
        self.task_types = _task_types(task_types)
        self.expert = expert
        # the data first (cheap, and the likelier thing to be missing), then the engine
        self._games = find_games(self.data_path, split, eval_set, self.task_types)
        textworld, pddl_env, self._pddl_logic = _load_backend()
        self._translations = _TranslationCache(self._pddl_logic.fast_downward)
        # each PddlEnv loads its own copy of Fast Downward's library (and so its own game state)
        self._tw_env: Any = pddl_env(textworld.EnvInfos(won=True, admissible_commands=True))
        lib = self._tw_env.downward_lib
        self._fast_restore = hasattr(lib, "get_state_id") and hasattr(lib, "set_state_id")
        self._loaded: str | None = None
        self._walkthrough: tuple[str, ...] | None = None
        self._walk_moves: tuple[str, ...] = ()
        self._token: object = object()
        self._s: _ALFWorldState | None = None

    # ----------------------------------------------------------------- TextEnv hooks
    def _new_task(self, seed: int, options: dict[str, Any]) -> None:
        eval_set = options.pop("eval_set", self.eval_set)
        task_types = _task_types(options.pop("task_types", None)) if "task_types" in options else self.task_types
        game_file = options.pop("game_file", None)
        if options:
            raise ValueError(
                f"unknown reset option(s) for ALFWorld: {sorted(options)}; known: eval_set, task_types, "
                "game_file, split, task_index"
            )
        if game_file is None:
            if (eval_set, task_types) == (self.eval_set, self.task_types) and self._task_split == self.split:
                games = self._games
            else:
                games = find_games(self.data_path, self._task_split, eval_set, task_types)
            game_file = games[self._task_index % len(games)]
        self._start(os.fspath(game_file))

    def parse_action(self, text: object) -> str | None:
        if not isinstance(text, str) or len(text) > MAX_COMMAND_CHARS or not is_printable_text(text):
            return None
        command = _SPACES.sub(" ", text.strip()).lower()
        return command or None

    def _apply(self, action: str) -> tuple[float, bool, str]:
        s = self._st
        game_state, _, _ = self._tw.step(action)
        text = game_state.feedback
        plan, source = s.plan, s.plan_source
        on_walk = s.on_walkthrough
        if action in s.admissible and not _OBSERVE.match(action):  # a command that changed the game
            walk = self._walk_moves
            on_walk = on_walk + 1 if 0 <= on_walk < len(walk) and walk[on_walk] == action else -1
            # the expert's plan minus its first command when the agent followed it, else re-plan lazily
            plan = plan[1:] if plan and plan[0] == action else None
            source = source if plan is not None else None
        won = bool(game_state["won"])
        self._s = _ALFWorldState(s.game_file, (*s.commands, action), on_walk, text, won,
                                 tuple(game_state["admissible_commands"]), () if won else plan,
                                 source, None)
        return (1.0, True, text) if won else (0.0, False, text)

    def _observation(self, feedback: str) -> str:
        # ALFWorld's observation is the game's response alone; the first one welcomes and states the task
        return feedback if feedback else self._st.text

    def _board_text(self) -> str:
        return self._st.text

    def task_text(self) -> str:
        return self._task_line

    def admissible_actions(self) -> list[str]:
        return list(self._st.admissible)

    def is_success(self) -> bool:
        return self._st.won

    def privileged_info(self) -> dict[str, Any]:
        plan = self._current_plan()
        return {
            "solution": None if self._walkthrough is None else list(self._walkthrough),
            "expert_plan": None if plan is None else list(plan),
            "expert_action": plan[0] if plan else None,
        }

    def expert_action(self) -> str | None:
        plan = self._current_plan()
        return plan[0] if plan else None

    def _extra_info(self) -> dict[str, Any]:
        s = self._st
        return {"game_file": s.game_file, "task_type": task_type_of(s.game_file), "expert_source": self._source(s)}

    def _source(self, s: _ALFWorldState) -> str | None:
        """Where the expert's plan comes from: known once the plan is made (privileged info is computed when read);
        before, what `_plan_from` will choose without running the planner (the walkthrough when the expert follows
        it and it still applies, else the planner)."""
        if s.plan_source is not None or s.won:
            return s.plan_source
        rest = self._walk_moves[s.on_walkthrough :] if s.on_walkthrough >= 0 else None
        return "walkthrough" if self.expert == "walkthrough" and rest else "planner"

    def invalid_feedback(self, action: object) -> str:
        return NOTHING

    def _get_state(self) -> _ALFWorldState:
        s = self._st
        if self._fast_restore and s.checkpoint is None:
            pddl = self._tw._pddl_state
            cp = _Checkpoint(
                token=self._token,
                state_id=int(self._tw.downward_lib.get_state_id()),
                facts=_copy_facts(pddl),
                game_state=self._tw.state,  # PddlEnv replaces (never mutates) its GameState at each step
                operators=pddl._operators,
                moves=self._tw._moves,
                last_action=self._tw._last_action,
            )
            s = self._s = _ALFWorldState(**{**s.__dict__, "checkpoint": cp})
        return s

    def _set_state(self, state: _ALFWorldState) -> None:
        cp = state.checkpoint
        if (cp is not None and getattr(cp, "token", None) is self._token and self._loaded == state.game_file
                and self._s is not None):
            self._tw.downward_lib.set_state_id(cp.state_id)
            pddl = self._tw._pddl_state
            pddl._facts, pddl._vars_by_name, pddl._vars_by_type, pddl._var_counts = _copy_facts_from(cp.facts)
            pddl._operators = cp.operators
            self._tw.state, self._tw._moves, self._tw._last_action = cp.game_state, cp.moves, cp.last_action
            self._s = state
            return
        # another episode, env or process: reset the game and replay the commands
        self._start(state.game_file)
        for command in state.commands:
            self._tw.step(command)
        if self._tw.state.feedback != state.text:
            raise RuntimeError(
                f"replaying {len(state.commands)} commands on {state.game_file} did not reproduce the snapshot's state"
            )
        self._s = _ALFWorldState(**{**state.__dict__, "checkpoint": None})

    # ----------------------------------------------------------------- the game and the expert
    def _start(self, game_file: str) -> None:
        """Load `game_file` (unless it is the loaded one) and reset it."""
        if game_file != self._loaded:
            data = load_game(game_file)
            self._loaded = None
            self._translations.clear()
            with self._engine_call():
                self._tw.load(data)
            names = alfworld_names([info.id for info in self._tw._entity_infos.values()])
            for info in self._tw._entity_infos.values():  # what ALFWorld's AlfredDemangler wrapper does
                info.name = names[info.id]
            walk = data.get("walkthrough")
            self._walkthrough = tuple(walk) if walk else None
            # the walkthrough's commands that change the game: what following it means (looks may come and go)
            self._walk_moves = tuple(c for c in walk or () if not _OBSERVE.match(c))
            self._loaded = game_file
        with self._engine_call():
            game_state = self._tw.reset()
        self._token = object()
        text = game_state.feedback
        m = _TASK_LINE.search(text)
        self._task_line = m.group(0).strip() if m else ""
        self._s = _ALFWorldState(game_file, (), 0, text, bool(game_state["won"]),
                                 tuple(game_state["admissible_commands"]), None, None)

    @contextmanager
    def _engine_call(self) -> Iterator[None]:
        """Around TextWorld calls that build a PddlState: serve its PDDL translations from this game's cache,
        and put back `sys.argv`, which Fast Downward's translator overwrites."""
        saved_fd, saved_argv = self._pddl_logic.fast_downward, sys.argv
        self._pddl_logic.fast_downward = self._translations
        try:
            yield
        finally:
            self._pddl_logic.fast_downward, sys.argv = saved_fd, saved_argv

    def _current_plan(self) -> tuple[str, ...] | None:
        s = self._st
        if s.plan is None and not s.won:
            plan, source = self._plan_from(s)
            self._s = _ALFWorldState(**{**s.__dict__, "plan": plan, "plan_source": source})
        return self._st.plan

    def _plan_from(self, s: _ALFWorldState) -> tuple[tuple[str, ...] | None, str | None]:
        rest = self._walk_moves[s.on_walkthrough :] if s.on_walkthrough >= 0 else None
        if self.expert == "walkthrough" and rest:
            return rest, "walkthrough"
        plan = self._tw._pddl_state.replan(self._tw._entity_infos)
        if plan:
            return tuple(plan), "planner"
        return (rest, "walkthrough") if rest else (None, None)

    @property
    def game_file(self) -> str:
        """The game file being played."""
        return self._st.game_file

    @property
    def games(self) -> tuple[str, ...]:
        """The sorted game files of the env's split (the reset seed indexes them)."""
        return self._games

    @property
    def _st(self) -> _ALFWorldState:
        if self._s is None:
            raise RuntimeError("Call reset() first.")
        return self._s

    @property
    def _tw(self) -> Any:
        """TextWorld's PddlEnv playing the game (`close` frees its planner state: never call it after)."""
        if self._tw_env is None:
            raise gym.error.ClosedEnvironmentError("This ALFWorld env is closed.")
        return self._tw_env

    def close(self) -> None:
        """Free Fast Downward's search state. Its library copy (33 MB) stays loaded until the process exits, as in
        TextWorld: unloading a C++ library that others may still be loading crashed the process in testing."""
        tw_env, self._tw_env = getattr(self, "_tw_env", None), None
        if tw_env is not None:
            tw_env.downward_lib.cleanup()
        super().close()


def _task_types(task_types: tuple[str, ...] | list[str] | str | None) -> tuple[str, ...]:
    if task_types is None:
        return TASK_TYPES
    chosen = (task_types,) if isinstance(task_types, str) else tuple(task_types)
    unknown = [t for t in chosen if t not in TASK_TYPES]
    if unknown or not chosen:
        raise ValueError(f"task_types must be a non-empty subset of {TASK_TYPES}, got {task_types!r}")
    return chosen


def _copy_facts(pddl_state: Any) -> tuple[Any, ...]:
    """A copy of the Python side of TextWorld's PDDL state (the facts the text grammar reads)."""
    return (
        {k: set(v) for k, v in pddl_state._facts.items()},
        dict(pddl_state._vars_by_name),
        {k: set(v) for k, v in pddl_state._vars_by_type.items()},
        dict(pddl_state._var_counts),
    )


def _copy_facts_from(saved: tuple[Any, ...]) -> tuple[Any, ...]:
    """Fresh containers of the types `textworld.logic.State` uses, filled from `_copy_facts`'s output."""
    from collections import Counter, defaultdict

    facts, by_name, by_type, counts = saved
    return (
        defaultdict(set, {k: set(v) for k, v in facts.items()}),
        dict(by_name),
        defaultdict(set, {k: set(v) for k, v in by_type.items()}),
        Counter(counts),
    )
