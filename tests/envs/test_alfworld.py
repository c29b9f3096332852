"""ALFWorld-v0: data discovery and its errors (no engine needed), then real play through TextWorld's PDDL backend on
the hand-written ALFWorld-format games in tests/envs/data/alfworld (skipped where textworld or Fast Downward is
missing)."""

from __future__ import annotations

import json
import pickle
import shutil
import sys
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import distillgym  # noqa: F401  (registers the ids)
from distillgym.envs.alfworld import (
    TASK_TYPES,
    ALFWorldDataNotFoundError,
    TextWorldBackendMissingError,
    alfworld_names,
    data_root,
    find_games,
    list_games,
    split_dir,
    task_type_of,
)

DATA = Path(__file__).parent / "data" / "alfworld"
ENV_ID = "distillgym/ALFWorld-v0"
COOL = "pick_cool_then_place_in_recep"
SIMPLE = "pick_and_place_simple"


# ----------------------------------------------------------------------------- without the engine
def test_make_without_data_names_the_data_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        gym.make(ENV_ID, privileged=True)
    assert isinstance(err.value, ALFWorldDataNotFoundError)
    msg = str(err.value)
    assert "pip install alfworld && alfworld-download" in msg
    assert "ALFWORLD_DATA" in msg and "data_path" in msg and str(tmp_path) in msg
    with pytest.raises(ALFWorldDataNotFoundError, match="alfworld-download"):
        gym.make(ENV_ID, privileged=True, data_path=tmp_path / "nowhere", split="test")


def test_make_without_textworld_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "textworld", None)  # `import textworld` now raises ImportError
    with pytest.raises(TextWorldBackendMissingError) as err:
        gym.make(ENV_ID, privileged=True, data_path=DATA)
    assert isinstance(err.value, ImportError)
    assert 'pip install "distillgym[alfworld]"' in str(err.value)


def test_make_without_fast_downward_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("textworld")
    from textworld.envs.pddl import pddl

    monkeypatch.setattr(pddl, "fast_downward_missing", True)
    with pytest.raises(TextWorldBackendMissingError, match=r"pip install \"distillgym\[alfworld\]\""):
        gym.make(ENV_ID, privileged=True, data_path=DATA)


def test_data_location_and_split_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    assert data_root() == Path("~/.cache/alfworld").expanduser().absolute()
    monkeypatch.setenv("ALFWORLD_DATA", str(DATA))
    assert data_root() == DATA.absolute()
    assert data_root("/x/y") == Path("/x/y")
    assert split_dir("train") == "train"
    assert split_dir("test") == "valid_unseen"
    assert split_dir("test", "valid_seen") == "valid_seen"
    with pytest.raises(ValueError):
        split_dir("test", "valid")


def test_listing_sorts_and_filters_games(tmp_path: Path) -> None:
    train = find_games(DATA, "train")
    assert [task_type_of(g) for g in train] == [SIMPLE, COOL]  # sorted by path
    assert find_games(DATA, "train", task_types=(COOL,)) == train[1:]
    assert len(find_games(DATA, "test")) == 1
    with pytest.raises(ALFWorldDataNotFoundError, match="valid_seen"):
        find_games(DATA, "test", eval_set="valid_seen")
    with pytest.raises(ALFWorldDataNotFoundError, match="look_at_obj_in_light"):
        find_games(DATA, "train", task_types=("look_at_obj_in_light",))
    # ALFWorld skips games marked unsolvable, and sliced-object and movable-receptacle trials
    root = tmp_path / "data"
    shutil.copytree(DATA, root)
    game = Path(find_games(root, "train")[0])
    data = json.loads(game.read_text())
    game.write_text(json.dumps({**data, "solvable": False}))
    sliced = root / "json_2.1.1" / "train" / f"{COOL}-AppleSliced-None-CounterTop-10" / "trial_1"
    sliced.mkdir(parents=True)
    shutil.copy(find_games(DATA, "train")[1], sliced / "game.tw-pddl")
    assert [task_type_of(g) for g in list_games(root, "train")] == [COOL]


