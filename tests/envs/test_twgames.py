"""TextWorld-v0: real TextWorld games behind the TextEnv contract (generation cache, expert, fuzzing, snapshots).

Game generation costs about a second per game, so every test shares one session cache and the same few seeds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import distillgym
from distillgym.envs.core import SPLIT_SIZE
from distillgym.envs.twgames import clean_feedback, game_command

TW_IDS = [
    "distillgym/TextWorld-v0",
    "distillgym/TextWorld-CoinCollector-v0",
    "distillgym/TextWorld-TreasureHunter-v0",
    "distillgym/TextWorld-Cooking-v0",
]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tw_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the whole session: each game is generated once."""
    pytest.importorskip("textworld")
    return tmp_path_factory.mktemp("distillgym-cache")


def make(env_id: str, cache: Path, **kwargs: object) -> gym.Env:
    return gym.make(env_id, cache_dir=str(cache), **kwargs)


# ----------------------------------------------------------------- no textworld needed
def test_registered_and_external() -> None:
    entries = {e.id: e for e in distillgym.ENVS}
    for env_id in TW_IDS:
        assert env_id in gym.registry and entries[env_id].external
    default, treasure = gym.registry["distillgym/TextWorld-v0"], gym.registry["distillgym/TextWorld-TreasureHunter-v0"]
    assert default.kwargs == treasure.kwargs


def test_game_command_is_one_safe_line() -> None:
    assert game_command("go east") == "go east"
    assert game_command("  Go   EAST\n") == "Go EAST"
    assert game_command("go east\ngo south") == "go east go south"  # a newline would be a second command
    assert game_command("go east. go south") == "go east go south"
    assert game_command("go east\x00") == "go east"  # NUL hangs the interpreter
    assert game_command("\\help") == "help"  # backslash is a dumb-frotz escape
    assert game_command("café") == "cafe"
    assert game_command("日本") == ""
    assert len(game_command("look " * 100)) <= 190


def test_clean_feedback() -> None:
    raw = "\n\n  ___  \n |$$|\n\nWelcome!\n\n-= Kitchen =-\nA kitchen.\n\n\n\n>      -= Kitchen =-0/1"
    assert clean_feedback(raw, intro=True) == "Welcome!\n\n-= Kitchen =-\nA kitchen."
    end = "You win.\n\n        *** The End ***\n\nWould you like to RESTART, RESTORE a saved game, QUIT or UNDO the last command?\n>  -= X =-1/2"  # noqa: E501
    assert clean_feedback(end) == "You win.\n\n*** The End ***"
    assert clean_feedback("Are you sure?                    -= Kitchen =-0/1") == "Are you sure?"


def test_missing_textworld_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from distillgym.envs.twgames import TextWorldEnv

    monkeypatch.setitem(sys.modules, "textworld", None)  # `import textworld` now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "distillgym\[textworld\]"'):
        TextWorldEnv()


def test_import_distillgym_does_not_import_textworld() -> None:
    code = "import sys, distillgym, distillgym.envs.twgames\nprint('textworld' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert res.stdout.strip() == "False"


def test_bad_options_are_rejected() -> None:
    pytest.importorskip("textworld")
    from distillgym.envs.twgames import TextWorldEnv

    with pytest.raises(ValueError, match="preset"):
        TextWorldEnv(preset="zork")
    with pytest.raises(ValueError, match="do not apply"):
        TextWorldEnv(preset="treasure_hunter", recipe=2)
    with pytest.raises(ValueError, match=r"1\.\.30"):
        TextWorldEnv(preset="treasure_hunter", level=31)
    with pytest.raises(ValueError, match="go"):
        TextWorldEnv(preset="cooking", go=5)


# ----------------------------------------------------------------- real games
def test_check_env(tw_cache: Path) -> None:
    env = make("distillgym/TextWorld-v0", tw_cache)
    check_env(env.unwrapped, skip_render_check=True)  # the render check would make two more envs and games
    env.close()


@pytest.mark.parametrize("env_id", TW_IDS[1:])
def test_expert_wins_every_preset(env_id: str, tw_cache: Path) -> None:
    env = make(env_id, tw_cache)
    obs, info = env.reset(seed=0)
    assert "$$$$" not in obs and obs == obs.strip()  # the ASCII-art banner is gone
    assert info["task"].endswith(env.unwrapped._gs["objective"])
    priv = info["privileged"]
    assert priv["solution"] and priv["expert_plan"] and priv["expert_action"] == priv["expert_plan"][0]
    assert set(priv["expert_plan"]) <= set(priv["solution"])
    total, steps = 0.0, 0
    terminated = truncated = False
    while not (terminated or truncated):
        action = env.unwrapped.expert_action()
        assert action in info["admissible_actions"]
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        steps += 1
    assert terminated and not truncated and info["success"]
    extra = info["textworld"]
    assert extra["won"] and not extra["lost"] and total == extra["score"] == extra["max_score"] > 0
    assert "*** The End ***" in obs
    assert info["privileged"]["expert_action"] is None
    assert steps <= len(info["privileged"]["solution"])
    # after the end, steps are refused without touching the game
    obs, reward, terminated, _, info = env.step("look")
    assert terminated and reward == 0.0 and "over" in obs
    env.close()


