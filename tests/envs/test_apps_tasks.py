"""Apps task templates and grading: every template's ground-truth program succeeds over many seeds; perturbed
programs (a wrong answer, a missing change, a collateral change) fail; the grader's parts on hand-made states."""

from __future__ import annotations

import copy
import random
from collections import Counter

import pytest

from distillgym.envs.apps.api import make_apis
from distillgym.envs.apps.evaluation import Change, Expect, answers_match, check_changes, diff_states, grade
from distillgym.envs.apps.tasks import TEMPLATES, Task
from distillgym.envs.apps.world import generate_world

SEEDS = range(25)


def _pose(name: str, seed: int) -> tuple[dict, Task] | None:
    world = generate_world(seed)
    task = TEMPLATES[name].make(random.Random(seed), copy.deepcopy(world))
    return None if task is None else (world, task)


def _run(world: dict, code: str) -> dict:
    """Run a program in process (the env runs it in the sandbox; see test_apps_env for that path)."""
    state = copy.deepcopy(world)
    exec(compile(code, "<solution>", "exec"), {"apis": make_apis(state)})
    return state


def _grade(world: dict, task: Task, state: dict) -> bool:
    return grade(world, state, expects=task.expects, answer=task.answer, check_answer=task.check_answer,
                 ignore=task.ignore).success


def test_templates_cover_three_levels_and_pools() -> None:
    assert len(TEMPLATES) >= 30
    levels = Counter((t.pool, t.difficulty) for t in TEMPLATES.values())
    for pool in ("train", "dev", "test"):
        for level in (1, 2, 3):
            assert levels[(pool, level)] >= 1, (pool, level)
    apps = {a for t in TEMPLATES.values() for a in t.apps}
    assert len(apps) >= 8


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_expert_solves_every_seed(name: str) -> None:
    posed = 0
    for seed in SEEDS:
        got = _pose(name, seed)
        if got is None:
            continue
        world, task = got
        posed += 1
        state = _run(world, task.solution)
        verdict = grade(world, state, expects=task.expects, answer=task.answer, check_answer=task.check_answer,
                        ignore=task.ignore)
        assert verdict.success, (seed, task.instruction, verdict.failures)
    assert posed >= len(SEEDS) // 2, f"{name} posed only {posed} of {len(SEEDS)} tasks"


def _before_completion(code: str, extra: str) -> str:
    lines = code.rstrip().splitlines()
    assert lines[-1].startswith("apis.supervisor.complete_task(")
    return "\n".join([*lines[:-1], extra, lines[-1]])


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_perturbed_solutions_fail(name: str) -> None:
    """From the real program: a collateral change, a wrong answer or a missing change each fail the task."""
    for seed in range(6):
        got = _pose(name, seed)
        if got is None:
            continue
        world, task = got
        # collateral: an extra note, or deleting an unrelated email
        stray = _before_completion(task.solution, "apis.notes.create_note(title='stray', content='x')")
        assert not _grade(world, task, _run(world, stray)), (seed, "extra note passed")
        victim = max(e["id"] for e in world["mail"]["emails"])
        deleting = _before_completion(task.solution, f"apis.mail.delete_email(email_id={victim})")
        assert not _grade(world, task, _run(world, deleting)), (seed, "deleted email passed")
        if task.check_answer:
            wrong = task.answer + 1 if isinstance(task.answer, int | float) else f"not {task.answer}"
            lines = task.solution.rstrip().splitlines()
            code = "\n".join([*lines[:-1], f"apis.supervisor.complete_task(answer={wrong!r})"])
            assert not _grade(world, task, _run(world, code)), (seed, "wrong answer passed")
        else:  # an action task: doing nothing but completing fails
            assert not _grade(world, task, _run(world, "apis.supervisor.complete_task()")), seed
        # not marking the task complete fails even with the right changes
        lines = task.solution.rstrip().splitlines()
        assert not _grade(world, task, _run(world, "\n".join(lines[:-1]))), (seed, "incomplete passed")


def test_diff_states_hand_made() -> None:
    a = {"_meta": {"now": 1}, "x": {"t": [{"id": 1, "v": 1, "read": False}, {"id": 2, "v": 2}], "acct": {"b": 1}}}
    b = copy.deepcopy(a)
    b["_meta"]["now"] = 2  # bookkeeping: never diffed
    assert diff_states(a, b) == []
    b["x"]["t"][0]["read"] = True
    assert [c.kind for c in diff_states(a, b)] == ["changed"]
    assert diff_states(a, b, ignore=[("x", "t", "read")]) == []
    b["x"]["t"].append({"id": 3, "v": 3})
    del b["x"]["t"][1]
    b["x"]["acct"] = {"b": 2}
    kinds = sorted((c.table, c.id, c.kind) for c in diff_states(a, b, ignore=[("x", "t", "read")]))
    assert kinds == [("acct", -1, "changed"), ("t", 2, "removed"), ("t", 3, "added")]


def test_check_changes_counts_and_collateral() -> None:
    changes = [Change("m", "e", i, "changed", {"s": False}, {"s": True}) for i in (1, 2)]
    want = Expect("m", "e", "changed", lambda c: c.after["s"] is True, count=2, fields=frozenset({"s"}))
    assert check_changes(changes, [want]) == []
    assert check_changes(changes[:1], [want])[0].startswith("missing")
    extra = [*changes, Change("m", "e", 3, "removed", {"s": False}, None)]
    assert check_changes(extra, [want]) == ["collateral change: m.e #3 removed"]
    other_field = [Change("m", "e", 1, "changed", {"s": False, "f": 1}, {"s": True, "f": 2}), changes[1]]
    assert check_changes(other_field, [want])[0].startswith("missing")  # a field outside `fields` changed


@pytest.mark.parametrize(
    ("given", "expected", "same"),
    [("+1-555", "+1-555", True), (" Room 4B. ", "room 4b", True), ("$1,234.50", 1234.5, True), (3, 3.004, True),
     (3, 3.02, False), ([2, 1], [1.0, 2.0], True), (["a"], ["a", "b"], False), (None, 0, False), ("7", 7, True),
     (True, 1, False)],
)
def test_answers_match(given: object, expected: object, same: bool) -> None:
    assert answers_match(given, expected) is same
