"""GEM environments in distillgym (envs/interop/gem.py): GEM's games through one adapter, their own action format,
seeds and splits, isolated random streams, evaluation and a GRPO iteration through the CLI, and clear refusals where
an algorithm needs what GEM does not give."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gem")

from typer.testing import CliRunner

from distillgym.cli import app
from distillgym.envs.core.make import capabilities, make_env
from distillgym.envs.interop.gem import GemEnv
from tests.conftest import grpo_iteration_through_cli

SOKOBAN, GUESS = "gem:game:Sokoban-v0-easy", "gem:game:GuessTheNumber-v0-easy"


def test_sokoban_plays_in_its_own_format() -> None:
    env = make_env(SOKOBAN)
    obs, info = env.reset(seed=3)
    assert "Sokoban" in info["task"] and "board" in obs and "#" in obs  # instructions apart, the board shown
    assert info["privileged"] == {} and info["admissible_actions"] is None and info["task_seed"] == 3
    obs, reward, terminated, truncated, info = env.step("I will go \\boxed{up}")
    assert "At turn 1" in obs and "board" in obs and not info["invalid_action"] and not terminated
    obs, reward, terminated, truncated, info = env.step("up")  # not GEM's format: GEM ends the episode
    assert info["invalid_action"] and terminated and reward == pytest.approx(-0.1) and not info["success"]
    assert capabilities(env) == frozenset()


def test_guess_the_number_is_won_by_bisection_and_counted_a_success() -> None:
    env = make_env(GUESS)
    _, info = env.reset(seed=0)
    lo, hi = 1, 10
    for _ in range(4):
        guess = (lo + hi) // 2
        obs, reward, terminated, truncated, info = env.step(f"\\boxed{{{guess}}}")
        if terminated:
            break
        lo, hi = (guess + 1, hi) if "higher" in obs else (lo, guess - 1)
    assert terminated and not truncated and reward == 1.0 and info["success"]


def test_seeds_splits_and_random_streams() -> None:
    a, b = GemEnv("game:Sokoban-v0-easy"), GemEnv("game:Sokoban-v0-easy")
    assert a.reset(seed=5)[0] == b.reset(seed=5)[0]
    assert a.reset(seed=6)[0] != b.reset(seed=5)[0]
    assert a.reset(seed=5, options={"split": "test"})[1]["task_seed"] == 2**31 + 5
    # GEM draws from the global generators while it plays: each env keeps its own, the caller's are left alone
    random.seed(7)
    np.random.seed(7)
    expected = (random.random(), np.random.random())
    random.seed(7)
    np.random.seed(7)
    guess = GemEnv("game:GuessTheNumber-v0-random")
    alone = [guess.reset(seed=s)[1]["task"] for s in range(3)]
    assert (random.random(), np.random.random()) == expected
    other = GemEnv("game:GuessTheNumber-v0-random")
    mixed = []
    for s in range(3):  # another env's resets in between change nothing
        other.reset(seed=100 + s)
        mixed.append(guess.reset(seed=s)[1]["task"])
    assert mixed == alone
    # without isolation GEM seeds the caller's generators, as it does alone
    loose = GemEnv("game:GuessTheNumber-v0-random", isolate_rng=False)
    random.seed(7)
    loose.reset(seed=0)
    after = random.getstate()
    random.seed(7)
    assert after != random.getstate()


def test_a_gem_env_instance_plays_and_collects() -> None:
    import gem

    from distillgym.agents.policies import RandomAgent
    from distillgym.agents.rollout import collect

    env = GemEnv(env=gem.make("game:GuessTheNumber-v0-easy"))
    assert env.gem_id == "game:GuessTheNumber-v0-easy"
    obs, info = env.reset(seed=1)
    assert "Guess The Number" in info["task"]
    with pytest.raises(ValueError, match="apply to env_id"):
        GemEnv(env=gem.make("game:GuessTheNumber-v0-easy"), max_number=5)
    # a factory of instances is what collect takes for an env that is not a registered id
    episodes = collect(RandomAgent(), lambda: GemEnv(env=gem.make("game:GuessTheNumber-v0-easy")), 4,
                       split="train", num_envs=2, seed=0, progress=False)
    assert len(episodes) == 4 and all(ep.num_steps >= 1 for ep in episodes)


def test_bad_ids_and_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="unknown GEM environment 'game:Nope-v0'"):
        make_env("gem:game:Nope-v0")
    with pytest.raises(ValueError, match="exactly one of env_id"):
        GemEnv()
    with pytest.raises(ValueError, match="split must be one of"):
        GemEnv("game:Sokoban-v0-easy", split="dev")


def test_cli_evaluates_and_trains_grpo_on_gem_games(tiny_dir: str, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["eval", "-a", "random", "-a", tiny_dir, "-e", SOKOBAN, "-e", GUESS, "--episodes", "3",
                              "--out", str(tmp_path / "eval")])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "eval" / "result.json").read_text())["metrics"]
    pairs = {(a, e) for a in ("random", tiny_dir) for e in (SOKOBAN, GUESS)}
    assert {(m["agent"], m["env_id"]) for m in metrics} == pairs
    assert all(m["episodes"] == 3 for m in metrics)
    # the random agent plays GEM's own random moves (valid in GEM's format): it never makes a format error
    assert all(m["invalid_action_rate"] == 0.0 for m in metrics if m["agent"] == "random")
    for env_id in (SOKOBAN, GUESS):
        grpo_iteration_through_cli(env_id, tiny_dir, tmp_path / env_id.split(":")[-1])
    # an algorithm that needs the env's privileged information is refused by name
    res = runner.invoke(app, ["train", "algo=opsd", f"env={SOKOBAN}", f"model={tiny_dir}",
                              f"out_dir={tmp_path / 'opsd'}", "iterations=1"])
    assert res.exit_code != 0 and "privileged information" in res.output and "algo" in res.output
    res = runner.invoke(app, ["eval", "-a", "expert", "-e", GUESS, "--episodes", "1", "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and "expert" in res.output
