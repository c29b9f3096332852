"""Many 2048 boards at once, for Monte-Carlo rollouts and the expert's search: 4x4 boards packed into one uint64
each (move tables indexed by lane), and the batched API over any size (`move_batch`, `legal_moves_batch`,
`game_over_batch`, `spawn_batch`, `play_batch`). One board's rules are in `logic.py`."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from distillgym.envs.game2048.logic import (
    FOUR_PROBABILITY,
    LEFT,
    RIGHT,
    UP,
    _as_flat,
    _move_generic,
    _size_of,
    _spawn_generic,
    slide_lines,
)

# --------------------------------------------------------------------------------------------- packed 4x4 boards
# A 4x4 board fits one uint64: cell c = (row, col) = (c // 4, c % 4) is the nibble at bit 4c, so row j is the
# 16-bit "lane" j. The move tables are indexed by key = action << 18 | j << 16 | lane value, where the lanes of a
# Left/Right move are the rows of the board and those of Up/Down the rows of its transpose (the columns); each
# entry is already placed where that line lies on the board, so a move is four lookups and a sum.
#
# numpy costs ~3 us per call on small arrays here, so the Monte-Carlo step is written as few calls as possible:
# constants are prebuilt 0-d arrays, and every per-line quantity a step needs sums out of one 16-byte record.

#: Packed boards serve tiles up to 2**14, so that a merge never overflows a nibble; others take the generic path.
PACKED_MAX_EXPONENT = 14
# Layout of the "info" word of a move record (each field sums over the four lines without carries):
INFO_EMPTY_SHIFT = 4  # bits 4-19: empty cells of the result (bit 4 + c for cell c), so info & 0xFFFF0 = mask << 4
INFO_SCORE_SHIFT = 24  # bits 24-59: merge score
INFO_MOVED = 1 << 60  # bits 60-62: number of lines that moved
_U64, _I64 = np.uint64, np.int64


def _c(value: float, dtype: type = _I64) -> np.ndarray:
    """A 0-d array constant: the cheapest operand for a numpy call (a Python or numpy scalar costs more)."""
    return np.array(value, dtype=dtype)


_EMPTY_BITS = _c(0xFFFF << INFO_EMPTY_SHIFT)
_SCORE_MASK = _c((1 << (60 - INFO_SCORE_SHIFT)) - 1)
_MOVED = _c(INFO_MOVED)
_SCORE_SHIFT = _c(INFO_SCORE_SHIFT)
_LANE = _c(0xFFFF)
_ACTION_SHIFT = _c(18)
_FOUR = _c(FOUR_PROBABILITY, np.float64)
_NIBBLE4 = np.array(4, dtype=np.uint16)
_CELL_PAIR = np.array(0x0F0F, dtype=np.uint16)
_ROW_SHIFT = np.array([[0], [16], [32], [48]], dtype=np.int64)  # lane j of a board: its row j
_COL_SHIFT = np.array([[0], [4], [8], [12]], dtype=np.int64)
_COL_NIBBLES = _c(0x000F000F000F000F)
# (column nibbles at bits 0, 16, 32, 48) * _COL_GATHER puts them at bits 36, 40, 44, 48 (no two partial products
# overlap, so nothing carries): one multiply turns a column into a lane.
_COL_GATHER = _c(1 + (1 << 12) + (1 << 24) + (1 << 36))
_COL_LANE_SHIFT = _c(36)


@dataclass(frozen=True)
class Packed4Tables:
    """Lookup tables of the packed 4x4 fast path (24 MB, built on first use)."""

    moves: np.ndarray  # (16 * 65536,) V16 records of two uint64: (slid line placed on the board, info word)
    select: np.ndarray  # (65536 * 16,) uint64: (empty mask << 4 | r) -> 1 << 4c for the r-th empty cell c
    lane_key: np.ndarray  # (4, 1) int64: j << 16


@functools.cache
def packed4_tables() -> Packed4Tables:
    """Build the packed 4x4 tables (once per process; about a second on a slow core)."""
    lanes = np.arange(65536, dtype=np.int64)
    digits = np.stack([(lanes >> (4 * k)) & 15 for k in range(4)], axis=1).astype(np.int8)  # (65536, 4)
    front, front_score = slide_lines(digits)
    back, back_score = slide_lines(digits[:, ::-1])
    back = back[:, ::-1]
    moves = np.zeros((4, 4, 65536, 2), dtype=np.uint64)
    for a in range(4):
        new, score = (front, front_score) if a in (UP, LEFT) else (back, back_score)
        moved = (new != digits).any(axis=1).astype(np.uint64)
        new = (new.astype(np.uint64) & _U64(15)).T  # (4, 65536); & 15: a 15+15 merge is never looked up
        empty = (new == 0).astype(np.uint64)
        info0 = (score.astype(np.uint64) << _U64(INFO_SCORE_SHIFT)) | (moved << _U64(60))
        for j in range(4):
            # Cell of position k of lane j: (row j, col k) for Left/Right, (row k, col j) for Up/Down.
            placed, info = np.zeros(65536, dtype=np.uint64), info0.copy()
            for k in range(4):
                cell = 4 * j + k if a in (LEFT, RIGHT) else 4 * k + j
                placed |= new[k] << _U64(4 * cell)
                info |= empty[k] << _U64(INFO_EMPTY_SHIFT + cell)
            moves[a, j, :, 0], moves[a, j, :, 1] = placed, info
    # select[mask << 4 | r] = 1 << 4c, c the r-th set bit of mask (r < popcount(mask)).
    bits = ((lanes[:, None] >> np.arange(16)) & 1).astype(bool)
    rank = np.cumsum(bits, axis=1) - 1
    select = np.zeros((65536, 16), dtype=np.uint64)
    e, c = np.nonzero(bits)
    select[e, rank[e, c]] = _U64(1) << (4 * c).astype(np.uint64)
    tables = Packed4Tables(
        moves=moves.reshape(-1).view("V16"),
        select=select.reshape(-1),
        lane_key=np.array([[0], [1], [2], [3]], dtype=np.int64) << 16,
    )
    for arr in vars(tables).values():
        arr.setflags(write=False)
    return tables


def pack4(flat: np.ndarray) -> np.ndarray:
    """(B, 16) C-contiguous int8 boards (exponents <= 15) -> (B,) uint64 packed boards."""
    pairs = flat.view(np.uint16)  # cells 2m (low byte) and 2m + 1 (high byte)
    return (pairs | (pairs >> _NIBBLE4)).astype(np.uint8).view(np.uint64).reshape(-1)


def unpack4(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(B,) uint64 packed boards -> (B, 16) int8 boards (written into `out`, C-contiguous, when given)."""
    if out is None:
        out = np.empty((len(x), 16), dtype=np.int8)
    pairs = np.ascontiguousarray(x, dtype=np.uint64).view(np.uint8).astype(np.uint16)
    dest = out.view(np.uint16).reshape(-1)
    np.bitwise_or(pairs, pairs << _NIBBLE4, out=dest)
    dest &= _CELL_PAIR
    return out


