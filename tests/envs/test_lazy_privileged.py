"""`info["privileged"]` costs nothing until it is read, and says what was true at its own step whenever it is read."""

from __future__ import annotations

import copy
import json
import pickle

import gymnasium as gym
import pytest

from distillgym.envs.core.text_env import LazyPrivileged
from tests.conftest import ALL_IDS


def action(env: gym.Env, k: int) -> str:
    """The expert's move, with an invalid reply every third step."""
    return "bogus" if k % 3 == 2 else env.unwrapped.expert_action() or "bogus"


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_privileged_info_is_computed_when_read_and_means_its_own_step(env_id: str) -> None:
    lazy, eager = gym.make(env_id).unwrapped, gym.make(env_id).unwrapped
    _, info = lazy.reset(seed=4)
    _, now = eager.reset(seed=4)
    kept, expected = [info["privileged"]], [dict(now["privileged"])]
    for k in range(5):
        a = action(eager, k)
        obs, *_, info = lazy.step(a)
        obs_e, *_, now = eager.step(a)
        assert obs == obs_e
        kept.append(info["privileged"])
        expected.append(dict(now["privileged"]))  # read at once
    assert all(isinstance(p, LazyPrivileged) and not p.evaluated for p in kept)  # nobody read them: not computed
    # read after the env moved on, each says what was true at its own step, and reading moves nothing
    here = lazy.snapshot()
    assert [dict(p) for p in kept] == expected
    assert all(p.evaluated for p in kept)
    assert lazy.snapshot() == here
    a = action(eager, 0)
    assert lazy.step(a)[0] == eager.step(a)[0]


def test_lazy_info_reads_like_a_dict_and_copies_as_one() -> None:
    env = gym.make("distillgym/2048-v0")
    _, info = env.reset(seed=3)
    p = info["privileged"]
    assert not p.evaluated
    assert set(p) == {"expert_action", "expert_depth"} and p["expert_depth"] == p.get("expert_depth") == 3
    assert "expert_action" in p and len(p) == 2 and p == dict(p) and bool(p)
    for other in (copy.copy(p), copy.deepcopy(p), pickle.loads(pickle.dumps(p)), {**p}):
        assert type(other) is dict and other == dict(p)
    assert json.loads(json.dumps(dict(p))) == dict(p)
    with pytest.raises(TypeError):  # a mapping, not a dict: json needs dict(...)
        json.dumps(p)


def test_privileged_off_gives_an_empty_dict_and_never_records_state() -> None:
    env = gym.make("distillgym/Sokoban-6x6-1-v0", privileged=False)
    _, info = env.reset(seed=0)
    assert info["privileged"] == {} and type(info["privileged"]) is dict
