"""Sokoban: generation, the expert, rewards, renderings and batched dynamics."""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np
import pytest

from distillgym.envs.core import mc_q_values
from distillgym.envs.sokoban import (
    ACTIONS,
    GeneratorConfig,
    State,
    apply_move,
    expert_plan,
    generate_room,
    is_dead,
    parse_room,
    render,
    solve,
)
from tests.conftest import SOKOBAN_IDS

SEEDS_PER_PRESET = {"6x6": 150, "7x7": 80, "8x8": 60, "10x10-3": 30, "10x10-4": 20, "Sokoban-v0": 150}


def _n_seeds(env_id: str) -> int:
    return next(v for k, v in SEEDS_PER_PRESET.items() if k in env_id)


@pytest.mark.parametrize("env_id", SOKOBAN_IDS)
@pytest.mark.parametrize("split", ["train", "test"])
def test_expert_solves_every_room_of_every_preset(env_id: str, split: str) -> None:
    env = gym.make(env_id, split=split)
    n = _n_seeds(env_id) // (1 if split == "train" else 3)
    for seed in range(n):
        obs, info = env.reset(seed=seed)
        assert not info["success"]
        solution = info["privileged"]["solution"]
        assert 0 < len(solution) <= env.unwrapped.max_steps
        for k, move in enumerate(solution):
            obs, reward, terminated, truncated, info = env.step(move)
            assert terminated == (k == len(solution) - 1), f"seed {seed}: ended early or late"
        assert info["success"] and terminated and not truncated


def _bfs_optimal_length(layout, state: State) -> int | None:
    """Move-level breadth-first search: the exact optimum, for checking A*."""
    seen = {state}
    queue = deque([(state, 0)])
    while queue:
        s, d = queue.popleft()
        if s.solved(layout):
            return d
        for a in range(4):
            t, event = apply_move(layout, s, a)
            if event != -2 and t not in seen:
                seen.add(t)
                queue.append((t, d + 1))
    return None


def test_astar_is_move_optimal_against_bfs() -> None:
    cfg = GeneratorConfig(6, 6, 2)
    for seed in range(40):
        room, _ = generate_room(seed, cfg)
        result = solve(room.layout, room.start, weight=1.0)
        assert len(result.plan) == _bfs_optimal_length(room.layout, room.start), seed
        state = room.start
        for a in result.plan:
            state, _ = apply_move(room.layout, state, a)
        assert state.solved(room.layout)


def test_expert_plan_replay_wins_on_large_rooms() -> None:
    cfg = GeneratorConfig(10, 10, 4)
    for seed in range(10):
        room, plan = generate_room(seed, cfg)
        state = room.start
        for a in plan:
            state, _ = apply_move(room.layout, state, a)
        assert state.solved(room.layout)
        assert not is_dead(room.layout, room.start)


CORNER_DEADLOCK = """
######
#$   #
#  @ #
#   .#
######
"""

FROZEN_PAIR = """
#######
#     #
# $$  #
# ##  #
#  ..@#
#######
"""

UNSOLVABLE_NO_DEAD_SQUARE = """
#######
#.  ###
#   $@#
# #####
#######
"""


def test_deadlocks_are_detected_and_unsolvable_rooms_fail_cleanly() -> None:
    layout, state = parse_room(CORNER_DEADLOCK)
    assert is_dead(layout, state)
    assert solve(layout, state).plan is None
    layout, state = parse_room(FROZEN_PAIR)
    assert is_dead(layout, state)
    layout, state = parse_room(UNSOLVABLE_NO_DEAD_SQUARE)
    result = solve(layout, state)
    assert result.plan is None and result.exhausted


SIMPLE = """
#######
#@ $ .#
#######
"""


def test_reward_scheme_defaults_and_configurable() -> None:
    layout, state = parse_room(SIMPLE)
    assert expert_plan(layout, state).plan == [3, 3, 3]
    env = gym.make("distillgym/Sokoban-v0").unwrapped
    env.reset(seed=0)
    from distillgym.envs.sokoban.env import _SokobanState
    from distillgym.envs.sokoban.room import Room

    room = Room(layout, state)
    env._set_state(_SokobanState(room, state, (3, 3, 3), (3, 3, 3)))
    rewards = [env.step("Right")[1] for _ in range(2)]
    assert rewards == pytest.approx([-0.1, -0.1])
    obs, r, term, trunc, info = env.step("Right")
    assert r == pytest.approx(-0.1 + 1.0 + 10.0) and term and info["success"]

    custom = gym.make("distillgym/Sokoban-v0", reward_step=-1, reward_box_on_target=5, reward_solved=100).unwrapped
    custom.reset(seed=0)
    custom._set_state(_SokobanState(room, state, (3, 3, 3), (3, 3, 3)))
    assert [custom.step("R")[1] for _ in range(3)] == [-1, -1, 104]


