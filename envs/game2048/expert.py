"""The 2048 expert: depth-limited expectimax over batched numpy boards with nneonneo's heuristic.

The tree alternates player moves (max over the legal moves) and chance nodes (a 2 with p 0.9 or a 4 with p 0.1 on
every empty cell, uniformly); `depth` counts the player moves looked ahead, the first included, and the boards after
the last move are scored by the heuristic. Each level of the tree is built as one batch of boards and reduced with
numpy, so a depth-3 decision on 4x4 costs about a millisecond. Many nodes of a deep level are the same board (a
tile spawned at either end of a line slides to the same place; two move orders meet), so such a level is reduced to
its distinct boards, valued once each: the same values, a fraction of the work (on an early 4x4 board at depth 3,
the 9,712 boards before the last move are 2,408 distinct ones; depth 4 runs about 12x faster for it).

The heuristic is nneonneo's (github.com/nneonneo/2048-ai), summed over every row and column: a large constant,
plus weights on empty cells and on adjacent equal tiles (merges), minus monotonicity violations and the sum of
rank**3.5 (penalizing many big tiles). On 4x4 boards rows and columns are scored by table lookup.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from distillgym.envs.game2048 import logic, vectorized

_M64 = np.uint64


@dataclass(frozen=True)
class HeuristicWeights:
    """nneonneo's line heuristic weights (ranks are tile exponents)."""

    base: float = 200000.0  # "lost penalty": every line of a live board is worth this much
    empty: float = 270.0
    merges: float = 700.0
    monotonicity: float = 47.0
    monotonicity_power: float = 4.0
    sum: float = 11.0
    sum_power: float = 3.5


DEFAULT_WEIGHTS = HeuristicWeights()
#: The value of a board with no legal move (every live board scores ~8 * 200000).
DEAD_VALUE = 0.0
#: Levels smaller than this are valued board by board: finding the distinct ones would cost more than it saves.
_MERGE_MIN = 32


def line_heuristic(lines: np.ndarray, w: HeuristicWeights = DEFAULT_WEIGHTS) -> np.ndarray:
    """Heuristic value of each of the (M, n) lines of exponents, (M,) float64. Symmetric under reversal."""
    cols = np.array(np.asarray(lines).T, dtype=np.float64, order="C")  # (n, M)
    n, m = cols.shape
    empty = (cols == 0).sum(axis=0)
    total = (cols**w.sum_power).sum(axis=0)
    # Merges: runs of equal non-zero tiles, zeros skipped; a run of length L counts L (nneonneo's 1 + counter).
    merges = np.zeros(m)
    prev = np.zeros(m)
    counter = np.zeros(m)
    for k in range(n):
        rank = cols[k]
        nz = rank != 0
        same = nz & (rank == prev)
        ends = nz & ~same & (counter > 0)
        merges += np.where(ends, 1 + counter, 0)
        counter = np.where(same, counter + 1, np.where(ends, 0, counter))
        prev = np.where(nz, rank, prev)
    merges += np.where(counter > 0, 1 + counter, 0)
    powered = cols**w.monotonicity_power
    step = powered[:-1] - powered[1:]  # > 0 where the line decreases
    left = np.where(cols[:-1] > cols[1:], step, 0).sum(axis=0)
    right = np.where(cols[:-1] > cols[1:], 0, -step).sum(axis=0)
    return w.base + w.empty * empty + w.merges * merges - w.monotonicity * np.minimum(left, right) - w.sum * total


# ----------------------------------------------------------------------------------------------- board backends
@functools.cache
def lane_heuristic_table(weights: HeuristicWeights = DEFAULT_WEIGHTS) -> np.ndarray:
    """(65536,) line heuristic of every 4-cell lane (nibble k = exponent of cell k)."""
    lanes = np.arange(65536)
    digits = np.stack([(lanes >> (4 * k)) & 15 for k in range(4)], axis=1)
    table = line_heuristic(digits, weights)
    table.setflags(write=False)
    return table


