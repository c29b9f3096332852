"""Registration, gymnasium's env checker, determinism across processes, vector envs, and the light import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import distillgym
from tests.conftest import ALL_IDS

FIXED_ACTIONS = ["Up", "Left", "junk", "Down", "Right", "Right", "Up", "", "Left", "Down"] * 3


def test_every_id_is_registered() -> None:
    assert len(ALL_IDS) >= 9
    for env_id in ALL_IDS:
        assert env_id in gym.registry
        assert gym.registry[env_id].namespace == "distillgym"
    # the presets of rising difficulty
    for required in ("Sokoban-6x6-1-v0", "Sokoban-8x8-2-v0", "Sokoban-10x10-3-v0", "2048-v0"):
        assert f"distillgym/{required}" in ALL_IDS
    distillgym.register_envs()  # idempotent
    gym.register_envs(distillgym)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_check_env(env_id: str) -> None:
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=False)
    env.close()


def _episode_digest(env_id: str) -> list:
    env = gym.make(env_id)
    obs, info = env.reset(seed=7)
    trace = [obs, info["task_seed"]]
    for a in FIXED_ACTIONS:
        obs, r, term, trunc, info = env.step(a)
        trace += [obs, round(r, 6), term, trunc]
        if term or trunc:
            break
    return trace


_SCRIPT = """
import json, sys
import gymnasium as gym
from tests.envs.test_registration import _episode_digest
print(json.dumps({i: _episode_digest(i) for i in sys.argv[1:]}))
"""


def test_same_seed_same_episode_in_two_processes() -> None:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    outs = []
    for hashseed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed, "PYTHONPATH": root}
        res = subprocess.run(
            [sys.executable, "-c", "import distillgym\n" + _SCRIPT, *ALL_IDS],
            capture_output=True, text=True, env=env, cwd=root, check=True,
        )
        outs.append(json.loads(res.stdout))
    assert outs[0] == outs[1]
    here = {i: _episode_digest(i) for i in ALL_IDS}
    assert json.loads(json.dumps(here)) == outs[0]


def test_module_form_from_a_bare_interpreter() -> None:
    code = (
        "import gymnasium as gym\n"
        "env = gym.make('distillgym:distillgym/Sokoban-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "env2 = gym.make('distillgym:distillgym/2048-v0')\n"
        "obs2, _ = env2.reset(seed=0)\n"
        "print(type(env.unwrapped).__name__, type(env2.unwrapped).__name__)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["SokobanEnv", "Game2048Env"]


def test_import_stays_light() -> None:
    code = (
        "import sys, gymnasium as gym, distillgym\n"
        "import distillgym.envs.sokoban, distillgym.envs.game2048, distillgym.cli\n"
        "for i in [e.id for e in distillgym.ENVS if not e.external]:\n"
        "    gym.make(i).reset(seed=0)\n"
        "heavy = [m for m in ('torch', 'transformers', 'vllm', 'tokenizers') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("env_id", ["distillgym/Sokoban-v0", "distillgym/2048-3x3-v0"])
def test_vector_envs(env_id: str, mode: str) -> None:
    envs = gym.make_vec(env_id, num_envs=3, vectorization_mode=mode)
    try:
        obs, infos = envs.reset(seed=11)
        assert len(obs) == 3 and all(isinstance(o, str) for o in obs)
        assert obs[0] == gym.make(env_id).reset(seed=11)[0]
        for _ in range(12):
            obs, rewards, terms, truncs, infos = envs.step(["Up", "Left", "what?"])
            assert len(obs) == 3 and rewards.shape == (3,)
            assert envs.observation_space.contains(obs)
        assert infos["invalid_action"].tolist() == [False, False, True] or infos["_invalid_action"].all()
    finally:
        envs.close()