def test_cache_is_reused(tw_cache: Path) -> None:
    from distillgym.envs.twgames import games

    env = make("distillgym/TextWorld-v0", tw_cache)
    env.reset(seed=123)  # made by test_check_env already when it ran first; made now otherwise
    path = Path(env.unwrapped.game_path(env.unwrapped.current_task_seed))
    stat, count = path.stat(), games.generation_count
    env2 = make("distillgym/TextWorld-v0", tw_cache)
    obs2, _ = env2.reset(seed=123)
    assert games.generation_count == count  # nothing generated
    assert path.stat().st_ino == stat.st_ino and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert obs2 == env.reset(seed=123)[0]
    assert json.loads((path.parent / "spec.json").read_text())["seed"] == 123
    assert not [p for p in path.parent.parent.iterdir() if p.name.startswith(".tmp-")]  # no temporary leftovers
    env.close()
    env2.close()


def test_seeds_and_splits_give_different_games(tw_cache: Path) -> None:
    env = make("distillgym/TextWorld-v0", tw_cache)
    games = {}
    for split, index in (("train", 123), ("test", 123), ("train", 456)):
        obs, info = env.reset(seed=index, options={"split": split})
        assert info["task_seed"] == index + (SPLIT_SIZE if split == "test" else 0)
        path = Path(info["textworld"]["game_file"])
        games[split, index] = (path, path.read_bytes())
    paths = {p for p, _ in games.values()}
    contents = {c for _, c in games.values()}
    assert len(paths) == 3 and len(contents) == 3
    env.close()


def test_concurrent_generation_is_safe(tw_cache: Path) -> None:
    """Two processes asking for the same new game: one generates it, the other waits and reuses it."""
    cache = tw_cache / "concurrent"
    code = (
        "import sys\n"
        "from distillgym.envs.twgames import games\n"
        "s = games.game_settings('treasure_hunter', {'level': 1})\n"
        "p = games.ensure_game('treasure_hunter', s, 7, sys.argv[1])\n"
        "print(p, games.generation_count)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(cache)], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0][0] == outs[1][0] and Path(outs[0][0]).is_file()
    assert sorted(int(o[1]) for o in outs) == [0, 1]
    folder = Path(outs[0][0]).parent.parent
    assert [p.name for p in folder.iterdir() if not p.name.startswith(".")] == [Path(outs[0][0]).parent.name]
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]


FUZZ: list[object] = [
    None, 5, 2.5, b"go east", ["go east"], {"go": "east"}, "", "   ", "\n\t\r", "\x00", "go east\x00", "\x00look",
    "go east\ngo south", "go east. go south", "go east then go south", "go east, take passkey", "\\help", "\\",
    "é ü 日本", "😀 \u202e \ud800", "\x1b[31m", "a" * 257, "x" * 1_000_000, "look" + "\x7f" * 3, "quit", "q", "y",
    "restart", "save", "restore", "script", "undo", "again", "g", "oops", "tw-trace-actions", "tw-extra-infos score",
    "take all", "<action>look</action>", "'", "--", "GO   EAST",
]


def test_malformed_commands_never_raise(tw_cache: Path) -> None:
    env = make("distillgym/TextWorld-v0", tw_cache, max_steps=1000).unwrapped
    env.reset(seed=123)
    for action in FUZZ:
        obs, reward, terminated, truncated, info = env.step(action)  # type: ignore[arg-type]
        assert env.observation_space.contains(obs) and obs
        invalid = not isinstance(action, str) or not action.strip() or len(action.strip()) > 256
        assert info["invalid_action"] == invalid, action
        if invalid:
            assert reward == -1.0 and "Invalid command" in obs
        if terminated:  # a stray "take passkey" could win: start again
            env.reset(seed=123)
    rng = env.np_random
    for _ in range(60):
        chars = [chr(int(c)) for c in rng.integers(0, 0x2FFF, size=int(rng.integers(0, 300)))]
        obs, _, terminated, _, _ = env.step("".join(chars))
        assert env.observation_space.contains(obs)
        if terminated:
            env.reset(seed=123)
    # the game and TextWorld's state tracking are still in step: the expert still wins from here
    for _ in range(30):
        obs, _, terminated, _, info = env.step(env.expert_action())
        if terminated:
            break
    assert info["success"]
    env.close()


def test_snapshot_restore_replays(tw_cache: Path) -> None:
    env = make("distillgym/TextWorld-v0", tw_cache).unwrapped
    obs0, info0 = env.reset(seed=123)
    at_reset = env.snapshot()
    plan = env.expert_plan()
    first = env.step("look")
    mid = env.snapshot()
    actions = ["inventory", plan[0], "nonsense words", "", *plan[1:]]
    trace = [env.step(a) for a in actions]
    assert trace[-1][2] and trace[-1][4]["success"]
    # back to the middle: same actions, same everything
    env.restore(mid)
    assert env.last_observation == first[0] and env.steps == 1
    assert [env.step(a) for a in actions] == trace
    # back to the start (a full replay), then forward again from a fresh env (a load + replay)
    env.restore(at_reset)
    assert env.last_observation == obs0 and env.steps == 0 and env.admissible_actions() == info0["admissible_actions"]
    fresh = make("distillgym/TextWorld-v0", tw_cache).unwrapped
    fresh.restore(mid)
    assert [fresh.step(a) for a in actions] == trace
    # restoring a snapshot from another game loads that game
    fresh.reset(seed=456)
    fresh.restore(mid)
    assert fresh.step(actions[0]) == trace[0]
    env.close()
    fresh.close()