def row_lanes(x: np.ndarray) -> np.ndarray:
    """(4, B) int64: lane j = row j of each packed board (cell (j, k) at bits 4k)."""
    return (x.view(np.int64) >> _ROW_SHIFT) & _LANE


def column_lanes(x: np.ndarray) -> np.ndarray:
    """(4, B) int64: lane j = column j of each packed board (cell (k, j) at bits 4k)."""
    return ((((x.view(np.int64) >> _COL_SHIFT) & _COL_NIBBLES) * _COL_GATHER) >> _COL_LANE_SHIFT) & _LANE


def transpose4(x: np.ndarray) -> np.ndarray:
    """Transpose packed boards (cell (r, c) <-> (c, r)): column j becomes row j."""
    return (column_lanes(x).view(np.uint64) << _ROW_SHIFT.view(np.uint64)).sum(axis=0, dtype=np.uint64)


def packed_move(x: np.ndarray, actions: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """Move packed boards (one action each, or one for all). Returns (new boards (B,) uint64, info (B,) int64:
    empty-cell mask, merge score and moved-line count, see INFO_*)."""
    t = packed4_tables()
    actions = np.asarray(actions, dtype=np.int64)
    lanes = np.where(actions < LEFT, column_lanes(x), row_lanes(x))  # Up/Down slide the columns
    keys = lanes | (t.lane_key | (actions << _ACTION_SHIFT))
    rec = t.moves[keys].view(np.uint64).reshape(4, -1, 2).sum(axis=0, dtype=np.uint64)
    return rec[:, 0].copy(), rec[:, 1].view(np.int64).copy()


_ALL_KEYS = (np.arange(4, dtype=np.int64)[:, None, None] << 18) | (np.arange(4, dtype=np.int64)[None, :, None] << 16)


def packed_all_moves(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All four moves of packed boards (M,): (new boards (4, M) uint64, info (4, M) int64), in action order."""
    t = packed4_tables()
    cols, rows = column_lanes(x), row_lanes(x)
    keys = np.stack([cols, cols, rows, rows]) | _ALL_KEYS  # (action, lane, M)
    rec = t.moves[keys].view(np.uint64).reshape(4, 4, -1, 2).sum(axis=1, dtype=np.uint64)
    return rec[..., 0], rec[..., 1].view(np.int64)


_NEIGHBOUR_SHIFT = np.array([[4], [16]], dtype=np.uint64)  # right neighbour, neighbour below
_NEIGHBOUR_PAIRS = np.array([[0x0111011101110111], [0x0000111111111111]], dtype=np.uint64)  # pairs on the board
_U1, _U2 = np.array(1, dtype=np.uint64), np.array(2, dtype=np.uint64)


def packed_stuck(x: np.ndarray) -> np.ndarray:
    """(B,) bool for FULL packed boards: no two equal neighbours (so no move is left)."""
    d = x ^ (x >> _NEIGHBOUR_SHIFT)  # (2, B): a nibble is 0 where a cell equals its neighbour
    z = d | (d >> _U1)
    z |= z >> _U2  # the low bit of each nibble: 1 unless the nibble was 0
    return ((z & _NEIGHBOUR_PAIRS) == _NEIGHBOUR_PAIRS).all(axis=0)


def _packable(flat: np.ndarray) -> bool:
    return flat.shape[1] == 16 and len(flat) > 0 and int(flat.max()) <= PACKED_MAX_EXPONENT


# --------------------------------------------------------------------------------------------- batched API
def move_batch(boards: np.ndarray, actions: np.ndarray | int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply one action per board (or the same action to all); boards (B, n, n) or (B, n*n) int8.

    Returns (new boards, same shape as given; merge scores (B,) int64; changed (B,) bool). No tile spawns.
    """
    boards = np.asarray(boards)
    flat = _as_flat(boards)
    actions = np.broadcast_to(np.asarray(actions, dtype=np.int64), (len(flat),))
    if _packable(flat):
        new_x, info = packed_move(pack4(flat), actions)
        score = (info >> _SCORE_SHIFT) & _SCORE_MASK
        return unpack4(new_x).reshape(boards.shape), score, info >= _MOVED
    new, score = _move_generic(flat, actions)
    void = f"V{flat.shape[1]}"
    changed = new.view(void).ravel() != flat.view(void).ravel()
    return new.reshape(boards.shape), score, changed


def legal_moves_batch(boards: np.ndarray) -> np.ndarray:
    """(B, 4) bool: which actions change each board."""
    flat = _as_flat(boards)
    if _packable(flat):
        return (packed_all_moves(pack4(flat))[1] >= _MOVED).T
    return np.stack([move_batch(flat, a)[2] for a in range(4)], axis=1)


def game_over_batch(boards: np.ndarray) -> np.ndarray:
    """(B,) bool: no empty cell and no two equal neighbours (no move changes the board)."""
    flat = _as_flat(boards)
    n = _size_of(flat)
    over = np.asarray(flat.all(axis=1))
    idx = np.flatnonzero(over)
    if idx.size:
        s = flat[idx].reshape(-1, n, n)
        pairs = (s[:, :, 1:] == s[:, :, :-1]).any(axis=(1, 2)) | (s[:, 1:, :] == s[:, :-1, :]).any(axis=(1, 2))
        over[idx] = ~pairs
    return over


def spawn_batch(boards: np.ndarray, rng: np.random.Generator, where: np.ndarray | None = None) -> np.ndarray:
    """Spawn one tile on a uniformly random empty cell of each board (of those selected by `where`), in place.

    boards: a C-contiguous (B, n*n) or (B, n, n) int8 array. Boards without an empty cell are skipped.
    Returns the number of empty cells of each board before the spawn, (B,).
    """
    flat = boards.reshape(len(boards), -1)
    if not flat.flags.c_contiguous or flat.dtype != np.int8:
        raise ValueError("spawn_batch needs a C-contiguous int8 array (it writes in place)")
    where = np.ones(len(flat), dtype=bool) if where is None else np.asarray(where, dtype=bool)
    return _spawn_generic(flat, rng, where)


def play_batch(
    boards: np.ndarray, actions: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One game step for every board, in place: move, then spawn a tile on each board that changed.

    boards: a C-contiguous (B, n*n) int8 array; actions: (B,) ints. Returns (merge scores (B,) int64, changed (B,)
    bool, stuck (B,) bool: no move is left after the step). This is the Monte-Carlo inner loop; on 4x4 boards
    it runs on packed boards, in about 30 numpy calls whatever the batch size.
    """
    if _packable(boards):
        return _play_packed(boards, np.asarray(actions, dtype=np.int64), rng)
    new, score, changed = move_batch(boards, actions)
    np.copyto(boards, new)
    counts = _spawn_generic(boards, rng, changed)
    stuck = np.zeros(len(boards), dtype=bool)
    idx = np.flatnonzero(changed & (counts == 1))  # only a board whose last empty cell was just filled
    if idx.size:
        stuck[idx] = game_over_batch(boards[idx])
    return score, changed, stuck


def _play_packed(
    boards: np.ndarray, actions: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`play_packed` on (B, 16) int8 boards, in place: pack, step, unpack."""
    x = pack4(boards)
    out = play_packed(x, actions, rng)
    unpack4(x, out=boards)
    return out


@functools.cache
def _python_tables() -> tuple[memoryview, memoryview, memoryview]:
    """Views of the packed tables whose items index straight to Python ints (no copy)."""
    t = packed4_tables()
    rec = t.moves.view(np.uint64).reshape(-1, 2)
    # numpy arrays are buffers; its stubs do not say so
    return memoryview(rec[:, 0]), memoryview(rec[:, 1]), memoryview(t.select)  # type: ignore[arg-type]


def _stuck_int(x: int) -> bool:
    """`packed_stuck` of one full packed board held as a Python int."""
    d = x ^ (x >> 4)
    z = d | (d >> 1)
    z |= z >> 2
    if ~z & 0x0111011101110111:
        return False
    d = x ^ (x >> 16)
    z = d | (d >> 1)
    z |= z >> 2
    return not ~z & 0x0000111111111111


# --------------------------------------------------------------------------------------------- packed batches
# Monte-Carlo rollouts on 4x4 boards keep their batch packed between steps (`Game2048Simulator`): `play_packed`
# is `play_batch` without the pack and unpack of every step.

#: `_KEY_BASE[j, a]` = a << 18 | j << 16: the move-table key of lane j of action a, less the lane's value.
_KEY_BASE = (np.arange(4, dtype=np.int64)[None, :] << 18) | (np.arange(4, dtype=np.int64)[:, None] << 16)
# Column lanes on uint64 words: (column nibbles at bits 0, 16, 32, 48) * _COL_GATHER_HIGH puts them at bits 48,
# 52, 56, 60 with no carry (the other partial products fall on distinct nibbles below bit 48 or beyond bit 63),
# so a logical shift right by 48 leaves the lane alone: one call fewer than `column_lanes`.
_COL_SHIFT_U = _COL_SHIFT.astype(np.uint64)
_COL_NIBBLES_U = _c(0x000F000F000F000F, _U64)
_COL_GATHER_HIGH = _c((1 + (1 << 12) + (1 << 24) + (1 << 36)) << 12, _U64)
_SHIFT48 = _c(48, _U64)
#: Packed batches up to this size step in a plain-Python loop (numpy's fixed cost per call dominates below it).
PACKED_PYTHON_MAX_BATCH = 24


def packable(boards: np.ndarray) -> bool:
    """True when a batch of (B, n, n) or (B, n*n) boards can be held packed: 4x4, tiles up to 2**14."""
    return _packable(_as_flat(boards))


def play_packed(
    x: np.ndarray, actions: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`play_batch` on packed 4x4 boards (B,) uint64, in place; tiles must be at most 2**PACKED_MAX_EXPONENT.

    Returns (merge scores (B,) int64, changed (B,) bool, stuck (B,) bool). A merge may make a 2**15 tile (nibble
    15), which the next move could overflow: the caller checks for it (a merge score >= 2**15 comes first).
    """
    actions = np.asarray(actions)
    if len(x) <= PACKED_PYTHON_MAX_BATCH:
        return _play_packed_ints(x, actions, rng)
    return _play_packed_numpy(x, actions, rng)


def _play_packed_numpy(
    x: np.ndarray, actions: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`play_packed` in numpy calls over the whole batch (large batches)."""
    t = packed4_tables()
    cols = (((x >> _COL_SHIFT_U) & _COL_NIBBLES_U) * _COL_GATHER_HIGH) >> _SHIFT48  # (4, B) lanes
    keys = np.where(actions < LEFT, cols.view(np.int64), (x.view(np.int64) >> _ROW_SHIFT) & _LANE)
    keys |= np.take(_KEY_BASE, actions, axis=1)
    rec = t.moves.take(keys).view(np.uint64).reshape(4, -1, 2).sum(axis=0, dtype=np.uint64)
    info = rec[:, 1].view(np.int64)
    changed = info >= _MOVED
    mask = info & _EMPTY_BITS  # = empty-cell mask << 4, the select index of r = 0
    mask *= changed  # no spawn on a board that did not change
    count = np.bitwise_count(mask)
    u = rng.random(len(x))
    u *= count
    r = u.astype(np.int64)
    u -= r
    four = u < _FOUR  # the fraction of u * count is uniform on [0, 1) and independent of r
    mask |= r
    tile = t.select.take(mask)
    tile <<= four  # 1 << 4c, or 2 << 4c for a 4
    np.bitwise_or(rec[:, 0], tile, out=x)
    stuck = count == 1  # the last empty cell was just filled (count is 0 on unchanged boards)
    idx = np.flatnonzero(stuck)
    if idx.size:
        stuck[idx] = packed_stuck(x[idx])
    return (info >> _SCORE_SHIFT) & _SCORE_MASK, changed, stuck


def _play_packed_ints(
    x: np.ndarray, actions: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`play_packed` one board at a time in Python (small batches); the same draws and results."""
    result, info_of, select = _python_tables()
    n = len(x)
    xs = x.tolist()
    us = rng.random(n).tolist()
    scores, changed, stuck = [0] * n, [False] * n, [False] * n
    cols, gather, moved, empty, score_mask = 0x000F000F000F000F, 0x1001001001, INFO_MOVED, 0xFFFF0, (1 << 36) - 1
    for i, a in enumerate(actions.tolist()):
        b = xs[i]
        if a < LEFT:  # Up/Down slide the columns: gather each into a lane (see _COL_GATHER)
            l0 = (((b & cols) * gather) >> 36) & 0xFFFF
            l1 = ((((b >> 4) & cols) * gather) >> 36) & 0xFFFF
            l2 = ((((b >> 8) & cols) * gather) >> 36) & 0xFFFF
            l3 = ((((b >> 12) & cols) * gather) >> 36) & 0xFFFF
        else:
            l0, l1, l2, l3 = b & 0xFFFF, (b >> 16) & 0xFFFF, (b >> 32) & 0xFFFF, b >> 48
        k = a << 18
        k0, k1, k2, k3 = k | l0, k | 0x10000 | l1, k | 0x20000 | l2, k | 0x30000 | l3
        info = info_of[k0] + info_of[k1] + info_of[k2] + info_of[k3]
        if info < moved:
            continue
        mask = info & empty
        count = mask.bit_count()
        u = us[i] * count
        r = int(u)
        tile = select[mask | r]
        b = result[k0] | result[k1] | result[k2] | result[k3] | (tile << 1 if u - r < FOUR_PROBABILITY else tile)
        xs[i] = b
        scores[i] = (info >> INFO_SCORE_SHIFT) & score_mask
        changed[i] = True
        stuck[i] = count == 1 and _stuck_int(b)
    x[:] = xs
    return np.array(scores, dtype=np.int64), np.array(changed, dtype=bool), np.array(stuck, dtype=bool)
