"""2048 rules over tile exponents, for one board (plain Python, the readable reference) and vectorized over batches.

Boards are int8 arrays of tile exponents: 0 is an empty cell, k is the tile 2**k. One board has shape (n, n); a
batch has shape (B, n, n) or (B, n*n), cells in row-major order. Actions are indices into
`DIRECTIONS` = ("Up", "Down", "Left", "Right"), the order of `distillgym.envs.core.parsing.DIRECTIONS`.

The batched move works on "lines": the n rows or columns of a board, each listed from the side the tiles move
toward, so every direction becomes "slide left". Two implementations, checked against each other and against the
plain-Python `slide_row` by the tests:

- `slide_lines`: numpy over all lines at once, looping only over the n positions of a line (any size);
- lookup tables (sizes 3 and 4): the result, score and "moved" flag of every possible line, built once with
  `slide_lines`. A line's table index is sum_k e_k * base**k, which one float32 matrix product gives for the four
  directions of a whole batch at once. This is the fast path that Monte-Carlo rollouts use.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DIRECTIONS: tuple[str, ...] = ("Up", "Down", "Left", "Right")
UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
MIN_SIZE, MAX_SIZE = 3, 6
#: A spawned tile is a 4 (exponent 2) with this probability, else a 2 (exponent 1).
FOUR_PROBABILITY = 0.1
#: Sizes served by lookup tables; their base covers every exponent a real game can reach (2**(n*n+1)).
TABLE_SIZES = (3, 4)
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


@functools.cache
def _inverse_cells(size: int) -> np.ndarray:
    """(4, n*n): [a, c] is the position of cell c in the flattened line order of action a."""
    cells = line_cells(size).reshape(4, -1)
    inv = np.argsort(cells, axis=1)
    inv.setflags(write=False)
    return inv


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


def move(board: np.ndarray, action: int) -> tuple[np.ndarray, int]:
    """Apply `action` to one (n, n) board; return (new board, merge score). The input is not modified.

    The new board equals the old one when the move is illegal (nothing slides or merges).
    """
    board = np.asarray(board)
    n = board.shape[0]
    flat = board.reshape(-1).tolist()
    out = [0] * (n * n)
    score = 0
    for line in line_cells(n)[action].tolist():
        new, s = slide_row([flat[c] for c in line])
        score += s
        for c, e in zip(line, new, strict=True):
            out[c] = e
    return np.array(out, dtype=np.int8).reshape(n, n), score


def legal_moves(board: np.ndarray) -> np.ndarray:
    """(4,) bool: which actions change the (n, n) board."""
    board = np.asarray(board)
    return np.array([not np.array_equal(move(board, a)[0], board) for a in range(4)])


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

    Returns False (and does nothing) when the board is full. Draws exactly two numbers from `rng` otherwise.
    """
    flat = board.reshape(-1)
    empty = np.flatnonzero(flat == 0)
    if empty.size == 0:
        return False
    cell = empty[int(rng.integers(empty.size))]
    flat[cell] = 2 if rng.random() < FOUR_PROBABILITY else 1
    return True