class _Packed4:
    """4x4 boards as packed uint64 (see logic.py): moves and heuristic by table lookup."""

    def __init__(self, weights: HeuristicWeights) -> None:
        self.heuristic_table = lane_heuristic_table(weights)

    def encode(self, board: np.ndarray) -> np.ndarray:
        return vectorized.pack4(np.ascontiguousarray(board, dtype=np.int8).reshape(1, 16))

    def moves(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Afterstates of the four moves, action-major: (4 * M,) boards and (4 * M,) legal flags."""
        new, info = vectorized.packed_all_moves(x)
        return new.reshape(-1), (info >= vectorized.INFO_MOVED).reshape(-1)

    def chance(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every spawn on every board: (children, parent index, probability), 2s then 4s."""
        z = x | (x >> _M64(1))
        z |= z >> _M64(2)
        empty = ~z & _M64(0x1111111111111111)  # bit 4c set where cell c is empty
        parent, cell = np.nonzero(((empty[:, None] >> (4 * np.arange(16, dtype=np.uint64))) & _M64(1)) != 0)
        count = np.bitwise_count(empty)[parent].astype(np.float64)
        one = _M64(1) << (4 * cell).astype(np.uint64)
        children = np.concatenate([x[parent] | one, x[parent] | (one << _M64(1))])
        prob = np.concatenate([0.9 / count, 0.1 / count])
        return children, np.concatenate([parent, parent]), prob

    def heuristic(self, x: np.ndarray) -> np.ndarray:
        h = self.heuristic_table
        return h[vectorized.row_lanes(x)].sum(axis=0) + h[vectorized.column_lanes(x)].sum(axis=0)


class _Generic:
    """Any size: int8 (M, n*n) boards through vectorized.move_batch; heuristic computed line by line."""

    def __init__(self, size: int, weights: HeuristicWeights) -> None:
        self.n = size
        self.weights = weights
        cells = logic.line_cells(size)
        self.lines = np.concatenate([cells[logic.LEFT], cells[logic.UP]]).reshape(-1)  # rows then columns

    def encode(self, board: np.ndarray) -> np.ndarray:
        return np.asarray(board, dtype=np.int8).reshape(1, -1).copy()

    def moves(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = len(x)
        new, _, changed = vectorized.move_batch(np.tile(x, (4, 1)), np.repeat(np.arange(4), m))
        return new, changed

    def chance(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        parent, cell = np.nonzero(x == 0)
        count = (x == 0).sum(axis=1)[parent].astype(np.float64)
        children = np.concatenate([x[parent], x[parent]])
        k = len(parent)
        children[np.arange(2 * k), np.concatenate([cell, cell])] = np.repeat(np.array([1, 2], np.int8), k)
        return children, np.concatenate([parent, parent]), np.concatenate([0.9 / count, 0.1 / count])

    def heuristic(self, x: np.ndarray) -> np.ndarray:
        lines = x[:, self.lines].reshape(-1, self.n)
        return line_heuristic(lines, self.weights).reshape(len(x), -1).sum(axis=1)


# ----------------------------------------------------------------------------------------------- expectimax
class Expectimax:
    """Depth-limited expectimax for one board size.

    Args:
        size: board side (3..6).
        depth: player moves looked ahead (>= 1); 1 is greedy on the heuristic, 2 adds one chance layer and a reply.
        weights: heuristic weights.
        merge_duplicates: value each distinct board of a level once (exactly the same values; off only to check
            that, or to time the tree without it).
    """

    def __init__(self, size: int = 4, depth: int = 2, weights: HeuristicWeights = DEFAULT_WEIGHTS,
                 merge_duplicates: bool = True) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int | np.integer) or depth < 1:
            raise ValueError(f"expert depth must be an integer >= 1, got {depth!r}")
        self.size = logic.check_size(size)
        self.depth = int(depth)
        self.weights = weights
        self.merge_duplicates = bool(merge_duplicates)
        self._packed = _Packed4(weights) if self.size == 4 else None
        self._generic = _Generic(self.size, weights)

    def action_values(self, board: np.ndarray) -> np.ndarray:
        """(4,) expected heuristic value of each move from the (n, n) board; -inf for illegal moves."""
        board = np.asarray(board, dtype=np.int8).reshape(self.size, self.size)
        # A move raises the largest tile by at most one step: use packed boards while no leaf can pass their limit.
        packed = self._packed
        fits = packed is not None and int(board.max()) + self.depth - 1 <= vectorized.PACKED_MAX_EXPONENT
        backend: _Packed4 | _Generic = packed if packed is not None and fits else self._generic
        after, legal = backend.moves(backend.encode(board))
        values = np.full(4, -np.inf)
        if legal.any():
            values[legal] = self._after_value(backend, after[legal], self.depth - 1)
        return values

    def best_action(self, board: np.ndarray) -> int | None:
        """Index (into logic.DIRECTIONS) of the best move, or None when no move is legal."""
        values = self.action_values(board)
        return None if np.isneginf(values).all() else int(np.argmax(values))

    def _distinct(self, x: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(the distinct boards of x, where each board of x is among them), or (x, None) where merging would not pay:
        near the root, where boards hardly repeat (two moves and a spawn in, they do: on 4x4 a fourth of the
        boards before the last move are distinct), or for a handful of boards."""
        if not self.merge_duplicates or depth >= self.depth - 1 or len(x) < _MERGE_MIN:
            return x, None
        if x.ndim == 1:  # packed
            distinct, where = np.unique(x, return_inverse=True)
            return distinct, where
        rows = np.ascontiguousarray(x).view(np.dtype((np.void, x.shape[1])))[:, 0]  # a board's cells as one key
        _, first, where = np.unique(rows, return_index=True, return_inverse=True)
        return x[first], where

    def _after_value(self, backend: _Packed4 | _Generic, x: np.ndarray, depth: int) -> np.ndarray:
        """Value of afterstates (a move was just made) with `depth` more player moves to look ahead."""
        if depth == 0:  # leaves: a lookup each, cheaper than finding the distinct ones
            return backend.heuristic(x)
        x, where = self._distinct(x, depth)
        children, parent, prob = backend.chance(x)
        value = self._move_value(backend, children, depth)
        value = np.bincount(parent, weights=prob * value, minlength=len(x))
        return value if where is None else value[where]

    def _move_value(self, backend: _Packed4 | _Generic, x: np.ndarray, depth: int) -> np.ndarray:
        """Value of boards where the player moves next: the best legal move's value, DEAD_VALUE without one."""
        x, where = self._distinct(x, depth)
        m = len(x)
        after, legal = backend.moves(x)
        value = np.full(4 * m, -np.inf)
        idx = np.flatnonzero(legal)
        if idx.size:
            value[idx] = self._after_value(backend, after[idx], depth - 1)
        best = value.reshape(4, m).max(axis=0)
        best[np.isneginf(best)] = DEAD_VALUE
        return best if where is None else best[where]


@functools.cache
def expert_for(size: int, depth: int) -> Expectimax:
    """A shared Expectimax per (size, depth): it holds no per-game state."""
    return Expectimax(size, depth)


def expert_action(board: np.ndarray, depth: int = 2) -> int | None:
    """The expert's move (an index into logic.DIRECTIONS) on an (n, n) board, None when none is legal."""
    board = np.asarray(board)
    return expert_for(board.shape[0], depth).best_action(board)