ON_TARGET = """
#######
#@*   #
#######
"""


def test_pushing_a_box_off_a_target_is_penalized() -> None:
    layout, state = parse_room(ON_TARGET)
    new, event = apply_move(layout, state, ACTIONS.index("Right"))
    assert event == -1 and new.boxes == (10,)  # row 1, column 3 of a 7-wide room
    env = gym.make("distillgym/Sokoban-v0").unwrapped
    env.reset(seed=0)
    from distillgym.envs.sokoban.env import _SokobanState
    from distillgym.envs.sokoban.room import Room

    env._set_state(_SokobanState(Room(layout, state), state, (), None))
    obs, r, *_ = env.step("right")
    assert r == pytest.approx(-1.1) and "off a target" in obs
    obs, r, *_ = env.step("up")
    assert r == pytest.approx(-0.1) and "nothing moved" in obs


def test_tolerant_action_forms_move_the_same_way() -> None:
    env = gym.make("distillgym/Sokoban-8x8-2-v0")
    boards = set()
    for form in ("Up", "up", "[up]", "U", "move up", "<action>up</action>"):
        env.reset(seed=4)
        obs, _, _, _, info = env.step(form)
        assert not info["invalid_action"]
        boards.add(obs)
    assert len(boards) == 1


def test_renderings() -> None:
    layout, state = parse_room(ON_TARGET)
    assert render(layout, state, "ragen") == "#######\n#P√___#\n#######"
    assert render(layout, state, "xsb") == "#######\n#@*   #\n#######"
    assert parse_room(render(layout, state, "ragen"), "ragen") == (layout, state)
    env = gym.make("distillgym/Sokoban-v0", symbols="xsb")
    obs, info = env.reset(seed=0)
    assert (set(obs) <= set("# .$*@+\n") and "@" in obs) or "+" in obs
    assert "'$' = box" in info["task"]
    with pytest.raises(ValueError, match="symbols"):
        gym.make("distillgym/Sokoban-v0", symbols="emoji")


def test_generation_is_deterministic_and_splits_differ() -> None:
    cfg = GeneratorConfig(8, 8, 2)
    assert generate_room(123, cfg) == generate_room(123, cfg)
    env = gym.make("distillgym/Sokoban-8x8-2-v0")
    train = [env.reset(seed=s)[0] for s in range(20)]
    test = [env.reset(seed=s, options={"split": "test"})[0] for s in range(20)]
    assert len(set(train)) == 20 and not set(train) & set(test)


def test_invalid_configs_name_the_field() -> None:
    with pytest.raises(ValueError, match="num_boxes"):
        gym.make("distillgym/Sokoban-v0", num_boxes=9)
    with pytest.raises(ValueError, match="height"):
        gym.make("distillgym/Sokoban-v0", dim=(3, 6))
    with pytest.raises(ValueError, match="unknown generator option"):
        gym.make("distillgym/Sokoban-v0", generator={"rounds": 3})
    with pytest.raises(ValueError, match="reset option"):
        gym.make("distillgym/Sokoban-v0").reset(seed=0, options={"level": 3})


def test_batch_simulator_matches_scalar_dynamics() -> None:
    env = gym.make("distillgym/Sokoban-10x10-3-v0").unwrapped
    env.reset(seed=2)
    sim = env.batch_simulator()
    layout = env.room.layout
    n = 64
    batch = sim.replicate(n)
    states = [env.state] * n
    rng = np.random.default_rng(0)
    for _ in range(60):
        actions = rng.integers(4, size=n)
        rewards, solved = sim.step(batch, actions, rng)
        for i in range(n):
            new, event = apply_move(layout, states[i], int(actions[i]))
            expected = -0.1 + {1: 1.0, -1: -1.0}.get(event, 0.0) + (10.0 if new.solved(layout) else 0.0)
            assert rewards[i] == pytest.approx(expected)
            assert solved[i] == new.solved(layout)
            states[i] = new
        assert batch["player"].tolist() == [s.player for s in states]
        assert [tuple(np.flatnonzero(row)) for row in batch["boxes"]] == [s.boxes for s in states]


