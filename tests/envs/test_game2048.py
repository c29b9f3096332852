"""2048: hand-worked rules, batched == single-board moves, the env contract, Monte-Carlo values and the expert."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import distillgym  # noqa: F401  (registers the ids)
from distillgym.envs.core.mc import mc_q_values, rollout_returns
from distillgym.envs.game2048 import Expectimax, Game2048Env, logic, vectorized
from distillgym.envs.game2048.expert import lane_heuristic_table, line_heuristic
from distillgym.envs.game2048.simulator import Game2048Simulator
from distillgym.eval.bench.game2048 import PROACT_STATE

UP, DOWN, LEFT, RIGHT = range(4)


def board(tiles: list[list[int]]) -> np.ndarray:
    return logic.board_from_tiles(tiles)


def moved(tiles: list[list[int]], action: int) -> tuple[list[list[int]], int]:
    new, score = logic.move(board(tiles), action)
    return logic.tiles_of(new), score


def random_boards(rng: np.random.Generator, count: int, size: int, high: int = 8) -> np.ndarray:
    boards = rng.integers(0, high, size=(count, size * size)).astype(np.int8)
    boards[rng.random(boards.shape) < 0.3] = 0
    return boards


# ----------------------------------------------------------------------------------------------- rules by hand
ROW_CASES = [  # (row, moved toward its first cell, score)
    ([2, 2, 2, 2], [4, 4, 0, 0], 8),
    ([2, 2, 4, 4], [4, 8, 0, 0], 12),
    ([4, 0, 4, 8], [8, 8, 0, 0], 8),
    ([2, 2, 2, 0], [4, 2, 0, 0], 4),
    ([0, 0, 0, 2], [2, 0, 0, 0], 0),
    ([2, 4, 8, 16], [2, 4, 8, 16], 0),
    ([4, 4, 8, 0], [8, 8, 0, 0], 8),  # the new 8 does not merge again in the same move
    ([1024, 1024, 0, 0], [2048, 0, 0, 0], 2048),
]


@pytest.mark.parametrize(("row", "expected", "score"), ROW_CASES)
def test_rows_every_direction(row: list[int], expected: list[int], score: int) -> None:
    zeros = [0] * 4
    grid_row = [row, zeros, zeros, zeros]
    assert moved(grid_row, LEFT) == ([expected, zeros, zeros, zeros], score)
    assert moved([r[::-1] for r in grid_row], RIGHT) == ([expected[::-1], zeros, zeros, zeros], score)
    column = [[v, 0, 0, 0] for v in row]
    assert moved(column, UP) == ([[v, 0, 0, 0] for v in expected], score)
    assert moved(column[::-1], DOWN) == ([[v, 0, 0, 0] for v in expected[::-1]], score)


def test_right_on_a_full_row() -> None:
    assert moved([[2, 2, 2, 2], [0] * 4, [0] * 4, [0] * 4], RIGHT)[0][0] == [0, 0, 4, 4]


def test_full_board_all_directions() -> None:
    grid = [[2, 2, 4, 8], [0, 2, 2, 0], [4, 0, 4, 4], [2, 2, 2, 2]]
    assert moved(grid, LEFT) == ([[4, 4, 8, 0], [4, 0, 0, 0], [8, 4, 0, 0], [4, 4, 0, 0]], 24)
    assert moved(grid, RIGHT) == ([[0, 4, 4, 8], [0, 0, 0, 4], [0, 0, 4, 8], [0, 0, 4, 4]], 24)
    assert moved(grid, UP) == ([[2, 4, 4, 8], [4, 2, 2, 4], [2, 0, 4, 2], [0, 0, 2, 0]], 4)
    assert moved(grid, DOWN) == ([[0, 0, 4, 0], [2, 0, 2, 8], [4, 2, 4, 4], [2, 4, 2, 2]], 4)


def test_slide_row_on_exponents() -> None:
    assert logic.slide_row([1, 1, 1, 1]) == ([2, 2, 0, 0], 8)
    assert logic.slide_row([3, 0, 3, 0, 3]) == ([4, 3, 0, 0, 0], 16)


def test_illegal_moves_and_game_over() -> None:
    corner = board([[2, 0, 0, 0], [4, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert logic.legal_moves(corner).tolist() == [False, True, False, True]
    checker = board([[2, 4, 2, 4], [4, 2, 4, 2], [2, 4, 2, 4], [4, 2, 4, 2]])
    assert logic.is_game_over(checker) and not logic.legal_moves(checker).any()
    one_pair = board([[2, 4, 2, 4], [4, 2, 4, 2], [2, 4, 2, 4], [4, 2, 8, 8]])
    assert not logic.is_game_over(one_pair)
    assert logic.legal_moves(one_pair).tolist() == [False, False, True, True]
    with_gap = board([[2, 4, 2, 4], [4, 2, 4, 2], [2, 4, 0, 4], [4, 2, 4, 2]])
    assert not logic.is_game_over(with_gap)
    boards = np.stack([checker, one_pair, with_gap]).reshape(3, -1)
    assert vectorized.game_over_batch(boards).tolist() == [True, False, False]
    assert vectorized.packed_stuck(vectorized.pack4(boards[:2])).tolist() == [True, False]
    assert vectorized.legal_moves_batch(boards).tolist() == [
        [False] * 4,
        [False, False, True, True],
        logic.legal_moves(with_gap).tolist(),
    ]


def test_legal_moves_rule_matches_moving() -> None:
    rng = np.random.default_rng(1)
    for size in range(3, 7):
        for b in random_boards(rng, 300, size, high=4):
            grid = b.reshape(size, size)
            changes = [not np.array_equal(logic.move(grid, a)[0], grid) for a in range(4)]
            assert logic.legal_moves(grid).tolist() == changes


# ----------------------------------------------------------------------------------------------- batched logic
@pytest.mark.parametrize("size", [3, 4, 5, 6])
def test_batched_moves_match_single_board(size: int) -> None:
    rng = np.random.default_rng(size)
    boards = random_boards(rng, 600, size)
    if size == 4:  # some boards past the packed limit take the generic path
        boards[:50, 0] = 15
    actions = rng.integers(4, size=len(boards))
    new, scores, changed = vectorized.move_batch(boards, actions)
    assert new.shape == boards.shape
    for b, a, nb, s, c in zip(boards, actions, new, scores, changed, strict=True):
        ref, ref_score = logic.move(b.reshape(size, size), int(a))
        assert np.array_equal(ref.reshape(-1), nb)
        assert ref_score == s
        assert c == (not np.array_equal(ref.reshape(-1), b))
    square, _, _ = vectorized.move_batch(boards.reshape(-1, size, size), actions)
    assert np.array_equal(square.reshape(len(boards), -1), new)
    legal = vectorized.legal_moves_batch(boards)
    for b, row in zip(boards[:100], legal[:100], strict=True):
        assert row.tolist() == logic.legal_moves(b.reshape(size, size)).tolist()


def test_packed_and_generic_paths_agree() -> None:
    rng = np.random.default_rng(2)
    boards = random_boards(rng, 2000, 4, high=14)
    actions = rng.integers(4, size=len(boards))
    x_new, info = vectorized.packed_move(vectorized.pack4(boards), actions)
    generic, score = logic._move_generic(boards, actions)
    assert np.array_equal(vectorized.unpack4(x_new), generic)
    assert np.array_equal((info >> vectorized.INFO_SCORE_SHIFT) & ((1 << 36) - 1), score)
    x = vectorized.pack4(boards)
    assert np.array_equal(vectorized.unpack4(x), boards)
    transposed = boards.reshape(-1, 4, 4).transpose(0, 2, 1).reshape(-1, 16)
    assert np.array_equal(vectorized.unpack4(vectorized.transpose4(x)), transposed)


@pytest.mark.parametrize("size", [3, 4, 5, 6])
def test_play_batch_moves_then_spawns_once(size: int) -> None:
    rng = np.random.default_rng(10 + size)
    boards = random_boards(rng, 400, size)
    high = 15 if size == 4 else 40  # few equal neighbours, so that some near-full boards get stuck
    full = rng.integers(1, high, size=(200, size * size)).astype(np.int8)
    full[np.arange(200), rng.integers(size * size, size=200)] = 0
    boards = np.concatenate([boards, full])
    actions = rng.integers(4, size=len(boards))
    moved_boards, scores, changed = vectorized.move_batch(boards, actions)
    after = boards.copy()
    got_scores, got_changed, stuck = vectorized.play_batch(after, actions, rng)
    assert np.array_equal(got_scores, scores) and np.array_equal(got_changed, changed)
    diff = after != moved_boards
    assert np.array_equal(diff.sum(axis=1), changed.astype(int))  # one new tile, only where the board changed
    assert (moved_boards[diff] == 0).all() and np.isin(after[diff], [1, 2]).all()
    assert np.array_equal(stuck, changed & vectorized.game_over_batch(after))
    assert stuck.any()


def test_small_batches_loop_in_python_with_identical_results() -> None:
    rng = np.random.default_rng(3)
    for _ in range(40):
        boards = random_boards(rng, 9, 4)
        boards[:3] = rng.integers(1, 6, size=(3, 16))
        boards[:3, 5] = 0
        actions = rng.integers(4, size=9)
        seed = int(rng.integers(1 << 30))
        a, b = vectorized.pack4(boards), vectorized.pack4(boards)
        out_python = vectorized._play_packed_ints(a, actions, np.random.default_rng(seed))
        out_numpy = vectorized._play_packed_numpy(b, actions, np.random.default_rng(seed))
        assert np.array_equal(a, b)
        for p, q in zip(out_python, out_numpy, strict=True):
            assert np.array_equal(p, q)


def test_spawn_distribution() -> None:
    rng = np.random.default_rng(1234)
    values, cells = [], []
    for _ in range(20000):
        b = logic.empty_board(4)
        logic.spawn(b, rng)
        (cell,) = np.flatnonzero(b)
        cells.append(cell)
        values.append(int(b.reshape(-1)[cell]))
    twos = values.count(1) / len(values)
    assert 0.88 < twos < 0.92
    assert set(values) == {1, 2}
    counts = np.bincount(cells, minlength=16)
    assert counts.min() > 1000 and counts.max() < 1500  # 1250 expected per cell
    b = board([[2, 4, 2, 4], [4, 0, 4, 2], [2, 4, 2, 4], [4, 2, 4, 2]])
    assert logic.spawn(b, rng) and b[1, 1] in (1, 2)
    assert not logic.spawn(b, rng)  # full board: nothing to do


def test_start_cells_distribution() -> None:
    """Task start boards: two tiles on distinct cells, each cell alike, a 4 one time in ten, a pure function of the
    seed, and what the env starts from."""
    for size in (3, 4, 6):
        n2 = size * size
        cells, fours = np.zeros(n2, int), 0
        for seed in range(6000):
            start = logic.start_cells(size, seed)
            assert sorted(start)[:-2] == [0] * (n2 - 2) and all(v in (0, 1, 2) for v in start)
            tiles = [i for i, v in enumerate(start) if v]
            assert len(tiles) == 2
            cells[tiles] += 1
            fours += sum(start[i] == 2 for i in tiles)
        expected = 2 * 6000 / n2
        assert np.all(np.abs(cells - expected) < 5 * np.sqrt(expected)), cells
        assert 0.085 < fours / 12000 < 0.115
        assert logic.start_cells(size, 2**32 - 1) == logic.start_cells(size, 2**32 - 1)
    env = Game2048Env(privileged=False)
    for seed in (0, 7, 123456):
        env.reset(seed=seed)
        assert env.board.reshape(-1).tolist() == logic.start_cells(4, seed)
        env.reset(seed=seed, options={"split": "test"})
        assert env.board.reshape(-1).tolist() == logic.start_cells(4, 2**31 + seed)


def test_moves_match_the_rules() -> None:
    """`Moves` (the env's cached, table-driven path): legal flags and results equal `legal_moves` and `move`."""
    rng = np.random.default_rng(5)
    for size in range(3, 7):
        for b in random_boards(rng, 200, size, high=5):
            grid = b.reshape(size, size)
            moves = logic.Moves(b.reshape(-1).tolist(), size)
            assert list(moves.legal) == logic.legal_moves(grid).tolist()
            for a in range(4):
                got = moves.result(a)
                new, score = logic.move(grid, a)
                if moves.legal[a]:
                    assert got == (new.reshape(-1).tolist(), score)
                else:
                    assert got is None


def test_spawn_rng_is_built_when_first_needed_and_snapshots_before_it_restore() -> None:
    actions = ["Up", "Left", "Down", "Right"] * 10
    env = Game2048Env(privileged=False)
    env.reset(seed=9)
    assert env.snapshot().state[2] is None  # nothing spawned yet: the task's RNG is not built
    fresh = env.snapshot()
    first = play(env, actions)
    assert env.snapshot().state[2] is not None
    env.restore(fresh)
    assert play(env, actions) == first
    other = Game2048Env(privileged=False)
    other.reset(seed=4)
    play(other, actions[:7])
    other.restore(fresh)  # another task, mid-episode: the snapshot's seed, not this env's RNG
    assert play(other, actions) == first


def test_batched_spawn_distribution() -> None:
    rng = np.random.default_rng(99)
    for size in (4, 5):
        boards = np.zeros((20000, size * size), dtype=np.int8)
        boards[:, 0] = 1
        boards[:, 1] = 1  # Left merges them: every board changes, then gets one spawn
        vectorized.play_batch(boards, np.full(len(boards), LEFT), rng)
        spawned = boards[:, 1:]
        values = spawned[spawned > 0]
        assert len(values) == len(boards)
        assert 0.88 < np.mean(values == 1) < 0.92
        counts = (spawned > 0).sum(axis=0)
        expected = len(boards) / (size * size - 1)
        assert counts.min() > 0.85 * expected and counts.max() < 1.15 * expected


# ----------------------------------------------------------------------------------------------- the env
def play(env: Game2048Env, actions: list[str]) -> list[tuple[str, float, bool, bool]]:
    out = []
    for a in actions:
        obs, reward, terminated, truncated, _ = env.step(a)
        out.append((obs, reward, terminated, truncated))
    return out


def test_constructor_validation() -> None:
    for bad in (2, 7, "4", 4.0, True):
        with pytest.raises(ValueError, match="size"):
            Game2048Env(size=bad)  # type: ignore[arg-type]
    for bad in (4, 6, 3000, 2.0, True):
        with pytest.raises(ValueError, match="target_tile"):
            Game2048Env(target_tile=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot be made"):
        Game2048Env(size=3, target_tile=2048)
    with pytest.raises(ValueError, match="depth"):
        Game2048Env(expert_depth=0)
    assert Game2048Env(size=3, target_tile=1024).target_exponent == 10


def test_registered_env_passes_check_env() -> None:
    # One id is enough here (the others differ in kwargs only); sampling TextSpace actions makes this slow.
    env = gym.make("distillgym/2048-v0")
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_observation_task_and_info() -> None:
    env = Game2048Env()
    obs, info = env.reset(seed=0)
    lines = obs.splitlines()
    assert len(lines) == 5 and lines[-1] == "Score: 0"
    assert sum(line.split().count(".") for line in lines[:4]) == 14
    assert "2048" in info["task"] and "Up, Down, Left or Right" in info["task"]
    assert info["admissible_actions"] == env.admissible_actions()
    assert info["privileged"]["expert_action"] in info["admissible_actions"]
    assert info["privileged"]["expert_depth"] == 3
    extra = info["2048"]
    assert extra["score"] == 0 and extra["max_tile"] in (2, 4) and len(extra["board"]) == 4
    assert sum(v > 0 for row in extra["board"] for v in row) == 2
    assert Game2048Env(privileged=False).reset(seed=0)[1]["privileged"] == {}


def test_step_rewards_and_score() -> None:
    env = Game2048Env()
    env.reset(seed=5, options={"board": [[2, 2, 0, 0], [4, 4, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]})
    obs, reward, terminated, truncated, info = env.step("Left")
    assert reward == 12.0 and not terminated and not truncated
    assert info["2048"]["score"] == 12 and "Score: 12" in obs and "+12" in obs
    assert info["2048"]["board"][0][0] == 4 and info["2048"]["board"][1][0] == 8
    assert sum(v > 0 for row in info["2048"]["board"] for v in row) == 3  # two merged tiles + one spawn


def test_illegal_move_penalty_and_no_spawn() -> None:
    env = Game2048Env(illegal_move_penalty=-2.5)
    grid = [[2, 0, 0, 0], [4, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    env.reset(seed=1, options={"board": grid})
    state = env.snapshot().state
    obs, reward, terminated, _, info = env.step("Left")
    assert reward == -2.5 and not terminated and not info["invalid_action"]
    assert "changed nothing" in obs and info["2048"]["board"] == grid
    assert env.snapshot().state == state  # no spawn: the RNG did not move either
    assert env.admissible_actions() == ["Down", "Right"]


@pytest.mark.parametrize("junk", ["", "x" * 10_000, "↑↑ 🙂 ✓", "None", "null", "up left", "\x00\x07"])
def test_malformed_actions_give_feedback_and_penalty(junk: str) -> None:
    env = Game2048Env()
    env.reset(seed=2)
    before = env.board
    obs, reward, terminated, truncated, info = env.step(junk)
    assert reward == -10.0 and not terminated and not truncated
    assert info["invalid_action"] and "Invalid action" in obs and "Up, Down, Left or Right" in obs
    assert np.array_equal(env.board, before)
    assert len(obs) < 1000


def test_non_string_actions_never_raise() -> None:
    env = Game2048Env(invalid_action_penalty=-3.0)
    env.reset(seed=2)
    for junk in (None, 3, b"Up", ["Up"]):
        _, reward, _, _, info = env.step(junk)  # type: ignore[arg-type]
        assert reward == -3.0 and info["invalid_action"]


def test_tolerant_parsing() -> None:
    env = Game2048Env()
    env.reset(seed=0, options={"board": [[0, 0, 0, 2], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]})
    _, reward, _, _, info = env.step("<action>move left</action>")
    assert not info["invalid_action"] and info["2048"]["board"][0][0] == 2


def test_same_seed_same_episode() -> None:
    rng = np.random.default_rng(0)
    actions = [str(a) for a in rng.choice(["Up", "Down", "Left", "Right"], size=80)]
    a, b = Game2048Env(privileged=False), Game2048Env(privileged=False)
    assert a.reset(seed=11)[0] == b.reset(seed=11)[0]
    assert play(a, actions) == play(b, actions)
    starts = {Game2048Env(privileged=False).reset(seed=s)[0] for s in range(20)}
    assert len(starts) > 10
    assert a.reset(seed=3)[0] != a.reset(seed=3, options={"split": "test"})[0]


def test_snapshot_restore_round_trip() -> None:
    rng = np.random.default_rng(4)
    env = Game2048Env(privileged=False)
    env.reset(seed=21)
    play(env, [str(a) for a in rng.choice(["Up", "Down", "Left", "Right"], size=40)])
    snap = env.snapshot()
    actions = [str(a) for a in rng.choice(["Up", "Down", "Left", "Right", "junk"], size=60)]
    first = play(env, actions)
    env.restore(snap)
    assert play(env, actions) == first
    other = Game2048Env(privileged=False)
    other.reset(seed=0)
    other.restore(snap)
    assert play(other, actions) == first


def test_game_over_and_target() -> None:
    env = Game2048Env(privileged=False)
    # Right merges the two 16s and leaves one hole at the bottom left: a 2 or a 4 there leaves no move.
    env.reset(seed=0, options={"board": [[2, 4, 2, 4], [4, 2, 4, 2], [8, 16, 8, 16], [16, 16, 64, 128]]})
    obs, reward, terminated, _, info = env.step("Right")
    assert terminated and reward == 32.0 and not info["success"] and "game over" in obs
    assert info["2048"]["board"][3][1:] == [32, 64, 128]
    assert env.admissible_actions() == [] and env.expert_action() is None
    assert env.batch_simulator().root_actions() == []
    _, reward, terminated, _, info = env.step("Left")
    assert reward == 0.0 and terminated and "over" in info["feedback"]
    win = [[1024, 1024, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    env.reset(seed=0, options={"board": win})
    obs, reward, terminated, _, info = env.step("Left")
    assert terminated and info["success"] and reward == 2048.0 and "2048 tile" in obs
    assert env.batch_simulator().root_actions() == []
    keep = Game2048Env(privileged=False, end_on_target=False)
    keep.reset(seed=0, options={"board": win})
    _, _, terminated, _, info = keep.step("Left")
    assert not terminated and info["success"]
    over = Game2048Env(privileged=True)
    over.reset(seed=0, options={"board": [[2, 4, 2, 4], [4, 2, 4, 2], [2, 4, 2, 4], [4, 2, 4, 2]]})
    assert over.admissible_actions() == [] and over.privileged_info()["expert_action"] is None
    _, reward, terminated, _, info = over.step("Up")  # a stuck start board ends at the first move
    assert reward == -1.0 and terminated and not info["success"]


def test_reset_options_validation() -> None:
    env = Game2048Env()
    with pytest.raises(ValueError, match="4x4"):
        env.reset(seed=0, options={"board": [[2, 0, 0], [0, 0, 0], [0, 0, 0]]})
    with pytest.raises(ValueError, match="power of two"):
        env.reset(seed=0, options={"board": [[3, 0, 0, 0]] + [[0] * 4] * 3})
    with pytest.raises(ValueError, match="unknown"):
        env.reset(seed=0, options={"boardd": 1})


# ----------------------------------------------------------------------------------------------- Monte-Carlo values
def test_mc_q_values_cover_exactly_the_legal_moves() -> None:
    env = Game2048Env(privileged=False)
    env.reset(seed=0, options={"board": [[2, 0, 0, 0], [4, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]})
    q = mc_q_values(env, num_rollouts=50, horizon=30, gamma=0.9, seed=0)
    assert set(q) == {"Down", "Right"}
    env.reset(seed=3)
    q = mc_q_values(env, num_rollouts=50, horizon=30, gamma=0.9, seed=0)
    assert set(q) == set(env.admissible_actions())
    env.reset(seed=0, options={"board": [[2, 4, 2, 4], [4, 2, 4, 2], [2, 4, 2, 4], [4, 2, 4, 2]]})
    assert mc_q_values(env, num_rollouts=10, horizon=10) == {}


def test_mc_q_values_rank_a_big_merge_first() -> None:
    env = gym.make("distillgym/2048-v0")
    env.reset(seed=0, options={"board": [[1024, 1024, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 2]]})
    q = mc_q_values(env, num_rollouts=100, horizon=1, gamma=0.9, seed=0)
    assert q == {"Up": 0.0, "Down": 0.0, "Left": 2048.0, "Right": 2048.0}
    q = mc_q_values(env, num_rollouts=200, horizon=200, gamma=0.9, seed=0)
    assert min(q["Left"], q["Right"]) > max(q["Up"], q["Down"])


@pytest.mark.parametrize("size", [3, 5, 6])
def test_other_sizes_play_and_value(size: int) -> None:
    env = Game2048Env(size=size, target_tile=64, expert_depth=2)
    obs, info = env.reset(seed=size)
    assert len(obs.splitlines()) == size + 1 and len(info["2048"]["board"]) == size
    for _ in range(10):
        action = info["privileged"]["expert_action"]
        assert action in info["admissible_actions"]
        *_, terminated, _, info = env.step(action)
        if terminated:
            break
    q = mc_q_values(env, num_rollouts=20, horizon=20, seed=0)
    assert set(q) == set(env.admissible_actions())


@pytest.mark.parametrize("packed", [False, True])
def test_simulator_step_semantics(packed: bool) -> None:
    sim = Game2048Simulator(
        board([[2, 0, 0, 0], [4, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]), illegal_move_penalty=-1.0, packed=packed
    )
    batch = sim.replicate(3)
    if packed:
        assert set(batch) == {"packed"} and batch["packed"].shape == (3,) and batch["packed"].dtype == np.uint64
    else:
        assert set(batch) == {"board"}
    assert sim.boards(batch).shape == (3, 16) and sim.boards(batch).dtype == np.int8
    start = sim.boards(batch).copy()
    rewards, terminated = sim.step(batch, np.array([LEFT, DOWN, UP]), np.random.default_rng(0))
    assert rewards.tolist() == [-1.0, 0.0, -1.0] and not terminated.any()
    assert np.array_equal(sim.boards(batch)[[0, 2]], start[[0, 2]])  # illegal: unchanged, no spawn
    assert (sim.boards(batch)[1] > 0).sum() == 3
    dying = Game2048Simulator(board([[2, 4, 2, 4], [4, 2, 4, 2], [2, 4, 2, 4], [4, 2, 4, 4]]), packed=packed)
    batch = dying.replicate(2)
    rewards, terminated = dying.step(batch, np.array([LEFT, RIGHT]), np.random.default_rng(0))
    assert rewards.tolist() == [8.0, 8.0]
    assert terminated.tolist() == vectorized.game_over_batch(dying.boards(batch)).tolist()


@pytest.mark.parametrize("count", [5, 300])  # the plain-Python loop and numpy
def test_play_packed_matches_play_batch(count: int) -> None:
    rng = np.random.default_rng(count)
    for _ in range(10):
        boards = random_boards(rng, count, 4, high=14)
        boards[: count // 2] = rng.integers(1, 6, size=(count // 2, 16))  # near-full boards, some get stuck
        boards[: count // 2, 5] = 0
        actions = rng.integers(4, size=count)
        seed = int(rng.integers(1 << 30))
        x = vectorized.pack4(boards)
        expected = vectorized.play_batch(boards, actions, np.random.default_rng(seed))
        got = vectorized.play_packed(x, actions, np.random.default_rng(seed))
        assert np.array_equal(vectorized.unpack4(x), boards)
        for p, q in zip(got, expected, strict=True):
            assert np.array_equal(p, q)


def _sim_returns(sim: Game2048Simulator, n: int, horizon: int, seed: int) -> np.ndarray:
    """Rollout returns (num actions, n) from every root action of `sim`."""
    actions = sim.root_actions()
    first = np.repeat(np.asarray(actions, dtype=np.int64), n)
    batch = sim.replicate(len(first))
    rng = np.random.default_rng(seed)
    returns = rollout_returns(sim, batch, first, horizon=horizon, gamma=0.9, rng=rng)
    return returns.reshape(len(actions), n)


def test_packed_and_generic_simulators_agree_statistically() -> None:
    grid = board(PROACT_STATE)
    packed, generic = Game2048Simulator(grid), Game2048Simulator(grid, packed=False)
    assert packed.replicate(1).keys() == {"packed"} and generic.replicate(1).keys() == {"board"}
    a = _sim_returns(packed, 4000, 300, seed=1)
    b = _sim_returns(generic, 4000, 300, seed=2)
    # Fixed seeds make this deterministic; 6 standard errors of the difference of means would not flake anyway.
    se = np.sqrt(a.var(axis=1) / a.shape[1] + b.var(axis=1) / b.shape[1])
    assert (np.abs(a.mean(axis=1) - b.mean(axis=1)) < 6 * se).all(), (a.mean(axis=1), b.mean(axis=1), se)
    assert (se < 1.0).all()  # the check is tight enough to catch a wrong rule


@pytest.mark.parametrize("packed", [False, True])
def test_horizon_one_values_are_the_merge_scores(packed: bool) -> None:
    grid = board(PROACT_STATE)
    sim = Game2048Simulator(grid, packed=packed)
    q = _sim_returns(sim, 50, 1, seed=0).mean(axis=1)
    expected = [float(logic.move(grid, a)[1]) for a in sim.root_actions()]
    assert q.tolist() == expected
    env = Game2048Env(privileged=False)
    env.reset(seed=0, options={"board": PROACT_STATE})
    names = env.unwrapped.batch_simulator().action_names
    assert mc_q_values(env, num_rollouts=50, horizon=1, seed=0) == dict(
        zip([names[a] for a in sim.root_actions()], expected, strict=True)
    )


def test_packed_batch_leaves_the_packed_range_for_boards() -> None:
    top = 1 << vectorized.PACKED_MAX_EXPONENT  # the largest packed tile: two of them merge beyond the packed range
    sim = Game2048Simulator(board([[top, top, 0, 0], [2, 0, 0, 0], [0] * 4, [0] * 4]), end_on_target=False)
    batch = sim.replicate(30)
    assert "packed" in batch
    rng = np.random.default_rng(0)
    rewards, terminated = sim.step(batch, np.full(30, LEFT), rng)
    assert rewards.tolist() == [2.0 * top] * 30 and not terminated.any()
    assert set(batch) == {"board"} and (batch["board"][:, 0] == vectorized.PACKED_MAX_EXPONENT + 1).all()
    for _ in range(20):  # the generic path carries on: a 2**15 tile never overflows
        rewards, terminated = sim.step(batch, rng.integers(4, size=len(batch["board"])), rng)
        assert (batch["board"].max(axis=1) == vectorized.PACKED_MAX_EXPONENT + 1).all()
    ended = Game2048Simulator(board([[1024, 1024, 0, 0], [2, 0, 0, 0], [0] * 4, [0] * 4]))  # target 2048
    batch = ended.replicate(30)
    rewards, terminated = ended.step(batch, np.full(30, RIGHT), rng)
    assert rewards.tolist() == [2048.0] * 30 and terminated.all() and "packed" in batch


# ----------------------------------------------------------------------------------------------- the expert
def test_line_heuristic_by_hand() -> None:
    # [2, 2, ., 4]: 1 empty, one run of 2 equal tiles (merges 2), monotonicity min(1, 16) = 1,
    # sum of rank**3.5 = 1 + 1 + 2**3.5.
    expected = 200000 + 270 * 1 + 700 * 2 - 47 * 1 - 11 * (2 + 2**3.5)
    assert line_heuristic(np.array([[1, 1, 0, 2]]))[0] == pytest.approx(expected)
    assert line_heuristic(np.array([[2, 0, 1, 1]]))[0] == pytest.approx(expected)  # reversal symmetric
    assert lane_heuristic_table()[0x2011] == pytest.approx(expected)  # nibbles 1, 1, 0, 2


def test_expert_proposes_only_legal_moves() -> None:
    rng = np.random.default_rng(7)
    for size in range(3, 7):
        expert = Expectimax(size, depth=2)
        for b in random_boards(rng, 30, size, high=6):
            grid = b.reshape(size, size)
            action = expert.best_action(grid)
            legal = logic.legal_moves(grid)
            assert (action is None) == (not legal.any())
            if action is not None:
                assert legal[action]
    stuck = board([[2, 4, 2, 4], [4, 2, 4, 2], [2, 4, 2, 4], [4, 2, 4, 2]])
    assert Expectimax(4, 1).best_action(stuck) is None


def test_expert_packed_and_generic_backends_agree() -> None:
    rng = np.random.default_rng(8)
    expert = Expectimax(4, depth=2)
    for b in random_boards(rng, 20, 4, high=9):
        grid = b.reshape(4, 4)
        root = expert._packed.encode(grid)  # type: ignore[union-attr]
        fast = expert._after_value(expert._packed, expert._packed.moves(root)[0], 1)  # type: ignore[arg-type]
        slow = expert._after_value(expert._generic, expert._generic.moves(expert._generic.encode(grid))[0], 1)
        assert np.allclose(fast, slow)


@pytest.mark.parametrize(("size", "depth"), [(3, 3), (4, 3), (4, 4), (5, 3)])
def test_expert_merging_duplicate_boards_changes_no_value(size: int, depth: int) -> None:
    """Valuing each distinct board of a level once gives exactly the values of the whole tree (both backends: 4x4
    packed, other sizes generic), on start boards and crowded ones."""
    rng = np.random.default_rng(size * 10 + depth)
    merged, whole = Expectimax(size, depth), Expectimax(size, depth, merge_duplicates=False)
    small = depth > 3 or size > 4  # the unmerged tree is seconds a board there
    boards = [np.array(logic.start_cells(size, s), dtype=np.int8) for s in range(1 if small else 2)]
    boards += list(random_boards(rng, 1 if small else 4, size, high=6))
    for b in boards:
        grid = b.reshape(size, size)
        values = merged.action_values(grid)
        assert np.array_equal(values, whole.action_values(grid))
        assert np.isfinite(values).any()


def test_expert_beats_random_play() -> None:
    scores: dict[str, list[int]] = {"expert": [], "random": []}
    for seed in range(3):
        for who in scores:
            env = Game2048Env(privileged=False)
            env.reset(seed=seed)
            rng = np.random.default_rng(seed)
            for _ in range(100):
                legal = env.admissible_actions()
                action = env.expert_action() if who == "expert" else str(rng.choice(legal))
                assert action in legal
                *_, terminated, truncated, info = env.step(action)
                if terminated or truncated:
                    break
            scores[who].append(info["2048"]["score"])
    assert np.mean(scores["expert"]) > 1.3 * np.mean(scores["random"])
