"""Shared fixtures: the registered ids, and cheap env factories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import distillgym

ALL_IDS = [e.id for e in distillgym.ENVS if not e.external]  # native ids: the shared contract tests
SOKOBAN_IDS = [i for i in ALL_IDS if "Sokoban" in i]
GAME2048_IDS = [i for i in ALL_IDS if "2048" in i]


@pytest.fixture(params=ALL_IDS)
def env_id(request: pytest.FixtureRequest) -> str:
    return request.param


def make(env_id: str, **kwargs: object) -> gym.Env:
    return gym.make(env_id, **kwargs)


#: A hand-built Sokoban room one push from solved (Right pushes the box onto the target; Left is a wall).
ONE_PUSH = """
#######
#@$.  #
#     #
#######
"""


def sokoban_at(text: str = ONE_PUSH, **kwargs: object) -> Any:
    """An unwrapped Sokoban env (constructor `kwargs`) put at a hand-built room (xsb symbols)."""
    from distillgym.envs.sokoban.env import SokobanEnv, _SokobanState
    from distillgym.envs.sokoban.room import Room, parse_room

    env = SokobanEnv(**kwargs)  # type: ignore[arg-type]  # (kwargs are the constructor's)
    env.reset(seed=0)
    layout, state = parse_room(text)
    env._set_state(_SokobanState(Room(layout, state), state, (), None))
    return env


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny model (small vocabulary, few tokenizer episodes), built once per test session."""
    from distillgym.agents.models import TinyConfig, build_tiny

    out = tmp_path_factory.mktemp("tiny-model")
    build_tiny(TinyConfig(vocab_size=600, episodes_per_env=2), out_dir=out)
    return str(out)


def grpo_iteration_through_cli(env_id: str, model_dir: str, out: Path) -> dict:
    """`distillgym train algo=grpo` for one small iteration on `env_id` (through the CLI); its last metrics line."""
    import json

    from typer.testing import CliRunner

    from distillgym.cli import app

    res = CliRunner().invoke(app, ["train", "algo=grpo", f"env={env_id}", f"model={model_dir}", f"out_dir={out}",
                                   "iterations=1", "tasks_per_iter=2", "group_size=2", "num_envs=4", "max_tokens=8",
                                   "eval_episodes=2", "eval_every=0", "progress=false", "tensorboard=false",
                                   "threads=1", "grpo.drop_zero_advantage=false"])
    assert res.exit_code == 0, res.output
    last: dict = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["iteration"] == 1 and last["env_steps"] >= 4 and "loss" in last
    return last
