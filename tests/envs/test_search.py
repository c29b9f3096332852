"""MCTS over the real environments (envs.core.search): it finds winning moves, leaves the env as it was, and says
clearly what it cannot search."""

from __future__ import annotations

import gymnasium as gym
import pytest

import distillgym  # noqa: F401
from distillgym.envs.core.search import mcts
from distillgym.envs.game2048.env import Game2048Env
from distillgym.envs.sokoban.env import SokobanEnv
from tests.conftest import ONE_PUSH, sokoban_at


def test_mcts_finds_the_one_push_sokoban_win() -> None:
    env = sokoban_at(ONE_PUSH)
    before = env.last_observation
    result = mcts(env, simulations=40, seed=0)
    assert result.best_action == "Right"
    win = result.root.children["Right"]
    assert win.terminal and win.success and "solved" in win.feedback
    assert result.q_values()["Right"] == max(result.q_values().values())
    assert env.last_observation == before and env.steps == 0  # the search put the env back
    assert env.step("Right")[2]  # and the env itself still wins with it


def test_mcts_finds_the_1024_merge_in_2048() -> None:
    env = Game2048Env(privileged=False)
    board = [[1024, 1024, 2, 4], [2, 4, 8, 16], [4, 8, 16, 32], [0, 16, 32, 64]]
    env.reset(seed=0, options={"board": board})
    result = mcts(env, simulations=60, horizon=20, seed=0)
    assert result.best_action in ("Left", "Right")  # the two moves that merge the pair (and win)
    best = result.root.children[result.best_action]
    assert best.success and best.terminal and best.reward == 2048.0
    assert set(result.q_values()) == set(env.admissible_actions())
    assert env.board.tolist()[0][:2] == [10, 10]  # untouched: exponents of the two 1024s


def test_principal_variation_solves_a_generated_two_box_room() -> None:
    env = gym.make("distillgym/Sokoban-6x6-2-v0")
    env.reset(seed=3)
    plan = env.unwrapped.privileged_info()["expert_plan"]
    result = mcts(env, simulations=300, seed=0)
    pv = result.principal_variation()
    assert len(pv) <= len(plan) + 2
    for action in pv:
        _, _, terminated, _, info = env.step(action)
    assert terminated and info["success"]
    assert result.env_steps > 0 and result.rollout_steps > 0


def test_expert_rollouts_rank_the_experts_move_first_in_household() -> None:
    env = gym.make("distillgym/Household-v0")
    env.reset(seed=1)
    expert = env.unwrapped.expert_action()
    result = mcts(env, simulations=40, rollout_policy="expert", rollout_noise=0.0, rollouts=1, horizon=40,
                  max_depth=1, seed=0)
    assert result.best_action == expert  # the shortest way to the goal has the least discounted return lost
    assert env.unwrapped.expert_action() == expert and env.unwrapped.steps == 0


def test_search_is_deterministic_in_its_seed_and_chance_can_be_fixed() -> None:
    env = gym.make("distillgym/2048-v0")
    env.reset(seed=5)
    a = mcts(env, simulations=30, horizon=10, seed=1).to_dict()
    b = mcts(env, simulations=30, horizon=10, seed=1).to_dict()
    assert a == b
    fixed = mcts(env, simulations=30, horizon=10, seed=1, chance="fixed")
    assert fixed.root.visits == 30


def test_bad_options_and_unsearchable_families_get_clear_errors() -> None:
    env = sokoban_at(ONE_PUSH)
    with pytest.raises(ValueError, match="simulations"):
        mcts(env, simulations=0)
    with pytest.raises(ValueError, match="gamma"):
        mcts(env, gamma=1.5)
    with pytest.raises(ValueError, match="rollout policy"):
        mcts(env, rollout_policy="greedy")
    with pytest.raises(ValueError, match="batch_simulator"):
        mcts(gym.make("distillgym/Household-v0").unwrapped, batched=True)

    class NoActions(SokobanEnv):
        def admissible_actions(self) -> None:  # type: ignore[override]
            return None

    free = NoActions()
    free.reset(seed=0)
    free.agent_protocol = free.agent_protocol.__class__("r", "f")  # a protocol with no fixed action set
    with pytest.raises(ValueError, match="actions="):
        mcts(free, simulations=2)
    result = mcts(free, simulations=8, actions=lambda e: ["Up", "Left"], seed=0)
    assert set(result.root.children) <= {"Up", "Left"}