def test_mc_q_values_rank_the_winning_push_first() -> None:
    layout, state = parse_room(SIMPLE.replace("@ $ .", "  @$.").replace("#  @$.#", "# @$. #"))
    env = gym.make("distillgym/Sokoban-v0").unwrapped
    env.reset(seed=0)
    from distillgym.envs.sokoban.env import _SokobanState
    from distillgym.envs.sokoban.room import Room

    env._set_state(_SokobanState(Room(layout, state), state, (), None))
    q = mc_q_values(env, num_rollouts=50, horizon=1, gamma=0.95, seed=0)
    assert set(q) == {"Left", "Right"}  # up/down are blocked: no Q for actions that change nothing
    assert q["Right"] == pytest.approx(10.9) and q["Left"] == pytest.approx(-0.1)
    q_long = mc_q_values(env, num_rollouts=200, horizon=50, gamma=0.95, seed=0)
    assert q_long["Right"] > q_long["Left"]
    assert mc_q_values(env, num_rollouts=200, horizon=50, seed=1) != q_long  # the seed matters
    assert mc_q_values(env, num_rollouts=200, horizon=50, gamma=0.95, seed=0) == q_long  # and reproduces


def test_hint_replans_after_a_deviation() -> None:
    env = gym.make("distillgym/Sokoban-8x8-2-v0").unwrapped
    _, info = env.reset(seed=9)
    first = info["privileged"]["expert_action"]
    other = next(a for a in info["admissible_actions"] if a != first)
    _, _, _, _, info = env.step(other)
    plan = info["privileged"]["expert_plan"]
    assert plan is not None  # re-planned from the new state (this seed is not a deadlock)
    assert plan != info["privileged"]["solution"][1:]
    for move in plan:
        *_, info = env.step(move)
    assert info["success"]


def test_privileged_read_late_replans_off_plan_states_even_of_a_task_left_behind() -> None:
    """Infos kept from off-plan steps and read only after the env moved to other tasks: each gives the plan of its
    own state in its own room (what an eager read said), and its deadlock flag is `is_dead` of that state."""
    lazy, eager = (gym.make("distillgym/Sokoban-6x6-2-v0").unwrapped for _ in range(2))
    kept, expected = [], []
    for seed in (1, 2):
        lazy.reset(seed=seed)
        eager.reset(seed=seed)
        for k in range(6):
            move = ACTIONS[(k * 3 + seed) % 4]  # mostly off the expert's path
            *_, info = lazy.step(move)
            *_, now = eager.step(move)
            kept.append(info["privileged"])
            expected.append(dict(now["privileged"]))
            assert now["sokoban"]["deadlock"] == is_dead(eager.room.layout, eager.state)
            assert info["sokoban"]["deadlock"] == now["sokoban"]["deadlock"]
    lazy.reset(seed=3)
    assert [dict(p) for p in kept] == expected
    assert any(p["expert_plan"] for p in expected) and any(
        p["expert_plan"] != p["solution"] for p in expected)  # some re-planned states among them


def test_restoring_another_tasks_snapshot_gives_that_tasks_expert() -> None:
    env = gym.make("distillgym/Sokoban-6x6-2-v0").unwrapped
    env.reset(seed=1)
    env.step("Up")
    env.step("Left")
    snap = env.snapshot()
    for seed in range(2, 8):  # fill the plan cache with other rooms' states
        env.reset(seed=seed)
        for move in ("Down", "Right", "Up"):
            env.step(move)
    env.restore(snap)
    plan = env.privileged_info()["expert_plan"]
    assert plan is not None
    for move in plan:
        *_, info = env.step(move)
    assert info["success"]


def test_mc_q_values_with_a_given_policy_is_exact_when_deterministic() -> None:
    layout, state = parse_room(SIMPLE)  # "#@ $ .#": three Right moves solve it
    env = gym.make("distillgym/Sokoban-v0").unwrapped
    env.reset(seed=0)
    from distillgym.envs.sokoban.env import _SokobanState
    from distillgym.envs.sokoban.room import Room

    env._set_state(_SokobanState(Room(layout, state), state, (), None))

    def always_right(batch: dict, rng: np.random.Generator) -> np.ndarray:
        return np.full(len(batch["player"]), ACTIONS.index("Right"))

    q = mc_q_values(env, num_rollouts=7, horizon=10, gamma=0.9, policy=always_right, seed=3)
    assert set(q) == {"Right"}  # every other move is blocked by a wall
    assert q["Right"] == pytest.approx(-0.1 + 0.9 * -0.1 + 0.9**2 * 10.9)
    with pytest.raises(ValueError, match="gamma"):
        mc_q_values(env, gamma=1.5)
