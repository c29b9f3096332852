"""The shared contract, on every registered id: parsing, spaces, splits, invalid actions, snapshot/restore."""

from __future__ import annotations

from collections.abc import Mapping

import gymnasium as gym
import numpy as np
import pytest

from distillgym.envs.core import SPLIT_SIZE, TextSpace, parse_direction, task_seed
from tests.conftest import ALL_IDS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Up", "Up"), ("up", "Up"), ("UP", "Up"), ("[up]", "Up"), ("U", "Up"), ("u", "Up"), ("move up", "Up"),
        ("Move Up.", "Up"), ("push: left", "Left"), ("<action>Right</action>", "Right"), ("  down \n", "Down"),
        ("'L'", "Left"), ("east", "Right"), ("<answer> d </answer>", "Down"), ("go north", "Up"),
        ("", None), ("upp", None), ("up left", None), ("move", None), ("None", None), ("null", None),
        ("x" * 10_000, None), ("⬆️", None), ("move u", None), (None, None), (3, None),
    ],
)
def test_parse_direction(text: object, expected: str | None) -> None:
    assert parse_direction(text) == expected


def test_text_space_accepts_printable_text_only() -> None:
    space = TextSpace(100)
    assert space.contains("#_OX√PS\nScore: 12\t(ok)")
    assert space.contains("")
    assert not space.contains("a" * 101)
    assert not space.contains("bell\x07")
    assert not space.contains(b"bytes")
    space.seed(0)
    for _ in range(20):
        assert space.contains(space.sample())


def test_split_seed_ranges_never_overlap() -> None:
    assert task_seed("train", SPLIT_SIZE - 1) < task_seed("test", 0)
    assert task_seed("test", 5) == SPLIT_SIZE + 5
    with pytest.raises(ValueError, match="task index"):
        task_seed("train", SPLIT_SIZE)
    with pytest.raises(ValueError, match="task index"):
        task_seed("test", -1)
    with pytest.raises(ValueError, match="split"):
        task_seed("valid", 0)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_info_keys_and_splits(env_id: str) -> None:
    env = gym.make(env_id)
    obs, info = env.reset(seed=3)
    for key in ("task", "admissible_actions", "privileged", "success"):
        assert key in info
    assert info["split"] == "train" and info["task_seed"] == 3
    assert isinstance(info["privileged"], Mapping) and info["privileged"]
    test_obs, test_info = env.reset(seed=3, options={"split": "test"})
    assert test_info["task_seed"] == SPLIT_SIZE + 3
    test_env = gym.make(env_id, split="test")
    assert test_env.reset(seed=3)[0] == test_obs
    with pytest.raises(ValueError):
        gym.make(env_id, split="validation")
    quiet = gym.make(env_id, privileged=False)
    assert quiet.reset(seed=3)[1]["privileged"] == {}