def test_alfworld_names_match_alfworlds_demangler() -> None:
    ids = [
        "cabinet_bar__plus_00_dot_38_bar__plus_00_dot_37_bar__minus_01_dot_24",
        "cabinet_bar__minus_00_dot_57_bar__plus_00_dot_37_bar__minus_01_dot_24",
        "sink_bar__plus_00_dot_02_bar__plus_00_dot_77_bar__minus_01_dot_71_bar_sinkbasin",
        "apple_bar__minus_01_dot_62_bar__plus_00_dot_80_bar__plus_00_dot_41",
        "agent1",
        "appletype",
    ]
    names = alfworld_names(ids)
    # within a class, numbers count down over the sorted ids ("_bar__minus" sorts before "_bar__plus")
    assert names[ids[1]] == "cabinet 2" and names[ids[0]] == "cabinet 1"
    assert names[ids[2]] == "sinkbasin 1" and names[ids[3]] == "apple 1"
    assert names["agent1"] == "agent1 " and names["appletype"] == "appletype "
    assert TASK_TYPES[0] == SIMPLE and len(TASK_TYPES) == 6


# ----------------------------------------------------------------------------- playing (needs the engine)
@pytest.fixture(scope="module")
def env():
    pytest.importorskip("textworld")
    pytest.importorskip("fast_downward", reason="TextWorld's PDDL backend needs fast-downward-textworld")
    e = gym.make(ENV_ID, privileged=True, data_path=DATA)
    yield e
    e.close()


def _play_expert(env: gym.Env, seed: int, **reset_kwargs: object) -> tuple[list[str], dict]:
    obs, info = env.reset(seed=seed, **reset_kwargs)
    played = []
    for _ in range(env.unwrapped.max_steps):
        action = info["privileged"]["expert_action"]
        assert action in info["admissible_actions"]
        obs, reward, terminated, truncated, info = env.step(action)
        played.append(action)
        assert reward == (1.0 if terminated else 0.0) and not truncated
        if terminated:
            break
    return played, info


def test_check_env(env: gym.Env) -> None:
    check_env(env.unwrapped, skip_render_check=True)


def test_reset_shows_alfworld_text_and_admissible_commands(env: gym.Env) -> None:
    argv = list(sys.argv)
    env.reset(seed=0)
    obs, info = env.reset(seed=1)
    assert sys.argv == argv  # Fast Downward's translator overwrites sys.argv; the env puts it back
    assert obs.startswith("-= Welcome to TextWorld, ALFRED! =-")
    assert "you see a cabinet 1, a countertop 1, a diningtable 1, a fridge 1, and a microwave 1." in obs
    assert info["task"] == "Your task is to: put a cool apple in countertop." and obs.endswith(info["task"])
    assert {"go to fridge 1", "go to diningtable 1", "look", "inventory"} <= set(info["admissible_actions"])
    assert info["alfworld"]["task_type"] == COOL and not info["success"]
    obs, *_ = env.step("go to diningtable 1")
    assert obs == "You arrive at loc 1. On the diningtable 1, you see a apple 1."
    assert "take apple 1 from diningtable 1" in env.unwrapped.admissible_actions()


@pytest.mark.parametrize(("split", "seed"), [("train", 0), ("train", 1), ("test", 0)])
def test_planner_expert_wins(env: gym.Env, split: str, seed: int) -> None:
    played, info = _play_expert(env, seed, options={"split": split})
    assert info["success"] and info["alfworld"]["expert_source"] == "planner"
    assert info["privileged"]["expert_plan"] == [] and info["privileged"]["expert_action"] is None
    assert len(played) <= 6
    solution = info["privileged"]["solution"]
    assert solution == (None if split == "test" else played)  # json_2.1.1's files have no walkthrough


