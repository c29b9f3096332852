"""Shared fixtures: the registered ids, and cheap env factories."""

from __future__ import annotations

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
