"""2048 as a text environment: the game rules (`logic`), an expectimax expert, a batched Monte-Carlo simulator."""

from distillgym.envs.game2048 import logic
from distillgym.envs.game2048.env import Game2048Env
from distillgym.envs.game2048.expert import Expectimax, HeuristicWeights, expert_action
from distillgym.envs.game2048.simulator import Game2048Simulator

__all__ = ["Expectimax", "Game2048Env", "Game2048Simulator", "HeuristicWeights", "expert_action", "logic"]
