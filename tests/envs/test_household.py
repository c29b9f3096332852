"""Household-v0: the contract, the expert on 500 tasks, seen/unseen pools, ALFWorld's grammar and text."""

from __future__ import annotations

import random
from collections import Counter

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import distillgym  # noqa: F401  (registers the ids)
from distillgym.envs.household import (
    TASK_TYPES,
    HouseholdConfig,
    HouseholdEnv,
    all_triples,
    expert_plan,
    generate,
    parse_command,
    triples,
)
from distillgym.envs.household.catalog import LOOK, OBJECTS, is_unseen
from distillgym.envs.household.generator import layout_is_unseen
from distillgym.envs.household.world import NOTHING, Command


def _signature(house) -> tuple:
    counts = Counter((house.rooms[r.room], r.kind) for r in house.receptacles)
    return tuple(sorted((room, kind, c) for (room, kind), c in counts.items()))


@pytest.mark.parametrize("env_id", ["distillgym/Household-v0", "distillgym/Household-3Rooms-v0"])
def test_check_env(env_id: str) -> None:
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert obs.startswith("-= Welcome to TextWorld, ALFRED! =-")
    assert info["task"].startswith("Your task is to: ") and info["task"] in obs
    assert info["household"]["task_type"] in TASK_TYPES


def test_expert_solves_500_tasks_of_every_type() -> None:
    """The bar: the expert solves 100% of 500 seeded tasks across all six types (both splits, 1-4 rooms)."""
    solved: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    lengths = []
    for k in range(500):
        rooms = 1 + k % 4
        env = HouseholdEnv(rooms=rooms, split="train" if k % 2 else "test", clutter=5 + k % 15)
        obs, info = env.reset(seed=k)
        task_type = info["household"]["task_type"]
        seen[task_type] += 1
        steps = 0
        terminated = truncated = False
        while not (terminated or truncated):
            action = info["privileged"]["expert_action"]
            assert action in info["admissible_actions"], (k, action)
            obs, reward, terminated, truncated, info = env.step(action)
            assert obs != NOTHING, (k, action)
            steps += 1
        assert terminated and info["success"] and reward == 1.0, (k, task_type, obs)
        solved[task_type] += 1
        lengths.append(steps)
    assert set(seen) == set(TASK_TYPES) and all(n >= 40 for n in seen.values()), seen
    assert solved == seen
    assert max(lengths) <= 30  # well inside ALFWorld's 50-step limit


def test_expert_recovers_from_random_detours() -> None:
    """From any state an agent reaches (random admissible commands), the expert still finishes the task."""
    rng = random.Random(0)
    for seed in range(60):
        env = HouseholdEnv(rooms=1 + seed % 3, max_steps=200)
        obs, info = env.reset(seed=seed)
        for _ in range(rng.randrange(1, 25)):
            obs, _, terminated, _, info = env.step(rng.choice(info["admissible_actions"]))
            if terminated:
                break
        while not info["success"]:
            plan = info["privileged"]["expert_plan"]
            assert plan, (seed, obs)
            obs, _, terminated, truncated, info = env.step(plan[0])
            assert not truncated
        assert info["success"]


def test_seen_and_unseen_pools_share_no_triple_or_layout() -> None:
    seen, unseen = set(triples("seen")), set(triples("unseen"))
    assert seen and unseen and not seen & unseen
    assert seen | unseen == set(all_triples())
    for task_type in TASK_TYPES:  # every type has held-out pairings
        assert any(t[0] == task_type for t in unseen) and any(t[0] == task_type for t in seen)
    train_layouts, test_layouts = set(), set()
    for seed in range(150):
        train = HouseholdEnv(split="train")
        train.reset(seed=seed)
        test = HouseholdEnv(split="test")
        test.reset(seed=seed)
        assert train.house.task.triple in seen and not is_unseen(train.house.task.triple)
        assert test.house.task.triple in unseen
        train_layouts.add(_signature(train.house))
        test_layouts.add(_signature(test.house))
    assert not train_layouts & test_layouts
    assert all(layout_is_unseen(s) for s in test_layouts) and not any(layout_is_unseen(s) for s in train_layouts)
    # valid_seen: held-out seeds, seen pairings
    env = HouseholdEnv(split="test", pool="seen")
    env.reset(seed=0)
    assert env.house.task.triple in seen


