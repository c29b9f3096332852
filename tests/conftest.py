"""Shared fixtures: the registered ids, and cheap env factories."""

from __future__ import annotations

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
