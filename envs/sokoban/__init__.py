"""Sokoban: seeded rooms by reverse play, an A* expert with deadlock pruning, text renderings, batched dynamics."""

from distillgym.envs.sokoban.env import SokobanEnv
from distillgym.envs.sokoban.generator import GeneratorConfig, generate_room
from distillgym.envs.sokoban.room import ACTIONS, SYMBOLS, Layout, Room, State, apply_move, parse_room, render
from distillgym.envs.sokoban.sim import SokobanBatchSimulator, SokobanRewards
from distillgym.envs.sokoban.solver import SolveResult, expert_plan, is_dead, solve

__all__ = [
    "ACTIONS",
    "SYMBOLS",
    "GeneratorConfig",
    "Layout",
    "Room",
    "SokobanBatchSimulator",
    "SokobanEnv",
    "SokobanRewards",
    "SolveResult",
    "State",
    "apply_move",
    "expert_plan",
    "generate_room",
    "is_dead",
    "parse_room",
    "render",
    "solve",
]
