"""2048 rules over tile exponents, for one board (plain Python, the readable reference) and vectorized over batches.

Boards are int8 arrays of tile exponents: 0 is an empty cell, k is the tile 2**k. One board has shape (n, n); a
batch has shape (B, n, n) or (B, n*n), cells in row-major order. Actions are indices into
`DIRECTIONS` = ("Up", "Down", "Left", "Right"), the order of `distillgym.envs.core.parsing.DIRECTIONS`.

The batched moves work on "lines": the n rows or columns of a board, each listed from the side the tiles move
toward, so that every direction becomes "slide toward index 0". Two implementations, checked against each other
and against the plain-Python `slide_row` by the tests:

- generic (any size): numpy over all lines at once (`slide_lines`), looping only over the n positions of a line;
- packed 4x4 (in `vectorized.py`, with the batched API): a board is one uint64 (a nibble per cell) and a move is
  four lookups in precomputed tables, one per line (`packed_move`). This is the fast path of Monte-Carlo rollouts
  (`play_batch`) and of the expert; batches of a few boards run the same tables in a plain-Python loop.

The env steps one board with `Moves` (plain Python lists, cached line slides), which is faster than numpy there.

numpy costs a few microseconds per call plus very little per element, and operations along a short last axis
(e.g. `(B, 16).any(axis=1)`) are slow, so the batched code keeps the batch on the long, contiguous axis.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Sequence

import numpy as np

DIRECTIONS: tuple[str, ...] = ("Up", "Down", "Left", "Right")
UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
MIN_SIZE, MAX_SIZE = 3, 6
#: A spawned tile is a 4 (exponent 2) with this probability, else a 2 (exponent 1).
FOUR_PROBABILITY = 0.1
_POW2 = np.array([1 << e if e < 63 else 0 for e in range(128)], dtype=np.int64)


def check_size(size: int) -> int:
    """`size` as an int, or a ValueError when it is not a supported board size."""
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"board size must be an integer in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}")
    return int(size)


# --------------------------------------------------------------------------------------------- line geometry
@functools.cache
def line_cells(size: int) -> np.ndarray:
    """(4, n, n) flat cell indices: [a, j, k] is the k-th cell of line j for action a, counted from the side the
    tiles move toward (so that every move is "slide the line toward index 0")."""
    n = check_size(size)
    j, k = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    cells = np.stack([k * n + j, (n - 1 - k) * n + j, j * n + k, j * n + (n - 1 - k)])
    cells.setflags(write=False)
    return cells


# --------------------------------------------------------------------------------------------- one board
def slide_row(row: Sequence[int]) -> tuple[list[int], int]:
    """Slide one line of exponents toward index 0 and merge; return (new line, merge score).

    Each tile merges at most once, pairs resolved from the front: [1,1,1,1] -> [2,2,0,0], [1,1,1,0] -> [2,1,0,0].
    The score is the sum of the values of the merged tiles (2**(e+1) for a pair of e's).
    """
    tiles = [int(e) for e in row if e]
    out: list[int] = []
    score = 0
    i = 0
    while i < len(tiles):
        if i + 1 < len(tiles) and tiles[i] == tiles[i + 1]:
            out.append(tiles[i] + 1)
            score += 1 << (tiles[i] + 1)
            i += 2
        else:
            out.append(tiles[i])
            i += 1
    return out + [0] * (len(row) - len(out)), score


@functools.cache
def _line_lists(size: int) -> list[list[list[int]]]:
    return line_cells(size).tolist()


def move(board: np.ndarray, action: int) -> tuple[np.ndarray, int]:
    """Apply `action` to one (n, n) board; return (new board, merge score). The input is not modified.

    The new board equals the old one when the move is illegal (nothing slides or merges).
    """
    board = np.asarray(board)
    n = board.shape[0]
    flat = board.reshape(-1).tolist()
    out = [0] * (n * n)
    score = 0
    for line in _line_lists(n)[action]:
        new, s = slide_row([flat[c] for c in line])
        score += s
        for c, e in zip(line, new, strict=True):
            out[c] = e
    return np.array(out, dtype=np.int8).reshape(n, n), score


def legal_moves(board: np.ndarray) -> np.ndarray:
    """(4,) bool: which actions change the (n, n) board.

    A line can move toward its front iff somewhere an empty cell is directly followed by a tile, or two equal
    tiles are neighbours.
    """
    board = np.asarray(board)
    n = board.shape[0]
    flat = board.reshape(-1).tolist()
    legal = []
    for lines in _line_lists(n):
        ok = False
        for line in lines:
            v = [flat[c] for c in line]
            if any((v[k] == 0 and v[k + 1] != 0) or (v[k] != 0 and v[k] == v[k + 1]) for k in range(n - 1)):
                ok = True
                break
        legal.append(ok)
    return np.array(legal)


#: One-hot codes of the ways a line can move, so that the sum of a board's distinct codes says which ways any of its
#: lines moves (`_FRONT` / `_BACK` bits) with no Python loop.
_WAYS = {(False, False): 1, (True, False): 2, (False, True): 4, (True, True): 8}
_FRONT, _BACK = 2 | 8, 4 | 8
_ways_of = operator.itemgetter(4)


@functools.lru_cache(maxsize=1 << 16)
def _slide_both_ways(line: tuple[int, ...]) -> tuple[tuple[int, ...], int, tuple[int, ...], int, int]:
    """(line slid toward its front, score, line slid toward its back (still listed front to back), score, which
    ways it moves as one of four one-hot codes: `_WAYS[(moves toward the front, moves toward the back)]`)."""
    front, front_score = slide_row(line)
    back, back_score = slide_row(line[::-1])
    back.reverse()
    return tuple(front), front_score, tuple(back), back_score, _WAYS[tuple(front) != line, tuple(back) != line]


class Moves:
    """The four moves from one flat row-major board held as a list of exponents: which are legal, and each one's
    result on demand. The env's step path: plain Python, one cached slide per distinct line, no numpy."""

    __slots__ = ("_cols", "_rows", "legal", "size")

    def __init__(self, cells: Sequence[int], size: int) -> None:
        self.size = size
        rows = list(zip(*[iter(cells)] * size, strict=True))
        self._rows = list(map(_slide_both_ways, rows))
        self._cols = list(map(_slide_both_ways, zip(*rows, strict=True)))
        r, c = sum(set(map(_ways_of, self._rows))), sum(set(map(_ways_of, self._cols)))
        # Up, Down: the columns toward their front / back; Left, Right: the rows.
        self.legal = (bool(c & _FRONT), bool(c & _BACK), bool(r & _FRONT), bool(r & _BACK))

    def result(self, action: int) -> tuple[list[int], int] | None:
        """(new cells, merge score) of `action`, or None when it changes nothing. No spawn."""
        if not self.legal[action]:
            return None
        moves = self._cols if action < LEFT else self._rows
        if action in (UP, LEFT):
            new, score = [m[0] for m in moves], sum([m[1] for m in moves])
        else:
            new, score = [m[2] for m in moves], sum([m[3] for m in moves])
        rows = zip(*new, strict=True) if action < LEFT else new
        return list(itertools.chain.from_iterable(rows)), score


def spawn_cells(cells: list[int], rng: np.random.Generator) -> bool:
    """`spawn` for a flat list of exponents, in place (one draw from `rng`); False when the board is full."""
    empty = [i for i, v in enumerate(cells) if v == 0]
    if not empty:
        return False
    u = rng.random() * len(empty)
    k = int(u)
    cells[empty[k]] = 2 if u - k < FOUR_PROBABILITY else 1  # the fraction of u is uniform, independent of k
    return True


def is_game_over(board: np.ndarray) -> bool:
    """True when no move changes the (n, n) board: no empty cell and no two equal neighbours."""
    b = np.asarray(board)
    if not b.all():
        return False
    return not (np.any(b[:, 1:] == b[:, :-1]) or np.any(b[1:, :] == b[:-1, :]))


def empty_board(size: int) -> np.ndarray:
    n = check_size(size)
    return np.zeros((n, n), dtype=np.int8)


def spawn(board: np.ndarray, rng: np.random.Generator) -> bool:
    """Put a 2 (p 0.9) or a 4 (p 0.1) on a uniformly random empty cell of `board`, in place.

    Returns False (and does nothing) when the board is full; otherwise draws one number from `rng`, like
    `spawn_cells` (the env's path), so both place the same tile for the same RNG state.
    """
    flat = board.reshape(-1)
    cells = flat.tolist()
    if not spawn_cells(cells, rng):
        return False
    flat[:] = cells
    return True


_M64, _M53 = (1 << 64) - 1, (1 << 53) - 1
_FOUR_53 = round(FOUR_PROBABILITY * (1 << 53))


def start_cells(size: int, seed: int) -> list[int]:
    """The start position of task `seed` as flat row-major exponents: two tiles spawned as `spawn` does (a
    uniformly random empty cell, a 4 with probability `FOUR_PROBABILITY`, else a 2), with the two uniform numbers
    taken from the SplitMix64 sequence of `seed` instead of a numpy generator. A pure function of (size, seed), and
    about a microsecond: building a `np.random.Generator` costs more than the rest of a reset, so the env builds
    its spawn generator only when the first tile spawns."""
    n2 = size * size
    cells = [0] * n2
    x, first = int(seed) & _M64, -1
    for empty in (n2, n2 - 1):
        x = (x + 0x9E3779B97F4A7C15) & _M64
        z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        t = ((z ^ (z >> 31)) >> 11) * empty  # a 53-bit uniform times `empty`: its integer part picks the cell,
        k, four = t >> 53, (t & _M53) < _FOUR_53  # its fraction the tile (what `spawn_cells` does with a float)
        if k >= first >= 0:
            k += 1  # the k-th empty cell once the first tile is placed
        cells[k] = 2 if four else 1
        first = k
    return cells


def exponent_of(tile: int) -> int:
    """The exponent of a tile value (0 for an empty cell); ValueError unless 0 or a power of two >= 2."""
    tile = int(tile)
    if tile == 0:
        return 0
    if tile < 2 or tile & (tile - 1):
        raise ValueError(f"a tile must be 0 (empty) or a power of two >= 2, got {tile}")
    return tile.bit_length() - 1


def board_from_tiles(tiles: Sequence[Sequence[int]]) -> np.ndarray:
    """An exponent board from a square grid of tile values (0 = empty), e.g. [[2, 0, 0], [4, 0, 0], [0, 0, 2]]."""
    rows = [list(r) for r in tiles]
    n = check_size(len(rows))
    if any(len(r) != n for r in rows):
        raise ValueError(f"a board must be square, got rows of lengths {[len(r) for r in rows]}")
    exps = [[exponent_of(t) for t in r] for r in rows]
    if max(max(r) for r in exps) > 60:
        raise ValueError("tiles above 2**60 are not supported")
    return np.array(exps, dtype=np.int8)


def tiles_of(board: np.ndarray) -> list[list[int]]:
    """Tile values (0 = empty) of an (n, n) exponent board, as lists."""
    return [[0 if e == 0 else 1 << int(e) for e in row] for row in np.asarray(board).tolist()]


def max_tile(board: np.ndarray) -> int:
    """The largest tile value on the board (0 when empty)."""
    e = int(np.max(board))
    return 0 if e == 0 else 1 << e


# --------------------------------------------------------------------------------------------- vectorized lines
def slide_lines(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized `slide_row` over (M, n) lines; returns (new lines (M, n) int8, scores (M,) int64).

    Loops over the n positions only: compact the non-zeros to the front, merge equal neighbours front to back
    (a merged tile's partner becomes 0, so it cannot merge again), compact again. Works line-major internally
    (one contiguous array per position), which numpy handles much faster than short rows.
    """
    cols = np.array(np.asarray(lines, dtype=np.int8).T, order="C")  # (n, M)
    n, m = cols.shape
    cols = _compact(cols)
    score = np.zeros(m, dtype=np.int64)
    for k in range(n - 1):
        a, b = cols[k], cols[k + 1]
        merge = (a != 0) & (a == b)
        if merge.any():
            a += merge  # in place: int8 + bool
            b[merge] = 0
            score += np.where(merge, _POW2[a], 0)
    return np.ascontiguousarray(_compact(cols).T), score


def _compact(cols: np.ndarray) -> np.ndarray:
    """Move the non-zero entries of each line (a column of the (n, M) array) to its front, keeping their order."""
    n, m = cols.shape
    out = np.zeros_like(cols)
    flat = out.reshape(-1)
    slot = np.arange(m)  # flat index of the next free cell of each line: position * m + line
    for k in range(n):
        col = cols[k]
        flat[slot] = col  # a zero written here is overwritten by the next non-zero, if any
        slot += (col != 0) * m
    return out


def _as_flat(boards: np.ndarray) -> np.ndarray:
    boards = np.asarray(boards)
    if boards.dtype != np.int8:
        boards = boards.astype(np.int8)
    if boards.ndim == 3:
        boards = boards.reshape(len(boards), -1)
    if boards.ndim != 2 or round(boards.shape[1] ** 0.5) ** 2 != boards.shape[1]:
        raise ValueError(f"a batch of boards has shape (B, n, n) or (B, n*n), got {boards.shape}")
    return np.ascontiguousarray(boards)


def _size_of(flat: np.ndarray) -> int:
    return round(flat.shape[1] ** 0.5)


def _move_generic(flat: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Any size: gather each board's lines in the order of its action, slide them all, scatter back."""
    b, n2 = flat.shape
    n = _size_of(flat)
    order = line_cells(n).reshape(4, n2)[actions]  # (B, n*n): cells in line order
    lines = np.take_along_axis(flat, order, axis=1).reshape(b * n, n)
    new_lines, score = slide_lines(lines)
    new = np.empty_like(flat)
    np.put_along_axis(new, order, new_lines.reshape(b, n2), axis=1)
    return new, score.reshape(b, n).sum(axis=1)


def _spawn_generic(flat: np.ndarray, rng: np.random.Generator, where: np.ndarray) -> np.ndarray:
    """Spawn on the boards selected by `where` (each must have an empty cell); returns their empties before."""
    b, n2 = flat.shape
    cells = np.ascontiguousarray(flat.T) == 0  # (N, B): empty cells, one contiguous row per cell
    counts = cells.sum(axis=0)
    u = rng.random(b) * counts
    r = u.astype(np.intp)
    four = (u - r) < FOUR_PROBABILITY
    running = np.cumsum(cells, axis=0, dtype=np.int16)  # (N, B)
    pos = (running > r).argmax(axis=0)  # the (r+1)-th empty cell
    idx = np.flatnonzero(where & (counts > 0))
    flat[idx, pos[idx]] = np.where(four[idx], 2, 1).astype(np.int8)
    return counts
