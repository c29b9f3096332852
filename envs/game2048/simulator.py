"""The 2048 batch simulator: Monte-Carlo rollouts of many games at once (`distillgym.envs.core.mc.BatchSimulator`)."""

from __future__ import annotations

import numpy as np

from distillgym.envs.core.mc import Batch
from distillgym.envs.game2048 import logic, vectorized


class Game2048Simulator:
    """2048 dynamics over a batch of boards held as {"board": (B, n*n) int8 exponents}, or on 4x4 boards whose
    tiles fit (`vectorized.PACKED_MAX_EXPONENT`) as {"packed": (B,) uint64} (`vectorized.pack4`), which stays packed
    between steps: Monte-Carlo rollouts then never unpack. A packed batch that makes a tile above the packed
    range turns into a "board" batch in place (same dict, its key replaced). `boards` reads either one.

    A move that changes a board scores its merges and spawns a tile (with the rollout's `rng`); one that changes
    nothing scores `illegal_move_penalty` and spawns nothing, as in the env. A board is terminated when no move
    is left, or when it holds the target tile and `end_on_target` is set.
    """

    action_names: tuple[str, ...] = logic.DIRECTIONS

    def __init__(
        self,
        board: np.ndarray,
        *,
        illegal_move_penalty: float = -1.0,
        target_tile: int = 2048,
        end_on_target: bool = True,
        terminal: bool = False,
        packed: bool = True,
    ) -> None:
        """`board`: the current (n, n) board; `terminal`: the env's episode has ended (no action is worth a Q);
        `packed`: hold 4x4 batches packed when the board allows it (False: always the generic "board" batch)."""
        self.board = np.array(board, dtype=np.int8).reshape(-1)
        self.size = logic.check_size(round(self.board.size**0.5))
        self.illegal_move_penalty = float(illegal_move_penalty)
        self.target_exponent = logic.exponent_of(target_tile)
        self._target_value = np.array(1 << self.target_exponent, dtype=np.int64)
        self.end_on_target = bool(end_on_target)
        self.terminal = bool(terminal)
        self.packed = bool(packed) and vectorized.packable(self.board[None])
        # A packed batch checks the boards whose merges score at least this much: for the target tile, and for a
        # tile beyond the packed range (2**15 and up, which the next move could overflow).
        overflow = 1 << (vectorized.PACKED_MAX_EXPONENT + 1)
        threshold = min(1 << self.target_exponent, overflow) if self.end_on_target else overflow
        self._packed_check = np.array(threshold, dtype=np.int64)

    def replicate(self, n: int) -> Batch:
        """n copies of the current board: {"packed": (n,) uint64} when it can be held packed, else {"board": ...}."""
        if self.packed:
            return {"packed": np.full(int(n), vectorized.pack4(self.board[None])[0], dtype=np.uint64)}
        return {"board": np.tile(self.board, (int(n), 1))}

    @staticmethod
    def boards(batch: Batch) -> np.ndarray:
        """The (B, n*n) int8 exponent boards of a batch, whichever way it is held (a copy when packed)."""
        return vectorized.unpack4(batch["packed"]) if "packed" in batch else batch["board"]

    def root_actions(self) -> list[int]:
        """The legal moves of the current board (none once the episode has ended)."""
        if self.terminal:
            return []
        legal = vectorized.legal_moves_batch(self.board[None])[0]
        return [int(a) for a in np.flatnonzero(legal)]

    def step(self, batch: Batch, actions: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Move every board in place (one action each) and spawn on the changed ones; (rewards, terminated)."""
        if "packed" in batch:
            return self._step_packed(batch, actions, rng)
        boards = batch["board"]
        score, changed, terminated = vectorized.play_batch(boards, actions, rng)
        rewards = np.where(changed, score, self.illegal_move_penalty)
        if self.end_on_target:
            # Making the target tile scores at least its value: check only those boards.
            idx = np.flatnonzero(score >= self._target_value)
            if idx.size:
                terminated[idx] |= (boards[idx] >= self.target_exponent).any(axis=1)
        return rewards, terminated

    def _step_packed(
        self, batch: Batch, actions: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        x = batch["packed"]
        score, changed, terminated = vectorized.play_packed(x, actions, rng)
        rewards = np.where(changed, score, self.illegal_move_penalty)
        idx = np.flatnonzero(score >= self._packed_check)  # rare: a merge made a big tile
        if idx.size:
            big = vectorized.unpack4(x[idx])
            if self.end_on_target:
                terminated[idx] |= (big >= self.target_exponent).any(axis=1)
            if big.max() > vectorized.PACKED_MAX_EXPONENT:  # leave the packed range: hold the batch as boards
                batch["board"] = vectorized.unpack4(x)
                del batch["packed"]
        return rewards, terminated
