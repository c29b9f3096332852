"""A tiny app factory for the sandbox tests (the real apps live in distillgym.envs.apps.api).

`make_apis(state)` gives `apis.counter` (increment/value/add_item), `apis.supervisor.complete_task(answer)` and
`apis.debug`. Like every factory it runs in the parent (the trainer's process), on a working copy of the state; the
worker only forwards calls. `apis.debug.kill_worker(signum)` sends a signal to the worker named by `WORKER_PID`
(set by a test) in the middle of a cell, as a crash of the interpreter would look from the parent.
"""

from __future__ import annotations

import os
from typing import Any

WORKER_PID: list[int] = []


class _Counter:
    def __init__(self, state: dict[str, Any]) -> None:
        self._state = state

    def increment(self, by: int = 1) -> int:
        """Add `by` (a positive int) to the counter and return it."""
        if not isinstance(by, int) or by <= 0:
            raise ValueError("by must be a positive int")
        self._state["counter"] = self._state.get("counter", 0) + by
        return self._state["counter"]

    def value(self) -> int:
        """The counter."""
        return self._state.get("counter", 0)

    def add_item(self, item: Any) -> int:
        """Append `item` to the list of items; returns how many there are."""
        self._state.setdefault("items", []).append(item)
        return len(self._state["items"])


class _Supervisor:
    def __init__(self, state: dict[str, Any]) -> None:
        self._state = state

    def complete_task(self, answer: Any = None) -> dict[str, Any]:
        sup = self._state.setdefault("_supervisor", {})
        sup["completed"] = True
        sup["answer"] = answer
        return {"completed": True, "answer": answer}


class _Debug:
    def __init__(self, state: dict[str, Any]) -> None:
        self._state = state

    def kill_worker(self, signum: int = 9) -> None:
        """Send `signum` to the worker (WORKER_PID[0]) from the parent, mid-cell."""
        os.kill(WORKER_PID[0], signum)

    def grow_state(self, n: int) -> None:
        """Add a string of `n` characters to the state."""
        self._state["blob"] = "x" * n


class Apis:
    def __init__(self, state: dict[str, Any]) -> None:
        self.counter = _Counter(state)
        self.supervisor = _Supervisor(state)
        self.debug = _Debug(state)


def make_apis(state: dict[str, Any]) -> Apis:
    return Apis(state)


def broken_factory(state: dict[str, Any]) -> Apis:
    raise RuntimeError("this factory always fails")
