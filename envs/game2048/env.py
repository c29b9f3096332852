"""The 2048 text environment: slide the tiles with Up/Down/Left/Right until you make the target tile."""

from __future__ import annotations

import copy
import functools
import itertools
from typing import Any, ClassVar

import numpy as np

from distillgym.envs.core.parsing import DIRECTIONS, describe_action, parse_direction
from distillgym.envs.core.protocol import AgentProtocol, directional
from distillgym.envs.core.text_env import TextEnv
from distillgym.envs.game2048 import logic
from distillgym.envs.game2048.expert import Expectimax
from distillgym.envs.game2048.simulator import Game2048Simulator

_OPTIONS = ("board",)
_TILES = [0] + [1 << e for e in range(1, 64)]  # tile value of an exponent
_WIDTHS = [max(4, len(str(t))) for t in _TILES]  # the board's column width when this is its largest exponent


#: The names of the legal moves, by the legal flags of the four moves.
_LEGAL_NAMES = {
    flags: tuple(name for name, ok in zip(DIRECTIONS, flags, strict=True) if ok)
    for flags in itertools.product((False, True), repeat=len(DIRECTIONS))
}


@functools.cache
def _cell_texts(width: int) -> list[str]:
    """How each exponent is written in a column of `width`."""
    return [".".rjust(width)] + [str(t).rjust(width) for t in _TILES[1:]]


@functools.lru_cache(maxsize=8192)
def _start_moves(cells: tuple[int, ...], size: int) -> logic.Moves:
    """The moves of a start board. There are few start boards (two tiles: 960 on 4x4, 5,040 on 6x6), so each one's
    moves are worked out once; a `Moves` is never changed once made."""
    return logic.Moves(cells, size)


@functools.cache
def _row_slices(n: int) -> list[slice]:
    return [slice(i, i + n) for i in range(0, n * n, n)]


@functools.cache
def _board_format(n: int) -> str:
    """The n x n board and its score line as one %-format."""
    return "\n".join([" ".join(["%s"] * n)] * n) + "\nScore: %d"