def test_walkthrough_expert_and_stored_solution_win(env: gym.Env) -> None:
    walk = gym.make(ENV_ID, privileged=True, data_path=DATA, expert="walkthrough")
    obs, info = walk.reset(seed=1)
    assert info["alfworld"]["expert_source"] == "walkthrough"
    solution = info["privileged"]["solution"]
    for k, action in enumerate(solution):
        obs, reward, terminated, truncated, info = walk.step(action)
        assert terminated == (k == len(solution) - 1)
    assert info["success"] and reward == 1.0
    # off the walkthrough, the walkthrough expert re-plans with the planner
    obs, info = walk.reset(seed=1)
    obs, *_, info = walk.step("go to cabinet 1")
    assert (
        info["alfworld"]["expert_source"] == "planner" and info["privileged"]["expert_action"] == "go to diningtable 1"
    )
    walk.close()


def test_walkthrough_with_looks_is_followed(env: gym.Env, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(DATA, root)
    game = Path(find_games(root, "train", task_types=(COOL,))[0])
    data = json.loads(game.read_text())
    game.write_text(json.dumps({**data, "walkthrough": ["look", *data["walkthrough"][:3], "inventory",
                                                        *data["walkthrough"][3:]]}))
    walk = gym.make(ENV_ID, privileged=True, data_path=root, expert="walkthrough", task_types=[COOL])
    obs, info = walk.reset(seed=0)
    for action in info["privileged"]["solution"]:
        assert info["alfworld"]["expert_source"] == "walkthrough"
        obs, reward, terminated, truncated, info = walk.step(action)
    assert terminated and info["success"]
    walk.close()


def test_wrong_plan_does_not_win_and_the_expert_recovers(env: gym.Env) -> None:
    env.reset(seed=1)  # put a cool apple in countertop: skip the cooling
    for action in ["go to diningtable 1", "take apple 1 from diningtable 1", "go to countertop 1",
                   "put apple 1 in/on countertop 1"]:
        obs, reward, terminated, truncated, info = env.step(action)
        assert obs != "Nothing happens." and reward == 0.0 and not terminated
    assert not info["success"]
    assert info["privileged"]["expert_plan"][0] == "take apple 1 from countertop 1"
    for action in info["privileged"]["expert_plan"]:
        obs, reward, terminated, truncated, info = env.step(action)
    assert terminated and info["success"] and reward == 1.0


def test_malformed_commands_never_raise(env: gym.Env) -> None:
    obs, info = env.reset(seed=1)
    admissible = info["admissible_actions"]
    invalid = [None, 5, b"look", "", "   ", "\n\t", "x" * 257, "go to fridge 1\x00", ["look"]]
    unknown = ["asdf", "go to", "go to fridge 9", "take apple 1 from fridge 1", "x" * 256, "ünïcødé →", "put",
               "GO TO Fridge 1 please", "<action>look</action>"]
    for k, action in enumerate(invalid + unknown):
        obs, reward, terminated, truncated, info = env.step(action)
        assert obs == "Nothing happens." and reward == 0.0 and not terminated
        assert info["invalid_action"] == (k < len(invalid)) and info["step"] == k + 1
        assert info["admissible_actions"] == admissible
    obs, *_ = env.step("  GO   to FRIDGE 1 ")  # case and spacing are normalized
    assert obs == "You arrive at loc 3. The fridge 1 is closed."
    space = env.unwrapped.action_space
    space.seed(0)
    for _ in range(5):
        env.step(space.sample())


def test_step_limit_truncates() -> None:
    pytest.importorskip("textworld")
    pytest.importorskip("fast_downward")
    short = gym.make(ENV_ID, privileged=True, data_path=DATA, max_steps=2)
    short.reset(seed=0)
    assert short.step("look")[3] is False
    obs, reward, terminated, truncated, info = short.step("look")
    assert truncated and not terminated and not info["success"]
    short.close()


def test_seeds_splits_and_options(env: gym.Env) -> None:
    u = env.unwrapped
    assert env.reset(seed=3)[1]["alfworld"]["task_type"] == COOL  # 3 % 2 == 1
    assert env.reset(seed=2)[1]["alfworld"]["task_type"] == SIMPLE
    assert env.reset(seed=7, options={"split": "test"})[1]["task"] == "Your task is to: put a apple in fridge."
    info = env.reset(seed=0, options={"task_types": [COOL]})[1]
    assert info["alfworld"]["task_type"] == COOL
    info = env.reset(options={"game_file": u.games[0]})[1]
    assert info["alfworld"]["game_file"] == u.games[0]
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(seed=0, options={"nope": 1})
    with pytest.raises(ValueError, match="task_types"):
        gym.make(ENV_ID, privileged=True, data_path=DATA, task_types=["pick_everything"])


def test_make_finds_data_through_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("textworld")
    pytest.importorskip("fast_downward")
    monkeypatch.setenv("ALFWORLD_DATA", str(DATA))
    e = gym.make(ENV_ID, privileged=True, split="test")
    assert len(e.unwrapped.games) == 1 and e.unwrapped.max_steps == 50
    e.close()


def test_snapshot_restore_within_episode_and_by_replay(env: gym.Env) -> None:
    u = env.unwrapped
    obs, info = env.reset(seed=1)
    plan = info["privileged"]["expert_plan"]
    env.step(plan[0])
    env.step("asdf")
    env.step(plan[1])
    snap = u.snapshot()
    reference = [env.step(a) for a in plan[2:]]
    assert reference[-1][2] and reference[-1][4]["success"]  # won

    u.restore(snap)  # same episode: Fast Downward's state is set back directly
    assert u.last_observation == "You pick up the apple 1 from the diningtable 1." and u.steps == 3
    assert [env.step(a) for a in plan[2:]] == reference

    env.reset(seed=0, options={"split": "test"})  # another game loaded: restoring resets and replays
    u.restore(pickle.loads(pickle.dumps(snap)))
    assert u.expert_action() == plan[2]
    assert [env.step(a) for a in plan[2:]] == reference

    other = gym.make(ENV_ID, privileged=True, data_path=DATA).unwrapped  # another env: replays too
    other.restore(snap)
    assert other.snapshot().state.commands == snap.state.commands
    assert [other.step(a) for a in plan[2:]] == reference
    other.close()


def test_envs_in_one_process_are_independent_and_close_cleanly(env: gym.Env) -> None:
    other = gym.make(ENV_ID, privileged=True, data_path=DATA)  # each env loads its own copy of Fast Downward's library
    env.reset(seed=1)
    other.reset(seed=0)
    assert env.step("go to diningtable 1")[0] == "You arrive at loc 1. On the diningtable 1, you see a apple 1."
    assert other.step("go to cabinet 1")[0] == "You arrive at loc 2. The cabinet 1 is closed."
    assert env.step("take apple 1 from diningtable 1")[0] == "You pick up the apple 1 from the diningtable 1."
    assert other.step("open cabinet 1")[0] == "You open the cabinet 1. The cabinet 1 is open. In it, you see a mug 1."
    other.close()
    other.close()
    with pytest.raises(gym.error.ClosedEnvironmentError):
        other.reset(seed=0)


def test_registered_default_plans_only_on_demand() -> None:
    """ALFWorld-v0 is registered with privileged=False (the planner costs seconds per plan on full-size scenes):
    info carries no plan, yet the expert answers when asked."""
    pytest.importorskip("fast_downward", reason="TextWorld's PDDL backend needs fast-downward-textworld")
    env = gym.make(ENV_ID, data_path=DATA)
    obs, info = env.reset(seed=0)
    assert info["privileged"] == {}
    assert isinstance(env.unwrapped.expert_action(), str)
    env.close()
