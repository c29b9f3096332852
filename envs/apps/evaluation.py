"""State-based grading, in AppWorld's manner: diff the apps' state before and after the episode, require the
changes the task asks for, fail on any other change (collateral damage), and compare the answer.

State shape (see `world.py`): `{app: {table: [record, ...]}}` where every record has a unique int "id"; keys that
start with "_" (`_supervisor`, `_meta`) are bookkeeping and never diffed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Change:
    """One record that differs between two states."""

    app: str
    table: str
    id: int
    kind: str  # "added", "removed" or "changed"
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None

    @property
    def fields(self) -> frozenset[str]:
        """The fields whose values differ (every field for an added or removed record)."""
        a, b = self.before or {}, self.after or {}
        return frozenset(k for k in set(a) | set(b) if a.get(k) != b.get(k))

    def describe(self) -> str:
        what = f"{self.app}.{self.table} #{self.id}"
        if self.kind == "changed":
            return f"{what} changed ({', '.join(sorted(self.fields))})"
        return f"{what} {self.kind}"


def diff_states(before: Mapping[str, Any], after: Mapping[str, Any],
                ignore: Iterable[tuple[str, str, str]] = ()) -> list[Change]:
    """Every record added, removed or changed between two states, by (app, table, id), in a stable order.

    `ignore`: (app, table, field) triples whose changes do not count (bookkeeping such as a "read" flag that
    reading an email sets); a record whose only differences are ignored fields is unchanged.
    """
    ignored: dict[tuple[str, str], set[str]] = {}
    for app, table, name in ignore:
        ignored.setdefault((app, table), set()).add(name)
    out: list[Change] = []
    for app in sorted(set(before) | set(after)):
        if app.startswith("_"):
            continue
        a_app, b_app = before.get(app) or {}, after.get(app) or {}
        if not isinstance(a_app, Mapping) or not isinstance(b_app, Mapping):
            continue
        for table in sorted(set(a_app) | set(b_app)):
            a_rows, b_rows = a_app.get(table), b_app.get(table)
            if not isinstance(a_rows or [], list) or not isinstance(b_rows or [], list):
                if a_rows != b_rows:  # a scalar setting of the app (e.g. a default card)
                    out.append(Change(app, table, -1, "changed", {"value": a_rows}, {"value": b_rows}))
                continue
            skip = ignored.get((app, table), set())
            a_by = {r["id"]: r for r in a_rows or [] if isinstance(r, Mapping) and "id" in r}
            b_by = {r["id"]: r for r in b_rows or [] if isinstance(r, Mapping) and "id" in r}
            for rid in sorted(set(a_by) | set(b_by), key=lambda x: (str(type(x)), x)):
                ra, rb = a_by.get(rid), b_by.get(rid)
                if ra is None:
                    out.append(Change(app, table, rid, "added", None, rb))
                elif rb is None:
                    out.append(Change(app, table, rid, "removed", ra, None))
                elif any(ra.get(k) != rb.get(k) for k in (set(ra) | set(rb)) - skip):
                    out.append(Change(app, table, rid, "changed", ra, rb))
    return out


@dataclass(frozen=True)
class Expect:
    """A change the task requires: `count` changes of `kind` in `app.table` for which `where(change)` holds.

    `fields`: for "changed", the fields allowed to differ (others changing is collateral); None allows any.
    """

    app: str
    table: str
    kind: str
    where: Callable[[Change], bool] = lambda c: True
    count: int = 1
    fields: frozenset[str] | None = None
    label: str = ""

    def matches(self, c: Change) -> bool:
        if (c.app, c.table, c.kind) != (self.app, self.table, self.kind):
            return False
        if self.fields is not None and c.kind == "changed" and not c.fields <= self.fields:
            return False
        try:
            return bool(self.where(c))
        except (KeyError, TypeError, ValueError, AttributeError):
            return False


@dataclass
class Verdict:
    """The grade of one episode: success when no check failed."""

    failures: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return not self.failures


def check_changes(changes: list[Change], expects: Iterable[Expect]) -> list[str]:
    """Failures: each expectation must be met exactly `count` times; every other change is collateral."""
    failures: list[str] = []
    used: set[int] = set()
    for exp in expects:
        hits = [k for k, c in enumerate(changes) if k not in used and exp.matches(c)]
        if len(hits) < exp.count:
            failures.append(f"missing: {exp.label or f'{exp.kind} {exp.app}.{exp.table}'} "
                            f"(expected {exp.count}, found {len(hits)})")
        used.update(hits[: exp.count])
    for k, c in enumerate(changes):
        if k not in used:
            failures.append(f"collateral change: {c.describe()}")
    return failures


def normalize_answer(value: Any) -> Any:
    """Answers compare loosely: strings case- and space-insensitively, numbers as floats, lists as sorted."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = " ".join(value.strip().lower().split()).rstrip(".")
        try:
            return float(text.replace(",", "").lstrip("$"))
        except ValueError:
            return text
    if isinstance(value, list | tuple):
        items = [normalize_answer(v) for v in value]
        try:
            return sorted(items, key=lambda v: (str(type(v)), v))
        except TypeError:
            return items
    return value


def answers_match(given: Any, expected: Any, *, tol: float = 0.01) -> bool:
    a, b = normalize_answer(given), normalize_answer(expected)
    if isinstance(a, bool) or isinstance(b, bool):  # True is not 1
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, abs_tol=tol)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(answers_match(x, y, tol=tol) for x, y in zip(a, b, strict=True))
    return a == b


def grade(before: Mapping[str, Any], after: Mapping[str, Any], *, expects: Iterable[Expect] = (),
          answer: Any = None, check_answer: bool = False,
          ignore: Iterable[tuple[str, str, str]] = ()) -> Verdict:
    """Grade an episode: the task must be completed, the required changes made and nothing else touched, and
    (when `check_answer`) the answer given to `complete_task` must match `answer`."""
    changes = diff_states(before, after, ignore)
    failures: list[str] = []
    sup = after.get("_supervisor") or {}
    if not sup.get("completed"):
        failures.append("the task was not marked complete (apis.supervisor.complete_task)")
    if check_answer and not answers_match(sup.get("answer"), answer):
        failures.append(f"wrong answer: {sup.get('answer')!r}")
    failures += check_changes(changes, expects)
    return Verdict(failures, changes)
