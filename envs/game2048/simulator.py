"""The 2048 batch simulator: Monte-Carlo rollouts of many games at once (`distillgym.envs.core.mc.BatchSimulator`)."""

from __future__ import annotations

import numpy as np

from distillgym.envs.core.mc import Batch
from distillgym.envs.game2048 import logic


class Game2048Simulator:
    """2048 dynamics over a batch of boards held as {"board": (B, n*n) int8 exponents}.

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
    ) -> None:
        """`board`: the current (n, n) board; `terminal`: the env's episode has ended (no action is worth a Q)."""
        self.board = np.array(board, dtype=np.int8).reshape(-1)
        self.size = logic.check_size(round(self.board.size**0.5))
        self.illegal_move_penalty = float(illegal_move_penalty)
        self.target_exponent = logic.exponent_of(target_tile)
        self._target_value = np.array(1 << self.target_exponent, dtype=np.int64)
        self.end_on_target = bool(end_on_target)
        self.terminal = bool(terminal)

    def replicate(self, n: int) -> Batch:
        """n copies of the current board."""
        return {"board": np.tile(self.board, (int(n), 1))}

    def root_actions(self) -> list[int]:
        """The legal moves of the current board (none once the episode has ended)."""
        if self.terminal:
            return []
        legal = logic.legal_moves_batch(self.board[None])[0]
        return [int(a) for a in np.flatnonzero(legal)]

    def step(self, batch: Batch, actions: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Move every board in place (one action each) and spawn on the changed ones; (rewards, terminated)."""
        boards = batch["board"]
        score, changed, terminated = logic.play_batch(boards, actions, rng)
        rewards = np.where(changed, score, self.illegal_move_penalty)
        if self.end_on_target:
            # Making the target tile scores at least its value: check only those boards.
            idx = np.flatnonzero(score >= self._target_value)
            if idx.size:
                terminated[idx] |= (boards[idx] >= self.target_exponent).any(axis=1)
        return rewards, terminated
