"""A tiny app factory for the sandbox tests (the real apps live in distillgym.envs.apps.api).

`make_apis(state)` gives `apis.counter` (increment/value/add_item), `apis.supervisor.complete_task(answer)` and
`apis.debug`, whose endpoints do what agent code should never manage on its own (app code is not subject to the
Python-level checks, only to the audit hook and the kernel limits): kill the interpreter, corrupt the channel, read
the worker's environment, fork, run a shell, eval, open a socket. They run inside the worker like any app code.
"""

from __future__ import annotations

import os
import sys
from typing import Any


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
        return self._state.get("counter", 0)

    def add_item(self, item: Any) -> int:
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
    def abort(self) -> None:
        """Kill the worker the hard way (SIGABRT): a stand-in for a segfault."""
        os.abort()

    def forge_reply(self, payload: str) -> None:
        """Write a frame of raw bytes to the parent, as a compromised worker could, then die."""
        main = sys.modules["__main__"]
        data = payload.encode("latin-1")
        fd = main.CHANNEL[1]
        os.write(fd, len(data).to_bytes(4, "big") + data)
        os.abort()

    def environ(self) -> dict[str, str]:
        return dict(os.environ)

    def cwd_listing(self) -> list[str]:
        return os.listdir(".")  # audited: must be denied

    def fork(self) -> int:
        pid = os.fork()  # audited: must be denied
        if pid == 0:
            os._exit(0)
        return pid

    def system(self, command: str) -> int:
        return os.system(command)  # audited: must be denied

    def run_eval(self, source: str) -> object:
        return eval(source)  # compiling is allowed, running the code object is not

    def connect(self, port: int) -> None:
        import socket  # a new import: denied

        socket.create_connection(("127.0.0.1", port), timeout=1)

    def modules_loaded(self, names: list[str]) -> list[str]:
        return [n for n in names if n in sys.modules]

    def grow_state(self, n: int) -> None:
        self_state = self._state
        self_state["blob"] = "x" * n

    def __init__(self, state: dict[str, Any]) -> None:
        self._state = state


class Apis:
    def __init__(self, state: dict[str, Any]) -> None:
        self.counter = _Counter(state)
        self.supervisor = _Supervisor(state)
        self.debug = _Debug(state)


def make_apis(state: dict[str, Any]) -> Apis:
    return Apis(state)


def broken_factory(state: dict[str, Any]) -> Apis:
    raise RuntimeError("this factory always fails")
