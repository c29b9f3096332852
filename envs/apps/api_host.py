"""The parent's side of a cell's api calls: each call the worker forwards runs here, on a working copy of the state,
and the copy stands only if the cell's result commits it (the worker never holds the state)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distillgym.envs.apps.worker.wire import dumps
from distillgym.envs.apps.worker_process import WorkerDead


def copy_json(obj: Any) -> Any:
    """A copy of JSON data (dicts and lists copied, immutable leaves shared)."""
    t = type(obj)
    if t is dict:
        return {k: copy_json(v) for k, v in obj.items()}
    if t is list:
        return [copy_json(v) for v in obj]
    return obj


def json_depth_ok(obj: Any, limit: int) -> bool:
    """Whether JSON data nests at most `limit` containers deep (iterative: deep data cannot exhaust the stack)."""
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        t = type(item)
        if t is dict or t is list:
            if depth > limit:
                return False
            stack.extend((v, depth + 1) for v in (item.values() if t is dict else item))
    return True


class Cell:
    """The parent's side of one cell: the state it started from and the working copy its api calls change."""

    def __init__(self, state: dict[str, Any], seq: int) -> None:
        self.state = state
        self.seq = seq
        self.work: dict[str, Any] | None = None
        self.apis: Any = None
        self.calls = 0
        self.too_big = False


class ApiHost:
    """Runs the api calls of cells on working copies of their states, with the sandbox's limits."""

    def __init__(self, factory: Callable[[dict], Any], catalog: dict[str, dict[str, Any]], *, max_api_calls: int,
                 state_mb: float) -> None:
        self.factory = factory
        self.catalog = catalog
        self.max_api_calls = max_api_calls
        self.state_mb = state_mb
        self.state_max_bytes = int(state_mb * (1 << 20))
        # An unchanged working copy of the last state (and its apis), reused by the next cell on that same state:
        # read-only cells then cost no copy. Checked equal to the state before each reuse.
        self._spare: tuple[dict[str, Any], dict[str, Any], Any] | None = None

    def keep_spare(self, cell: Cell, new_state: dict[str, Any] | None) -> None:
        """After a cell: keep its working copy for the next cell when the copy is still pristine."""
        if new_state is cell.state and cell.work is not None:
            self._spare = (cell.state, cell.work, cell.apis)

    def commit(self, cell: Cell, kind: str | None, message: str) -> tuple[dict[str, Any] | None, str | None, str]:
        """The state after a cell whose effects stand: the input itself when its calls changed nothing."""
        if cell.work is None or cell.work == cell.state:
            return cell.state, kind, message
        size = None if cell.too_big else len(dumps(cell.work))
        if size is None or size > self.state_max_bytes:
            shown = f"{size >> 20} MB" if size is not None else "too large"
            return None, "state_limit", (f"Your code made the app state too large ({shown}; the limit is "
                                         f"{self.state_mb:g} MB).")
        return cell.work, kind, message

    def serve(self, cell: Cell, message: dict[str, Any]) -> bytes:
        """Run one api call from the worker on the cell's working copy; the reply frame's JSON."""
        if message.get("seq") != cell.seq:
            raise WorkerDead("a call for another request")
        app, api, args, kwargs = message.get("app"), message.get("api"), message.get("args"), message.get("kwargs")
        if type(app) is not str or type(api) is not str or type(args) is not list or type(kwargs) is not dict:
            raise WorkerDead("malformed api call")
        cell.calls += 1
        spec = self.catalog.get(app)
        if spec is None or api not in spec["apis"]:  # only the catalog's endpoints are callable, nothing else
            return self._raise(cell, "ApiAttributeError", f"There is no api apis.{app:.100}.{api:.100}.")
        if cell.calls > self.max_api_calls:
            return self._raise(cell, "ApiError", f"More than {self.max_api_calls:,} api calls in one cell; "
                                                 "split the work over several cells.")
        if cell.too_big:
            return self._raise(cell, "ApiError", "The app state is over its size limit; this cell's changes will be "
                                                 "undone.")
        if not json_depth_ok([args, kwargs], 32):
            return self._raise(cell, "ApiError", f"The arguments of apis.{app}.{api} are nested too deeply.")
        try:
            if cell.apis is None:
                self._working_copy(cell)
            value = getattr(getattr(cell.apis, app), api)(*args, **kwargs)
        except Exception as exc:  # the app's own error (ApiError), or a bad call (TypeError)
            text = str(exc)
            return self._raise(cell, type(exc).__name__, text if len(text) <= 4000 else text[:4000] + "...")
        if cell.calls % 64 == 0 and len(dumps(cell.work)) > self.state_max_bytes:
            cell.too_big = True
        try:
            return dumps({"op": "return", "seq": cell.seq, "value": value})
        except (TypeError, ValueError, RecursionError):
            return self._raise(cell, "TypeError", f"apis.{app}.{api} returned something that is not JSON.")

    def _working_copy(self, cell: Cell) -> None:
        """The state the cell's calls change: the spare copy when it is still equal to the cell's state."""
        spare, self._spare = self._spare, None
        if spare is not None and spare[0] is cell.state and spare[1] == cell.state:
            cell.work, cell.apis = spare[1], spare[2]
            return
        cell.work = copy_json(cell.state)
        cell.apis = self.factory(cell.work)

    @staticmethod
    def _raise(cell: Cell, kind: str, message: str) -> bytes:
        return dumps({"op": "raise", "seq": cell.seq, "type": kind, "message": message})