MALFORMED = ["", "x" * 10_240, "🙂 向上 ⬆️", "None", "null", "\x00\x01", "up up up", "<action></action>", None]


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_malformed_actions_get_feedback_and_penalty(env_id: str) -> None:
    env = gym.make(env_id)
    obs0, _ = env.reset(seed=1)
    penalty = env.unwrapped.invalid_action_penalty
    for action in MALFORMED:
        if env.unwrapped.free_form_actions and env.unwrapped.parse_action(action) is not None:
            # a code cell such as "None" is a valid action there; it must still never raise
            obs, reward, terminated, truncated, info = env.step(action)
            assert not info["invalid_action"] and env.observation_space.contains(obs)
            continue
        obs, reward, terminated, truncated, info = env.step(action)
        assert info["invalid_action"] is True
        assert reward == pytest.approx(penalty)
        assert not terminated
        assert obs.startswith(env.unwrapped.invalid_feedback(action))  # "Invalid action ..." or "Nothing happens."
        assert env.observation_space.contains(obs)
        assert len(obs) < len(obs0) + 200  # feedback echoes a short prefix of the junk only


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_snapshot_restore_round_trips_exactly(env_id: str) -> None:
    env = gym.make(env_id).unwrapped
    env.reset(seed=5)
    rng = np.random.default_rng(0)
    moves = ["Up", "Down", "Left", "Right", "bogus"]
    for _ in range(4):
        env.step(moves[rng.integers(5)])
    snap = env.snapshot()
    plan = [moves[i] for i in rng.integers(5, size=25)]

    def play() -> list:
        out = []
        for a in plan:
            obs, r, te, tr, info = env.step(a)
            out.append((obs, r, te, tr, info["success"], info["admissible_actions"], info["privileged"]))
        return out

    first = play()
    env.restore(snap)
    assert env.snapshot() == snap
    second = play()
    assert first == second
    # a fresh env of the same id restores the same snapshot too
    other = gym.make(env_id).unwrapped
    other.reset(seed=99)
    other.restore(snap)
    env.restore(snap)
    assert other.last_observation == env.last_observation
    with pytest.raises(ValueError, match="snapshot"):
        env.restore("not a snapshot")


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_step_limit_and_step_after_done(env_id: str) -> None:
    extra = {"generator": {"max_plan_length": 200}} if "Sokoban" in env_id else {}
    env = gym.make(env_id, max_steps=3, **extra)
    env.reset(seed=0)
    results = [env.step("nonsense") for _ in range(3)]
    assert [r[3] for r in results] == [False, False, True]
    obs, reward, terminated, truncated, info = env.unwrapped.step("Up")
    assert reward == 0.0 and "episode is over" in obs


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_render_ansi(env_id: str) -> None:
    env = gym.make(env_id, render_mode="ansi")
    obs, _ = env.reset(seed=2)
    text = env.render()
    assert isinstance(text, str) and obs in text and "step 0/" in text
    with pytest.raises(ValueError, match="render_mode"):
        gym.make(env_id, render_mode="rgb_array")


def test_reset_without_seed_is_reproducible_after_a_seeded_reset() -> None:
    env = gym.make("distillgym/Sokoban-v0")
    env.reset(seed=42)
    a = [env.reset()[1]["task_index"] for _ in range(3)]
    env.reset(seed=42)
    b = [env.reset()[1]["task_index"] for _ in range(3)]
    assert a == b and len(set(a)) == 3


def test_seeded_reset_gives_gymnasium_s_np_random_built_when_first_read() -> None:
    """A seeded reset defers building `np_random` (it is most of a cheap reset) but reads exactly as gymnasium's."""
    from gymnasium.utils import seeding

    env = gym.make("distillgym/2048-v0")
    env.reset(seed=123)
    assert env.unwrapped.__dict__.get("_np_random_pending") is True  # not built by the reset itself
    assert env.np_random_seed == 123
    expected = seeding.np_random(123)[0]
    assert env.np_random.bit_generator.state == expected.bit_generator.state
    assert env.unwrapped._np_random is env.np_random  # gymnasium's attribute (check_env reads it): the same one
    draws = env.np_random.integers(1000, size=4).tolist()
    assert draws == expected.integers(1000, size=4).tolist()
    # a reset without a seed draws its task from that generator, as with gymnasium's eager seeding
    env.reset(seed=5)
    index = env.reset()[1]["task_index"]
    assert index == int(seeding.np_random(5)[0].integers(SPLIT_SIZE))
    mine = np.random.default_rng(7)
    env.np_random = mine  # gymnasium's setter: a given generator, seed unknown
    assert env.np_random is mine and env.np_random_seed == -1
    with pytest.raises(gym.error.Error):
        env.reset(seed=-1)


def test_text_space_flattens_any_unicode() -> None:
    from gymnasium.spaces.utils import flatdim, flatten, unflatten

    space = TextSpace(64)
    text = "#_O√PS\n向上 🙂 Score: 12"
    flat = flatten(space, text)
    assert flat.shape == (flatdim(space),) == (64,)
    assert unflatten(space, flat) == text