def test_reset_is_deterministic_and_seeds_differ() -> None:
    env = HouseholdEnv()
    a = env.reset(seed=11)[0]
    b = env.reset(seed=11)[0]
    c = env.reset(seed=12)[0]
    assert a == b and a != c
    assert gym.make("distillgym/Household-v0").reset(seed=11)[0] == a


MALFORMED = [
    "", " ", "\n\n", "go", "go to", "go to nowhere 1", "take", "take from", "take apple 99 from countertop 1",
    "move to", "heat", "heat with microwave 1", "use", "open", "open the door", "examine", "slice apple",
    "Up", "<action></action>", "<action>go to</action>", "🙂" * 50, "x" * 100_000, "go to countertop 1\x00",
    "take apple 1 from countertop 1; rm -rf /", "close fridge 1 " * 30, "cool 5 with 6", "\t\r", "go to \u202e",
    "move apple 1 to apple 1", "clean sinkbasin 1 with apple 1", "use countertop 1", "go to go to",
]


def test_malformed_commands_never_raise() -> None:
    env = HouseholdEnv(rooms=2)
    obs, info = env.reset(seed=5)
    rng = random.Random(1)
    junk = [*MALFORMED, None, 3, 2.5, b"go to fridge 1", ["look"], {"a": 1}, object()]
    alphabet = "abcdefghijklmnopqrstuvwxyz 0123456789 <>/\\'\"\n\t.,;:!?-_é中"
    junk += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 60))) for _ in range(300)]
    # grammar words with wrong or mixed-up names
    words = ["go to", "take", "from", "move", "to", "open", "close", "heat", "cool", "clean", "with", "slice",
             "use", "examine", "apple 1", "fridge 1", "countertop 1", "kitchen", "desklamp 1", "knife 1"]
    junk += [" ".join(rng.choice(words) for _ in range(rng.randrange(1, 6))) for _ in range(300)]
    before = env.snapshot()
    for action in junk:
        obs, reward, terminated, truncated, info = env.step(action)  # type: ignore[arg-type]
        assert isinstance(obs, str) and obs
        if info["invalid_action"]:
            assert obs == NOTHING and reward == 0.0
        if terminated or truncated:
            env.restore(before)
    env.restore(before)
    assert env.step(None)[0] == NOTHING  # type: ignore[arg-type]


