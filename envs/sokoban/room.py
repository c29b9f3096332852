"""Sokoban rooms: a static layout (walls, targets) plus a dynamic state (player, boxes), and their text renderings.

Cells are flat indices `r * width + c`. Moves are ("Up", "Down", "Left", "Right") = indices 0..3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

ACTIONS: tuple[str, ...] = ("Up", "Down", "Left", "Right")

#: Text renderings. "ragen" is RAGEN/verl-agent's, "xsb" the classic Sokoban file format.
SYMBOLS: dict[str, dict[str, str]] = {
    "ragen": {"wall": "#", "floor": "_", "target": "O", "box": "X", "box_on_target": "√",
              "player": "P", "player_on_target": "S"},
    "xsb": {"wall": "#", "floor": " ", "target": ".", "box": "$", "box_on_target": "*",
            "player": "@", "player_on_target": "+"},
}

LEGEND: dict[str, str] = {
    "wall": "wall",
    "floor": "empty floor",
    "target": "target (goal square)",
    "box": "box",
    "box_on_target": "box on a target",
    "player": "you (the player)",
    "player_on_target": "you, standing on a target",
}


@dataclass(frozen=True)
class Layout:
    """The static part of a room: size, walls and targets."""

    height: int
    width: int
    walls: bytes  # one byte per cell, 1 = wall; bytes so the layout is hashable and cheap to copy
    targets: frozenset[int]

    @cached_property
    def wall_array(self) -> np.ndarray:
        return np.frombuffer(self.walls, dtype=np.uint8).astype(bool)

    @cached_property
    def deltas(self) -> tuple[int, int, int, int]:
        """Flat-index offset of each action."""
        return (-self.width, self.width, -1, 1)

    def is_wall(self, cell: int) -> bool:
        return self.walls[cell] == 1

    @cached_property
    def floor_cells(self) -> tuple[int, ...]:
        return tuple(i for i, w in enumerate(self.walls) if not w)


@dataclass(frozen=True)
class State:
    """The dynamic part of a room: the player's cell and the (sorted) box cells."""

    player: int
    boxes: tuple[int, ...]

    def solved(self, layout: Layout) -> bool:
        return all(b in layout.targets for b in self.boxes)


@dataclass(frozen=True)
class Room:
    layout: Layout
    start: State
    reverse_moves: int = 0  # how many reverse-play moves generated it
    meta: dict[str, int] = field(default_factory=dict, compare=False)


@lru_cache(maxsize=1024)
def _background(layout: Layout, symbols: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The static text of a room (walls, floor, targets, a newline after each row but the last), one entry per
    character, and where each cell's character is in it."""
    sym = SYMBOLS[symbols]
    w = layout.width
    chars: list[str] = []
    where = []
    for i in range(layout.height * w):
        if i and i % w == 0:
            chars.append("\n")
        where.append(len(chars))
        chars.append(sym["wall"] if layout.walls[i] else sym["target"] if i in layout.targets else sym["floor"])
    return tuple(chars), tuple(where)


def render(layout: Layout, state: State, symbols: str = "ragen") -> str:
    """The room as text, one row per line."""
    sym = SYMBOLS[symbols]
    background, where = _background(layout, symbols)
    chars = list(background)
    targets = layout.targets
    for b in state.boxes:
        chars[where[b]] = sym["box_on_target"] if b in targets else sym["box"]
    p = state.player
    chars[where[p]] = sym["player_on_target"] if p in targets else sym["player"]
    return "".join(chars)


def parse_room(text: str, symbols: str = "xsb") -> tuple[Layout, State]:
    """Parse a rendered room (the inverse of `render`); handy for hand-written test rooms."""
    inverse = {v: k for k, v in SYMBOLS[symbols].items()}
    lines = text.strip("\n").split("\n")
    height, width = len(lines), max(len(line) for line in lines)
    walls = bytearray(height * width)
    targets, boxes, player = set(), [], -1
    for r, line in enumerate(lines):
        for c in range(width):
            ch = line[c] if c < len(line) else SYMBOLS[symbols]["wall"]
            i = r * width + c
            kind = inverse.get(ch)
            if kind is None:
                raise ValueError(f"unknown symbol {ch!r} at row {r}, column {c}")
            if kind == "wall":
                walls[i] = 1
            if kind in ("target", "box_on_target", "player_on_target"):
                targets.add(i)
            if kind in ("box", "box_on_target"):
                boxes.append(i)
            if kind in ("player", "player_on_target"):
                player = i
    if player < 0:
        raise ValueError("room has no player")
    if len(boxes) != len(targets) or not boxes:
        raise ValueError(f"room needs as many boxes as targets (>0), got {len(boxes)} and {len(targets)}")
    return Layout(height, width, bytes(walls), frozenset(targets)), State(player, tuple(sorted(boxes)))


def apply_move(layout: Layout, state: State, action: int) -> tuple[State, int]:
    """One move; returns (new state, box event): 0 no push/no-op, +1 box pushed onto a target, -1 off a target,
    2 box pushed target->target or floor->floor. A blocked move returns the same state and event -2."""
    d = layout.deltas[action]
    nxt = state.player + d
    if layout.walls[nxt]:
        return state, -2
    if nxt in state.boxes:
        beyond = nxt + d
        if layout.walls[beyond] or beyond in state.boxes:
            return state, -2
        boxes = tuple(sorted(beyond if b == nxt else b for b in state.boxes))
        on_before, on_after = nxt in layout.targets, beyond in layout.targets
        event = 1 if on_after and not on_before else -1 if on_before and not on_after else 2
        return State(nxt, boxes), event
    return State(nxt, state.boxes), 0
