"""Task templates: a template turns a seeded world into a task (instruction, ground-truth solution program,
state-based checks). Templates register themselves with `@template(...)`; `TEMPLATES` holds them by name."""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from distillgym.envs.apps.evaluation import Expect

POOLS: tuple[str, ...] = ("train", "dev", "test")


@dataclass(frozen=True)
class Task:
    """One task instance: what the agent is told, the expert's program, and how the final state is graded."""

    template: str
    difficulty: int
    instruction: str
    solution: str  # a Python cell over `apis` that solves the task and calls apis.supervisor.complete_task
    expects: tuple[Expect, ...] = ()  # the changes the task requires; any other change fails it
    answer: Any = None
    check_answer: bool = False  # the task asks a question: the answer given to complete_task must match
    ignore: tuple[tuple[str, str, str], ...] = ()  # (app, table, field) changes that never count


@dataclass(frozen=True)
class Template:
    name: str
    difficulty: int  # 1: one app, a lookup or one change; 2: a few calls or a filter; 3: multi-app workflows
    apps: tuple[str, ...]
    make: Callable[[random.Random, dict], Task | None]  # None when this world cannot pose the task
    pool: str = field(default="train")


TEMPLATES: dict[str, Template] = {}


def pool_of(name: str) -> str:
    """The fixed pool of a template name: about 60% train, 20% dev, 20% test (a hash, stable across machines)."""
    h = zlib.crc32(name.encode()) % 5
    return "dev" if h == 0 else "test" if h == 1 else "train"


MakeFn = Callable[[random.Random, dict], Task | None]


def template(name: str, difficulty: int, apps: tuple[str, ...], *, pool: str | None = None
             ) -> Callable[[MakeFn], MakeFn]:
    """Register a task template function `make(rng, world) -> Task | None` under `name`."""
    if difficulty not in (1, 2, 3):
        raise ValueError(f"difficulty must be 1, 2 or 3, got {difficulty}")

    def register(fn: MakeFn) -> MakeFn:
        if name in TEMPLATES:
            raise ValueError(f"duplicate task template {name!r}")
        TEMPLATES[name] = Template(name, difficulty, apps, fn, pool or pool_of(name))
        return fn

    return register