class Game2048Env(TextEnv[int]):
    """2048 on an n x n board (n = 3..6) as a text game.

    The task seed fixes the start board (`logic.start_cells`) and the spawn RNG (`np.random.default_rng(seed)`,
    built when the first tile spawns), so an episode is determined by the seed and the actions; `snapshot()`
    includes the RNG state. Rewards: the merge score of a move; `illegal_move_penalty` for a
    move that changes nothing (no spawn, the board stays as it is); `invalid_action_penalty` for a reply that
    names no move. The episode terminates when no move is left, or when the target tile is made and
    `end_on_target` is set. reset(options={"board": [[2, 0, ...], ...]}) starts from a given grid of tile values.

    Args:
        size: board side, 3..6.
        target_tile: the goal tile, a power of two >= 8 that fits the board (at most 2**(size*size + 1)).
        expert_depth: player moves the expectimax expert looks ahead (`privileged_info`, `expert_action`). 3 by
            default: on 4x4 it makes the 2048 tile in ~92% of games at ~2-3 ms a move, depth 2 in ~72% at ~1 ms
            (eval/bench/game2048.py).
        illegal_move_penalty: reward of a move that changes nothing (ProAct: -1).
        invalid_action_penalty: reward of an unparseable reply (ProAct: -10).
        end_on_target: terminate (with success) as soon as the target tile is made.
        max_steps, privileged, split, render_mode: see `TextEnv`.
    """

    family: ClassVar[str] = "2048"
    agent_protocol: ClassVar[AgentProtocol] = directional("You are an expert 2048 player.")

    def __init__(
        self,
        *,
        size: int = 4,
        target_tile: int = 2048,
        expert_depth: int = 3,
        illegal_move_penalty: float = -1.0,
        invalid_action_penalty: float = -10.0,
        end_on_target: bool = True,
        max_steps: int = 5000,
        privileged: bool = True,
        split: str = "train",
        render_mode: str | None = None,
    ) -> None:
        size = logic.check_size(size)
        if (
            isinstance(target_tile, bool)
            or not isinstance(target_tile, int | np.integer)
            or target_tile < 8
            or target_tile & (target_tile - 1)
        ):
            raise ValueError(f"target_tile must be a power of two >= 8, got {target_tile!r}")
        if int(target_tile) > 1 << (size * size + 1):
            raise ValueError(
                f"target_tile {target_tile} cannot be made on a {size}x{size} board "
                f"(the largest possible tile is {1 << (size * size + 1)})"
            )
        super().__init__(
            split=split,
            max_steps=max_steps,
            invalid_action_penalty=invalid_action_penalty,
            privileged=privileged,
            render_mode=render_mode,
        )
        self.size = size
        self.target_tile = int(target_tile)
        self.target_exponent = logic.exponent_of(self.target_tile)
        self.expert = Expectimax(size, expert_depth)
        self.expert_depth = self.expert.depth
        self.illegal_move_penalty = float(illegal_move_penalty)
        self.end_on_target = bool(end_on_target)
        self._cells: list[int] = [0] * (size * size)  # the board: row-major tile exponents
        self._top = 0  # the largest exponent on the board
        self._score = 0
        self._rng: np.random.Generator | None = None  # the spawn RNG; None: the task's own, not built yet
        self._task_text = self._make_task_text()
        self._moves_cache: logic.Moves | None = None  # the moves of the current board, once asked for
        self._expert_cache: tuple[bytes, int | None] | None = None

    # ----------------------------------------------------------------- TextEnv hooks
    def _new_task(self, seed: int, options: dict[str, Any]) -> None:
        self._rng = None
        self._score = 0
        if not options:
            cells = logic.start_cells(self.size, seed)
            self._set_cells(cells)
            self._moves_cache = _start_moves(tuple(cells), self.size)
            return
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; 2048 takes {_OPTIONS}")
        board = logic.board_from_tiles(options["board"])
        if board.shape != (self.size, self.size):
            raise ValueError(f"options['board'] must be {self.size}x{self.size}, got {board.shape}")
        self._set_cells(board.reshape(-1).tolist())

    def parse_action(self, text: object) -> int | None:
        name = parse_direction(text)
        return None if name is None else DIRECTIONS.index(name)

    def _apply(self, action: int) -> tuple[float, bool, str]:
        name = DIRECTIONS[action]
        result = self._moves().result(action)
        if result is None:
            feedback = f"Moving {name} changed nothing: no tile can slide or merge that way."
            stuck = not any(self._moves().legal)  # only possible on a start board given in options
            return self.illegal_move_penalty, stuck, feedback + (" No move is left: game over." if stuck else "")
        had_target = self._top >= self.target_exponent
        cells, score = result
        logic.spawn_cells(cells, self._spawn_rng())
        self._set_cells(cells)
        self._score += score
        notes = [f"Moved {name}: +{score} points." if score else f"Moved {name}."]
        reached = self.is_success() and not had_target
        if reached:
            notes.append(f"You made the {self.target_tile} tile!")
        over = not any(self._moves().legal)
        if over:
            notes.append("No move is left: game over.")
        return float(score), over or (reached and self.end_on_target), " ".join(notes)

    def _board_text(self) -> str:
        texts = _cell_texts(_WIDTHS[self._top])
        return _board_format(self.size) % (*map(texts.__getitem__, self._cells), self._score)

    def task_text(self) -> str:
        return self._task_text

    def _make_task_text(self) -> str:
        n = self.size
        return (
            f"Play 2048 on a {n}x{n} board. A move slides every tile as far as it goes Up, Down, Left or Right; "
            "two equal tiles that collide merge into one tile of their sum (a tile merges at most once per move), "
            "and each merged tile's value is added to your score. After every move that changes the board, a "
            "new tile appears on a random empty cell: a 2 (90%) or a 4 (10%). A move that changes nothing is "
            f"wasted (reward {self.illegal_move_penalty:g}). The game ends when no move can change the board. "
            f"Goal: make a {self.target_tile} tile. The board lists its rows from top to bottom, '.' for an empty "
            "cell. Reply with one move: Up, Down, Left or Right."
        )

    def admissible_actions(self) -> list[str]:
        return list(_LEGAL_NAMES[self._moves().legal])

    def is_success(self) -> bool:
        return self._top >= self.target_exponent

    def privileged_info(self) -> dict[str, Any]:
        return {"expert_action": self.expert_action(), "expert_depth": self.expert_depth}

    def expert_action(self) -> str | None:
        return self._expert_move(bytes(self._cells))

    def _expert_move(self, key: bytes) -> str | None:
        """The expectimax move on the board whose cells are `key` (the last board's answer cached)."""
        if self._expert_cache is None or self._expert_cache[0] != key:
            board = np.frombuffer(key, dtype=np.uint8).astype(np.int8).reshape(self.size, self.size)
            self._expert_cache = (key, self.expert.best_action(board))
        action = self._expert_cache[1]
        return None if action is None else DIRECTIONS[action]

    def _privileged_state(self) -> bytes:
        return bytes(self._cells)  # the expert's move depends on the board alone

    def _privileged_info_at(self, state: bytes) -> dict[str, Any]:
        return {"expert_action": self._expert_move(state), "expert_depth": self.expert_depth}

    def _get_state(self) -> Any:
        rng_state = None if self._rng is None else copy.deepcopy(self._rng.bit_generator.state)
        return (tuple(self._cells), self._score, rng_state)  # None: the task's spawn RNG, nothing drawn yet

    def _set_state(self, state: Any) -> None:
        cells, score, rng_state = state
        self._set_cells(list(cells))
        self._score = int(score)
        self._rng = None
        if rng_state is not None:
            self._rng = np.random.default_rng()
            self._rng.bit_generator.state = rng_state

    def _spawn_rng(self) -> np.random.Generator:
        """The RNG the next tile spawns from: the task's own (`default_rng(task seed)`) unless resampled."""
        if self._rng is None:
            self._rng = np.random.default_rng(self._task_seed)
        return self._rng

    def resample_chance(self, seed: int) -> None:
        """The next spawns come from `seed` (a search's fresh chance; the task's own stream is left behind)."""
        self._rng = np.random.default_rng(seed)

    def _extra_info(self) -> dict[str, Any]:
        tiles = list(map(_TILES.__getitem__, self._cells))
        board = list(map(tiles.__getitem__, _row_slices(self.size)))
        return {"score": self._score, "max_tile": _TILES[self._top], "board": board}

    def invalid_feedback(self, action: object) -> str:
        legal = ", ".join(self.admissible_actions()) or "none"
        return (
            f"Invalid action {describe_action(action)}. Reply with exactly one move: Up, Down, Left or Right "
            f"(legal now: {legal})."
        )

    # ----------------------------------------------------------------- 2048 extras
    @property
    def board(self) -> np.ndarray:
        """The current (n, n) board of tile exponents (a new array)."""
        return np.array(self._cells, dtype=np.int8).reshape(self.size, self.size)

    @property
    def score(self) -> int:
        return self._score

    def batch_simulator(self) -> Game2048Simulator:
        """Batched dynamics from the current state, for `distillgym.envs.core.mc.mc_q_values`."""
        terminal = not any(self._moves().legal) or (self.end_on_target and self.is_success())
        return Game2048Simulator(
            self.board,
            illegal_move_penalty=self.illegal_move_penalty,
            target_tile=self.target_tile,
            end_on_target=self.end_on_target,
            terminal=terminal,
        )

    def _set_cells(self, cells: list[int]) -> None:
        self._cells = cells
        self._top = max(cells)
        self._moves_cache = None

    def _moves(self) -> logic.Moves:
        """The four moves from the current board, worked out once per board."""
        if self._moves_cache is None:
            self._moves_cache = logic.Moves(self._cells, self.size)
        return self._moves_cache
