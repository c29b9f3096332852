"""Sokoban dynamics over a batch of states, for vectorized Monte-Carlo rollouts (see core.mc)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from distillgym.envs.core.mc import Batch
from distillgym.envs.sokoban.room import ACTIONS, Layout, State, apply_move


@dataclass
class SokobanRewards:
    """gym-sokoban's reward scheme (the default)."""

    step: float = -0.1
    box_on_target: float = 1.0
    box_off_target: float = -1.0
    solved: float = 10.0


class SokobanBatchSimulator:
    """Every rollout's player cell and box occupancy grid advance together with a few array operations."""

    action_names = ACTIONS

    def __init__(self, layout: Layout, state: State, rewards: SokobanRewards) -> None:
        self.layout = layout
        self.state = state
        self.rewards = rewards
        self.walls = layout.wall_array
        self.targets = np.zeros(layout.height * layout.width, dtype=bool)
        self.targets[list(layout.targets)] = True
        self.deltas = np.asarray(layout.deltas, dtype=np.int64)

    def replicate(self, n: int) -> Batch:
        boxes = np.zeros((n, self.walls.size), dtype=bool)
        boxes[:, list(self.state.boxes)] = True
        off = sum(b not in self.layout.targets for b in self.state.boxes)
        return {
            "player": np.full(n, self.state.player, dtype=np.int64),
            "boxes": boxes,
            "off_target": np.full(n, off, dtype=np.int64),
        }

    def root_actions(self) -> list[int]:
        return [a for a in range(4) if apply_move(self.layout, self.state, a)[1] != -2]

    def step(self, batch: Batch, actions: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        player, boxes = batch["player"], batch["boxes"]
        rows = np.arange(player.size)
        d = self.deltas[actions]
        nxt = player + d
        beyond = np.clip(nxt + d, 0, self.walls.size - 1)  # only read where nxt holds a box (never a border cell)
        box_next = boxes[rows, nxt]
        move = ~self.walls[nxt] & ~(box_next & (self.walls[beyond] | boxes[rows, beyond]))
        push = move & box_next
        pr = rows[push]
        src, dst = nxt[push], beyond[push]
        boxes[pr, src] = False
        boxes[pr, dst] = True
        on = self.targets[dst] & ~self.targets[src]
        off = ~self.targets[dst] & self.targets[src]
        batch["off_target"][pr] += off.astype(np.int64) - on.astype(np.int64)
        batch["player"] = np.where(move, nxt, player)
        rewards = np.full(player.size, self.rewards.step)
        rewards[pr] += on * self.rewards.box_on_target + off * self.rewards.box_off_target
        solved = batch["off_target"] == 0
        rewards[solved] += self.rewards.solved
        return rewards, solved