def test_admissible_commands_are_exactly_the_ones_that_change_something() -> None:
    """Every admissible command does something; every grammar command outside the list that changes the state
    is a bug. Checked over random walks with an exhaustive command set per state."""
    rng = random.Random(2)
    for seed in range(25):
        env = HouseholdEnv(rooms=1 + seed % 2, clutter=6)
        obs, info = env.reset(seed=seed)
        house = env.house
        names = [r.name for r in house.receptacles] + [i.name for i in house.items] + list(house.rooms)
        for _ in range(12):
            state = env.state
            admissible = set(info["admissible_actions"])
            for cmd in admissible:
                new, text = house.apply(state, parse_command(cmd))
                assert text != NOTHING, (seed, cmd)
            candidates = [f"go to {n}" for n in names] + [f"{v} {n}" for v in ("open", "close", "use") for n in names]
            candidates += [f"{v} {a} {p} {b}" for v, p in (("take", "from"), ("move", "to"), ("heat", "with"),
                           ("cool", "with"), ("clean", "with"), ("slice", "with"))
                           for a in names[:: max(1, len(names) // 12)] + [i.name for i in house.items]
                           for b in [r.name for r in house.receptacles] + [i.name for i in house.items]
                           if rng.random() < 0.05]
            for cmd in candidates:
                new, _ = house.apply(state, parse_command(cmd))
                if new != state:
                    assert cmd in admissible, (seed, cmd)
            obs, _, terminated, _, info = env.step(rng.choice(sorted(admissible)))
            if terminated:
                break


def test_alfworld_text_and_tolerant_parsing() -> None:
    env = HouseholdEnv()
    obs, info = env.reset(seed=1)
    plan = info["privileged"]["solution"]
    first = plan[0]
    assert first.startswith("go to ")
    # the same command in looser spellings
    recep = first[len("go to ") :]
    for spelling in (f"Go to {recep.title()}.", f"<action>go to {recep}</action>", f"go to {recep.replace(' ', '')}"):
        assert parse_command(spelling) == parse_command(first)
    obs, *_ = env.step(first)
    assert obs.startswith(f"You arrive at {recep}. ")
    assert env.step("inventory")[0] == "You are not carrying anything."
    assert env.step(first)[0] == NOTHING  # already there
    assert "go to (receptacle)" in env.step("help")[0]
    assert parse_command("put apple 1 in/on fridge 1") == Command("move", "apple 1", "fridge 1")
    assert parse_command("take apple1 from countertop1") == Command("take", "apple 1", "countertop 1")


def _find(task_type: str, rooms: int = 1) -> HouseholdEnv:
    env = HouseholdEnv(task_types=(task_type,), rooms=rooms)
    env.reset(seed=0)
    return env


@pytest.mark.parametrize("task_type", [t for t in TASK_TYPES if t.startswith("pick_") and "then" in t])
def test_skipping_the_processing_step_fails(task_type: str) -> None:
    """Placing a dirty (cold, warm) object does not count; the expert's plan with the step does."""
    env = _find(task_type)
    plan = env.privileged_info()["solution"]
    verb = {"clean": "clean ", "heat": "heat ", "cool": "cool "}[task_type.split("_")[1]]
    wrong = [c for c in plan if not c.startswith(verb)]
    assert len(wrong) == len(plan) - 1
    info = {}
    for c in wrong:
        *_, info = env.step(c)
    assert not info["success"]
    # after the wrong plan, the expert takes the object back out, processes it and delivers it
    while not info["success"]:
        *_, info = env.step(info["privileged"]["expert_action"])
    assert info["success"]


def test_look_needs_the_lamp_on_and_the_object_in_hand() -> None:
    env = _find(LOOK)
    plan = env.privileged_info()["solution"]
    assert plan[-1].startswith("use desklamp")
    info = {}
    for c in plan[:-1]:
        *_, info = env.step(c)
    assert not info["success"]
    obs, reward, terminated, _, info = env.step(plan[-1])
    assert info["success"] and terminated and reward == 1.0 and obs.startswith("You turn on the desklamp")


def test_pick_two_needs_two_in_the_same_receptacle() -> None:
    env = _find("pick_two_obj_and_place")
    house = env.house
    obj = house.task.obj
    assert sum(i.kind == obj for i in house.items) >= 2
    moves = [c for c in env.privileged_info()["solution"] if c.startswith("move ")]
    assert len(moves) == 2 and moves[0].split(" to ")[1] == moves[1].split(" to ")[1]


def test_slice_and_objects_affordances() -> None:
    house = generate(0, HouseholdConfig(task_types=("pick_heat_then_place_in_recep",)), "seen")
    assert OBJECTS[house.task.obj].heatable
    assert house.task.description.startswith(("put a hot", "heat some"))


def test_snapshot_restore_replays_exactly() -> None:
    env = HouseholdEnv(rooms=2)
    obs, info = env.reset(seed=8)
    env.step(info["privileged"]["expert_action"])
    snap = env.snapshot()
    actions = [*info["privileged"]["solution"][1:], "look", "inventory"]
    first = [env.step(a) for a in actions]
    env.restore(snap)
    second = [env.step(a) for a in actions]
    assert [r[:4] for r in first] == [r[:4] for r in second]


def test_bad_options_name_the_field() -> None:
    with pytest.raises(ValueError, match="rooms"):
        HouseholdEnv(rooms=9)
    with pytest.raises(ValueError, match="task_types"):
        HouseholdEnv(task_types=("cook_dinner",))
    with pytest.raises(ValueError, match="pool"):
        HouseholdEnv(pool="valid")
    with pytest.raises(ValueError, match="colour"):
        HouseholdEnv().reset(seed=0, options={"colour": 1})


def test_privileged_off_still_has_an_expert() -> None:
    env = HouseholdEnv(privileged=False)
    obs, info = env.reset(seed=4)
    assert info["privileged"] == {}
    while True:
        obs, reward, terminated, truncated, info = env.step(env.expert_action())
        if terminated or truncated:
            break
    assert info["success"]


def test_step_limit_truncates() -> None:
    env = HouseholdEnv(max_steps=3)
    env.reset(seed=0)
    results = [env.step("look") for _ in range(3)]
    assert results[-1][3] and not results[-1][2]
    assert expert_plan(env.house, env.house.start)
