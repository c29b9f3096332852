"""What the task templates share: the world's user and clock, lookups, and the expectations a task checks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from distillgym.envs.apps.evaluation import Change, Expect
from distillgym.envs.apps.tasks.base import Task

# a helper every solution may start with: all pages of a paginated endpoint

FETCH = """def fetch(fn, **kw):
    out, page = [], 0
    while True:
        batch = fn(page_index=page, page_limit=20, **kw)
        out += batch
        if len(batch) < 20:
            return out
        page += 1
"""
MONEY_BOOKKEEPING = (("payments", "accounts", "balance"), ("payments", "cards", "balance"))


def _me(w: dict) -> dict:
    return w["_supervisor"]["profile"]


def _now(w: dict) -> datetime:
    return datetime.fromisoformat(w["_meta"]["now"])


def _contacts(w: dict, rel: str | None = None) -> list[dict]:
    return [c for c in w["contacts"]["contacts"] if rel is None or rel in c.get("relationships", [])]


def _unique(rows: list[dict], key: str) -> list[dict]:
    """Rows whose `key` value no other row shares (so a task can name one unambiguously)."""
    counts = Counter(r.get(key) for r in rows)
    return [r for r in rows if counts[r.get(key)] == 1 and r.get(key)]


def _q(text: str) -> str:
    return repr(text)


def _task(name: str, level: int, instruction: str, solution: str, **kw: Any) -> Task:
    return Task(template=name, difficulty=level, instruction=instruction, solution=solution, **kw)


def _added(
    app: str, table: str, where: Callable[[Change], bool] = lambda c: True, count: int = 1, label: str = ""
) -> Expect:
    return Expect(app, table, "added", where, count, None, label)


def _changed(
    app: str,
    table: str,
    where: Callable[[Change], bool] = lambda c: True,
    count: int = 1,
    fields: set[str] | None = None,
    label: str = "",
) -> Expect:
    return Expect(app, table, "changed", where, count, None if fields is None else frozenset(fields), label)


def _removed(
    app: str, table: str, where: Callable[[Change], bool] = lambda c: True, count: int = 1, label: str = ""
) -> Expect:
    return Expect(app, table, "removed", where, count, None, label)


def _after(c: Change, key: str) -> Any:
    """The changed row's value of `key` after the change (None where it has none)."""
    return (c.after or {}).get(key)