def new_board(size: int, rng: np.random.Generator) -> np.ndarray:
    """The start position: an empty board with two spawned tiles."""
    board = empty_board(size)
    spawn(board, rng)
    spawn(board, rng)
    return board


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
    if max(max(r) for r in exps) > 100:
        raise ValueError("tile exponent too large (over 2**100)")
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
    (a merged tile's partner becomes 0, so it cannot merge again), compact again.
    """
    lines = np.asarray(lines, dtype=np.int8)
    m, n = lines.shape
    packed = _compact(lines)
    score = np.zeros(m, dtype=np.int64)
    for k in range(n - 1):
        a, b = packed[:, k], packed[:, k + 1]
        merge = (a != 0) & (a == b)
        if merge.any():
            a += merge  # in place: int8 + bool
            b[merge] = 0
            score += np.where(merge, _POW2[a], 0)
    return _compact(packed), score


def _compact(lines: np.ndarray) -> np.ndarray:
    """Move the non-zero entries of each (M, n) line to its front, keeping their order."""
    m, n = lines.shape
    out = np.zeros_like(lines)
    rows = np.arange(m)
    count = np.zeros(m, dtype=np.intp)
    for k in range(n):
        col = lines[:, k]
        out[rows, count] = col  # a zero written here is overwritten by the next non-zero, if any
        count += col != 0
    return out


# --------------------------------------------------------------------------------------------- lookup tables
@dataclass(frozen=True)
class LineTables:
    """Every possible line of an n-board and its slide result, indexed by code = sum_k e_k * base**k.

    Rows [0, base**n) are for lines read from the side moved toward (Up, Left); rows [base**n, 2 base**n) hold the
    same results reversed, for Down and Right, whose lines are read from the far side so that the packed result
    always lists the line's cells from top/left to bottom/right.
    """

    size: int
    base: int
    weights: np.ndarray  # (n*n, 4n) float32: boards @ weights = the codes of all 4n lines, per action
    offsets: np.ndarray  # (4n,) intp: table row offset per code column (0 for Up/Left, base**n for Down/Right)
    result: np.ndarray  # (2 base**n,) int32: the new line's n exponents packed in the bytes of one int32
    score: np.ndarray  # (2 base**n,) int32
    moved: np.ndarray  # (2 base**n,) bool: the slide changes the line


@functools.cache
def line_tables(size: int) -> LineTables:
    """The lookup tables of a board size in TABLE_SIZES (built on first use: ~0.1 s for 4x4)."""
    n = check_size(size)
    if n not in TABLE_SIZES:
        raise ValueError(f"line tables exist for sizes {TABLE_SIZES}, not {n}")
    base = n * n + 2  # exponents 0 .. n*n+1
    count = base**n
    codes = np.arange(count)
    lines = np.stack([(codes // base**k) % base for k in range(n)], axis=1).astype(np.int8)
    new, score = slide_lines(lines)
    moved = (new != lines).any(axis=1)
    packed = np.zeros((2, count, 4), dtype=np.int8)
    packed[0, :, :n] = new
    packed[1, :, :n] = new[:, ::-1]
    weights = np.zeros((n * n, 4 * n), dtype=np.float32)
    cells = line_cells(n)
    for a in range(4):
        for j in range(n):
            for k in range(n):
                # Every action reads its lines from the side moved toward, so one slide table serves all four;
                # the reversed half puts Down/Right results back in top-to-bottom / left-to-right order.
                weights[cells[a, j, k], a * n + j] = float(base**k)
    offsets = np.repeat(np.array([0, count, 0, count], dtype=np.intp), n)
    tables = LineTables(
        size=n,
        base=base,
        weights=weights,
        offsets=offsets,
        result=packed.reshape(2 * count, 4).view(np.int32).reshape(-1).copy(),
        score=np.concatenate([score, score]).astype(np.int32),
        moved=np.concatenate([moved, moved]),
    )
    for arr in (tables.weights, tables.offsets, tables.result, tables.score, tables.moved):
        arr.setflags(write=False)
    return tables


def _table_ok(flat: np.ndarray) -> LineTables | None:
    """The tables for this batch, or None when its size has none or a tile is beyond their range."""
    n2 = flat.shape[1]
    n = round(n2**0.5)
    if n not in TABLE_SIZES or flat.size == 0:
        return None
    tables = line_tables(n)
    return tables if int(flat.max()) < tables.base else None


def line_codes(flat: np.ndarray, tables: LineTables) -> np.ndarray:
    """(B, 4, n) table rows of every line of every (B, n*n) board, per action (offsets included)."""
    codes = (flat.astype(np.float32) @ tables.weights).astype(np.intp)
    codes += tables.offsets
    return codes.reshape(len(flat), 4, tables.size)


# --------------------------------------------------------------------------------------------- batched moves
def _as_flat(boards: np.ndarray) -> np.ndarray:
    boards = np.asarray(boards)
    if boards.dtype != np.int8:
        boards = boards.astype(np.int8)
    if boards.ndim == 3:
        return boards.reshape(len(boards), -1)
    if boards.ndim != 2:
        raise ValueError(f"a batch of boards has shape (B, n, n) or (B, n*n), got {boards.shape}")
    return boards


def move_batch(boards: np.ndarray, actions: np.ndarray | int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply one action per board (or the same action to all); boards (B, n, n) or (B, n*n) int8.

    Returns (new boards, same shape as given; merge scores (B,) int64; changed (B,) bool). No tile spawns.
    """
    boards = np.asarray(boards)
    flat = _as_flat(boards)
    b = len(flat)
    actions = np.broadcast_to(np.asarray(actions, dtype=np.intp), (b,))
    tables = _table_ok(flat)
    if tables is not None:
        new, score = _move_tables(flat, actions, tables)
    else:
        new, score = _move_generic(flat, actions)
    changed = (new != flat).any(axis=1)
    return new.reshape(boards.shape), score, changed


def _move_tables(flat: np.ndarray, actions: np.ndarray, t: LineTables) -> tuple[np.ndarray, np.ndarray]:
    b, n = len(flat), t.size
    codes = line_codes(flat, t)[np.arange(b), actions]  # (B, n)
    lines = t.result[codes].view(np.int8).reshape(b, n, 4)[:, :, :n]  # rows (Left/Right) or columns (Up/Down)
    vertical = (actions < LEFT)[:, None, None]
    new = np.where(vertical, lines.transpose(0, 2, 1), lines).reshape(b, n * n)
    return new, t.score[codes].sum(axis=1, dtype=np.int64)


def _move_generic(flat: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    b, n2 = flat.shape
    n = round(n2**0.5)
    order = line_cells(n).reshape(4, n2)[actions]  # (B, n*n): cells in line order
    lines = np.take_along_axis(flat, order, axis=1).reshape(b * n, n)
    new_lines, score = slide_lines(lines)
    new = np.take_along_axis(new_lines.reshape(b, n2), _inverse_cells(n)[actions], axis=1)
    return new, score.reshape(b, n).sum(axis=1)


def legal_moves_batch(boards: np.ndarray) -> np.ndarray:
    """(B, 4) bool: which actions change each board."""
    flat = _as_flat(boards)
    tables = _table_ok(flat)
    if tables is not None:
        return tables.moved[line_codes(flat, tables)].any(axis=2)
    return np.stack([move_batch(flat, a)[2] for a in range(4)], axis=1)


def game_over_batch(boards: np.ndarray) -> np.ndarray:
    """(B,) bool: no empty cell and no two equal neighbours (no move changes the board)."""
    flat = _as_flat(boards)
    b = len(flat)
    n = round(flat.shape[1] ** 0.5)
    sq = flat.reshape(b, n, n)
    full = flat.all(axis=1)
    over = full.copy()
    idx = np.flatnonzero(full)
    if idx.size:
        s = sq[idx]
        pairs = (s[:, :, 1:] == s[:, :, :-1]).any(axis=(1, 2)) | (s[:, 1:, :] == s[:, :-1, :]).any(axis=(1, 2))
        over[idx] = ~pairs
    return over


def spawn_batch(boards: np.ndarray, rng: np.random.Generator, where: np.ndarray | None = None) -> np.ndarray:
    """Spawn one tile on a uniformly random empty cell of each board (of those selected by `where`), in place.

    boards: (B, n*n) int8 (a (B, n, n) array works too, as a view). Boards without an empty cell are skipped.
    Returns the number of empty cells left on each board after the spawn, (B,) (0 for a full board).
    """
    flat = boards.reshape(len(boards), -1)
    empty = flat == 0
    counts = empty.sum(axis=1, dtype=np.intp)
    active = counts > 0 if where is None else where & (counts > 0)
    idx = np.flatnonzero(active)
    if idx.size == 0:
        return counts
    cnt = counts[idx]
    # The r-th empty cell (r uniform in [0, cnt)): the first position where the running count of empties exceeds r.
    r = (rng.random(idx.size) * cnt).astype(np.intp)
    running = np.cumsum(empty[idx], axis=1, dtype=np.int8)
    pos = (running > r[:, None].astype(np.int8)).argmax(axis=1)
    value = np.where(rng.random(idx.size) < FOUR_PROBABILITY, 2, 1).astype(np.int8)
    flat[idx, pos] = value
    counts[idx] -= 1
    return counts
