"""Run agent-written Python cells against the simulated apps, out of the trainer's process and privileges.

`Sandbox.run(code, state)` sends the cell to a long-lived worker process (the package `envs/apps/worker/`) and returns a
`RunResult` with the printed output, the new state and, when the cell failed, why. The worker never holds the app
state: `apis` in the cell is a proxy, and each `apis.<app>.<api>(...)` comes back over the channel to this process,
which runs the endpoint on its own working copy of the state and answers with the JSON result or the error. What is
graded (the state, the task, the completed flag) is therefore out of the agent code's reach, whatever it manages
inside the worker; a failed cell's working copy is dropped.

Layers, outermost first:
- OS (`isolation.py`, default "namespaces"): bubblewrap gives the worker its own mount, PID, IPC, network and UTS
  namespaces, uid 65534 without capabilities, a read-only root with only the system libraries and the interpreter,
  a private size-limited /tmp and a seccomp filter (no processes, sockets, mounts, ptrace...); it dies with this
  process and everything it starts dies with it. Lower levels ("netns", "none") only when asked for explicitly;
- parent: wall-time limit per run (the worker is killed and a fresh one started lazily), crash and malformed-message
  detection, output, call and state size caps, a cap on api calls per cell, respawn after a hook violation or a
  memory error;
- kernel limits set by the worker on itself: address space, CPU time (per cell, and a lifetime budget), file size 0,
  few open files, no core dumps, no processes;
- a PEP 578 audit hook that denies every audited operation (files, imports, os/subprocess/socket/ctypes, exec and
  compile of new code, frame introspection, ...) except a short allow-list, for the worker's whole life;
- Python level: each cell is parsed and checked (no `_` attributes, no dunder names, no frame/generator internals),
  runs with restricted builtins (`type` vets runtime class namespaces, `copy` copies plain data only) and can import
  only allow-listed modules, served as views without submodules.

Variables persist across the cells of one episode (like a notebook, and like AppWorld; a final bare expression is
displayed): `reset()` starts a new episode with a fresh namespace and, by default, a fresh interpreter (started in
the background). When the worker is restarted mid-episode (wall timeout, crash, memory, an audit-hook violation)
the variables are lost and the message says so; the app state is never lost, since the parent holds it.

Typical use: `box = Sandbox()`, `box.start()` once, then per episode `box.reset()` and `result = box.run(code,
state)` per cell, `state = result.state`, and `result.render()` as the observation; `box.close()` at the end.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import select
import shutil
import signal
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillgym.envs.apps.api_host import ApiHost, Cell
from distillgym.envs.apps.isolation import IsolationError, default_level, require
from distillgym.envs.apps.worker.policy import DEFAULT_ALLOWED_MODULES, KINDS
from distillgym.envs.apps.worker.wire import dumps, frame
from distillgym.envs.apps.worker_process import (
    SandboxStartError,
    WorkerDead,
    WorkerProcess,
    WorkerTimeout,
    build_catalog,
    launch,
    validate_reply,
)

__all__ = ["DEFAULT_ALLOWED_MODULES", "IsolationError", "Limits", "RunResult", "Sandbox", "SandboxStartError"]

log = logging.getLogger(__name__)

DEFAULT_FACTORY = "distillgym.envs.apps.api:make_apis"
WORKER_PATH = Path(__file__).with_name("worker")  # run as a directory: worker/__main__.py
RESTART_NOTE = "The Python interpreter was restarted, so your variables are gone (the app state is kept)."
UNDONE_NOTE = "Nothing this cell did to the apps was kept."
#: Every `RunResult.error` value (None on success).
ERROR_KINDS = frozenset(KINDS | {"timeout", "crash", "too_long"})
#: Whether a worker has started in this process (then a failed start is transient, not a setup problem).
_STARTED_HERE = threading.Event()


@dataclass(frozen=True)
class Limits:
    """Per-cell and per-worker limits."""

    cpu_s: float = 2.0  # CPU time of one cell (a CPU timer in the worker; RLIMIT_CPU a second later as backstop)
    wall_s: float = 5.0  # wall time of one run (the cell and the api calls it makes)
    memory_mb: int = 512  # address space of the worker (Python and the allowed modules take ~30 MB)
    output_chars: int = 20_000  # printed text kept per cell; the rest is counted and dropped
    recursion_limit: int = 1000
    max_code_chars: int = 20_000
    state_mb: float = 32.0  # largest app state (JSON); a cell that grows it past this is undone
    call_mb: float = 1.0  # largest arguments of one api call (JSON)
    max_api_calls: int = 10_000  # api calls in one cell; past it each call raises ApiError
    tmpfs_mb: int = 16  # the worker's private /tmp (isolation "namespaces"); the worker's file size limit is 0 anyway
    cpu_total_s: float = 120.0  # CPU budget of one worker (hard RLIMIT_CPU); it is replaced before running out
    max_runs: int = 500  # a worker that served this many cells is replaced at the next reset()
    # Replace a used worker after this many episodes (0: never). Whatever an agent changes in the interpreter
    # (random's seed, decimal's context, a class of an allowed module it monkeypatched) lives as long as the
    # worker; 1 gives every episode a fresh interpreter. The replacement starts in the background at reset().
    episodes_per_worker: int = 1
    start_timeout_s: float = 30.0  # worker start-up


@dataclass
class RunResult:
    """What one cell did.

    ok: the cell ran to completion (output may still be truncated: then error is "output_limit").
    error: None, or one of ERROR_KINDS: "exception", "syntax", "forbidden", "timeout", "memory", "crash",
        "output_limit", "state_limit", "too_long".
    message: why, for the agent ("" when ok and nothing to say).
    state: the new state when `committed` (the input dict itself when the cell changed nothing), else the unchanged
        input state.
    committed: whether this cell's changes to the apps were kept (also after an ordinary exception, like Python).
    restarted: the worker was restarted after this run, so the agent's variables are gone.
    api_calls: how many api calls the cell made.
    """

    output: str
    state: dict[str, Any]
    ok: bool
    error: str | None = None
    message: str = ""
    committed: bool = False
    truncated: bool = False
    restarted: bool = False
    elapsed_s: float = 0.0
    api_calls: int = 0

    def render(self) -> str:
        """Output and message as one observation for the agent (the exception line is not repeated)."""
        output, message = self.output.rstrip("\n"), self.message
        last = output.rsplit("\n", 1)[-1]
        if last and message.startswith(last):
            message = message[len(last):].strip()
        return "\n".join(p for p in (output, message) if p)


def load_factory(factory: str | Callable[[dict], Any]) -> Callable[[dict], Any]:
    """A factory given as a callable or as "module:function"."""
    if callable(factory):
        return factory
    module_name, sep, func_name = str(factory).partition(":")
    if not sep or not module_name or not func_name:
        raise ValueError(f"factory must be a callable or 'module:function', got {factory!r}")
    try:
        fn = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        raise SandboxStartError(f"the app factory {factory!r} cannot be loaded: {type(exc).__name__}: {exc}") from None
    if not callable(fn):
        raise SandboxStartError(f"the app factory {factory!r} is not callable")
    return fn


def _cleanup(holder: dict[str, Any]) -> None:
    """Finalizer: kill the worker and remove the temporary cwd (runs at GC or interpreter exit)."""
    proc = holder.get("proc")
    if proc is not None:
        proc.kill()
        holder["proc"] = None
    tmpdir = holder.get("tmpdir")
    if tmpdir and os.getpid() == holder.get("owner_pid"):
        shutil.rmtree(tmpdir, ignore_errors=True)
        holder["tmpdir"] = None


@dataclass
class SandboxStats:
    """Counters and timings, for benchmarks and logs."""

    spawns: int = 0
    runs: int = 0
    kills: int = 0
    api_calls: int = 0
    last_spawn_s: float = 0.0
    spawn_s_total: float = 0.0
    isolation: str = ""
    seccomp: bool = False
    worker_uid: int | None = None


class Sandbox:
    """Runs agent code cells in a jailed worker process and their api calls here; see the module docstring.

    Not thread-safe across concurrent `run`s by design of the protocol; a lock serialises them. One Sandbox per
    process (a forked child must create its own).
    """

    def __init__(
        self,
        factory: str | Callable[[dict], Any] = DEFAULT_FACTORY,
        limits: Limits | None = None,
        *,
        allowed_modules: tuple[str, ...] = DEFAULT_ALLOWED_MODULES,
        isolation: str | None = None,
    ) -> None:
        """factory: a callable, or "module:function", returning the apis object for a state dict; it runs here, in
        this process, on a working copy of the state (never in the worker).
        isolation: "namespaces" (bubblewrap; the default), "netns" or "none" (see `isolation.py`); None reads
        DISTILLGYM_SANDBOX_ISOLATION. A level that cannot run here raises IsolationError: it is never lowered.
        """
        self.factory = load_factory(factory)
        self.limits = limits or Limits()
        self.allowed_modules = tuple(allowed_modules)
        self.isolation = isolation or default_level()
        require(self.isolation)
        try:
            self.catalog = build_catalog(self.factory({}))
        except Exception as exc:
            raise SandboxStartError(f"the app factory failed: {type(exc).__name__}: {exc}") from None
        self.stats = SandboxStats(isolation=self.isolation)
        self._lock = threading.Lock()
        self._session = 0
        self._seq = 0
        self._owner_pid = os.getpid()
        self._holder: dict[str, Any] = {"proc": None, "tmpdir": None, "owner_pid": self._owner_pid}
        self._finalizer = weakref.finalize(self, _cleanup, self._holder)
        self._closed = False
        self._host = ApiHost(self.factory, self.catalog, max_api_calls=self.limits.max_api_calls,
                             state_mb=self.limits.state_mb)

    # --- lifecycle ----------------------------------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill the worker and remove its temporary directory (idempotent)."""
        with self._lock:
            self._closed = True
            self._finalizer()

    def start(self) -> float:
        """Start the worker now and wait until it is ready (else the first `run` does); returns the start-up time."""
        with self._lock:
            self._check_usable()
            self._ready_proc()
            return self.stats.last_spawn_s

    def reset(self) -> None:
        """A new episode: the next cell gets a fresh namespace and apis. A used worker due for replacement
        (`episodes_per_worker`, `max_runs`, half its CPU budget) is killed and a new one started in the background,
        so its start-up overlaps whatever the caller does before the next `run`.
        """
        with self._lock:
            self._check_usable()
            self._session += 1
            proc: WorkerProcess | None = self._holder["proc"]
            if proc is None:
                return
            proc.session_cells = 0
            proc.episodes += 1
            lim = self.limits
            if proc.runs and (proc.runs >= lim.max_runs or proc.cpu > lim.cpu_total_s / 2
                              or 0 < lim.episodes_per_worker <= proc.episodes):
                self._kill()
                try:
                    self._launch()
                except SandboxStartError:  # the next run starts one (or says why it cannot)
                    log.warning("sandbox worker could not be started in the background", exc_info=True)

    @property
    def worker_pid(self) -> int | None:
        """The current worker's pid as this process sees it (None when none is running or it is still starting)."""
        proc: WorkerProcess | None = self._holder["proc"]
        if proc is None:
            return None
        if proc.pid is None:  # bubblewrap writes it right after starting the worker
            with contextlib.suppress(WorkerTimeout, WorkerDead, OSError):
                proc.read_info(time.monotonic() + self.limits.start_timeout_s)
        return proc.pid

    def _check_usable(self) -> None:
        if self._closed:
            raise RuntimeError("Sandbox is closed")
        if os.getpid() != self._owner_pid:
            raise RuntimeError("Sandbox was created in another process (fork); create one per process")

    def _tmpdir(self) -> str:
        if not self._holder["tmpdir"]:
            self._holder["tmpdir"] = tempfile.mkdtemp(prefix="distillgym-sandbox-")
        return self._holder["tmpdir"]

    def _config(self, drop_to: tuple[int, int] | None) -> dict[str, Any]:
        lim = self.limits
        return {
            "catalog": self.catalog,
            "modules": list(self.allowed_modules),
            "memory_mb": int(lim.memory_mb),
            "cpu_s": float(lim.cpu_s),
            "cpu_total_s": float(lim.cpu_total_s),
            "recursion_limit": int(lim.recursion_limit),
            "output_chars": int(lim.output_chars),
            "call_max_bytes": int(lim.call_mb * (1 << 20)),
            "result_max_bytes": self._host.state_max_bytes + 65_536,
            "drop_to": list(drop_to) if drop_to else None,
        }

    def _launch(self) -> WorkerProcess:
        """Start a worker process in its jail (not waiting for it: see `_ready_proc`)."""
        proc, self.stats.seccomp = launch(self.isolation, WORKER_PATH, self._config, tmpfs_mb=self.limits.tmpfs_mb,
                                          cwd=self._tmpdir())
        self._holder["proc"] = proc
        return proc

    def _ready_proc(self) -> WorkerProcess:
        """The current worker, started if need be, after its hello (raises SandboxStartError if it fails).

        Once a worker has started in this process, a failed start is retried twice (a transient failure, e.g. a
        worker started in the background and killed from outside), so `run` raises only when workers cannot start
        at all.
        """
        for attempt in range(3):
            try:
                return self._ready_proc_once()
            except SandboxStartError:
                if attempt == 2 or not _STARTED_HERE.is_set():
                    raise
                log.warning("sandbox worker failed to start; retrying", exc_info=True)
        raise AssertionError("unreachable")

    def _ready_proc_once(self) -> WorkerProcess:
        proc: WorkerProcess | None = self._holder["proc"]
        if proc is not None and proc.ready and proc.popen.poll() is not None:  # died while idle (killed outside)
            self._kill()
            proc = None
        if proc is None:
            proc = self._launch()
        if proc.ready:
            return proc
        deadline = time.monotonic() + self.limits.start_timeout_s
        try:
            if proc.pending:
                proc.send(proc.pending, deadline)
                proc.pending = b""
            raw = proc.recv(deadline, 1 << 20)
            hello = json.loads(raw)
            proc.read_info(deadline)
        except (WorkerDead, WorkerTimeout, ValueError, OSError) as exc:
            self._kill()
            raise SandboxStartError(f"sandbox worker did not start ({type(exc).__name__}: {exc})") from None
        if not isinstance(hello, dict) or hello.get("ready") is not True:
            self._kill()
            error = hello.get("error") if isinstance(hello, dict) else None
            raise SandboxStartError(f"sandbox worker failed to start: {error or hello!r}")
        proc.ready = True
        _STARTED_HERE.set()
        elapsed = time.perf_counter() - proc.t0
        self.stats.spawns += 1
        self.stats.last_spawn_s = elapsed
        self.stats.spawn_s_total += elapsed
        if isinstance(hello.get("uid"), int):
            self.stats.worker_uid = hello["uid"]
        if hello.get("loaded"):
            log.debug("sandbox worker has %s loaded", hello["loaded"])
        return proc

    def _kill(self) -> int | None:
        proc: WorkerProcess | None = self._holder["proc"]
        self._holder["proc"] = None
        if proc is None:
            return None
        self.stats.kills += 1
        return proc.kill()

    # --- running ------------------------------------------------------------------------------------------------

    def run(self, code: str, state: dict[str, Any]) -> RunResult:
        """Run one cell against `state`; never raises for anything the code does, nor for a worker that dies or
        cannot be restarted once one has run here (a "crash" result says so); only for misuse and a first start
        that fails (SandboxStartError: a setup problem)."""
        if not isinstance(code, str):
            raise TypeError("code must be a str")
        if not isinstance(state, dict):
            raise TypeError("state must be a dict")
        with self._lock:
            self._check_usable()
            t0 = time.perf_counter()
            result = self._run(code, state)
            result.elapsed_s = time.perf_counter() - t0
            self.stats.runs += 1
            self.stats.api_calls += result.api_calls
            return result

    def _run(self, code: str, state: dict[str, Any]) -> RunResult:
        lim = self.limits
        if len(code) > lim.max_code_chars:
            return RunResult("", state, False, "too_long", f"Your code is {len(code):,} characters long; the limit "
                             f"is {lim.max_code_chars:,}. Nothing was run.")
        notes: list[str] = []
        proc: WorkerProcess | None = self._holder["proc"]
        if proc is not None and proc.cpu + lim.cpu_s + 1 >= lim.cpu_total_s:  # out of lifetime CPU: replace now
            if proc.session_cells:
                notes.append("Note: the Python interpreter was restarted before this cell (its CPU budget was "
                             "spent), so variables from earlier cells are gone.")
            self._kill()
            proc = None
        try:
            proc = self._ready_proc()
        except SandboxStartError as exc:
            if not _STARTED_HERE.is_set():  # no worker ever started in this process: a setup problem
                raise
            log.warning("sandbox worker could not be started: %s", exc)
            return self._failed(state, "crash", "The Python interpreter could not be started, so nothing ran; "
                                "run the cell again.", notes, 0)
        self._seq += 1
        cell = Cell(state, self._seq)
        request = frame(dumps({"op": "run", "code": code, "session": self._session, "seq": self._seq}))
        proc.runs += 1
        proc.session_cells += 1
        deadline = time.monotonic() + lim.wall_s
        max_in = max(self._header_max_bytes, int(lim.call_mb * (1 << 20)) + 4096)
        try:
            proc.send(request, deadline)
            while True:
                message = json.loads(proc.recv(deadline, max_in))
                if type(message) is dict and message.get("op") == "call":
                    proc.send(frame(self._host.serve(cell, message)), deadline)
                    continue
                head = validate_reply(message, self._seq)
                break
            if select.select([proc.rfd], [], [], 0)[0]:  # bytes beyond the reply (or EOF): not a sane worker
                raise WorkerDead("the worker sent more than one reply")
        except WorkerTimeout:
            self._kill()
            return self._failed(state, "timeout", f"Your code was stopped after {lim.wall_s:g} s of wall time "
                                "(the limit).", notes, cell.calls)
        except (WorkerDead, OSError, ValueError, RecursionError, TypeError) as exc:
            status = self._kill()
            how = ""
            if status is not None and status < 0:
                with contextlib.suppress(ValueError):
                    how = f" (killed by {signal.Signals(-status).name})"
            log.debug("sandbox worker failed: %s: %s", type(exc).__name__, exc)
            return self._failed(state, "crash", f"Your code crashed the Python interpreter{how}.", notes, cell.calls)
        proc.cpu = float(head["cpu"])
        kind: str | None = head["kind"]
        output: str = head["output"]
        if len(output) > lim.output_chars + 4096:  # the worker caps it; a broken worker might not
            output = output[: lim.output_chars] + "\n... [output truncated]"
        message_text = head["message"].replace("\x00", "\\x00")
        output = output.replace("\x00", "\\x00")  # text for a tokenizer (and Gymnasium's Text space): no NULs
        restarted = bool(head["restart"]) or kind == "crash"
        new_state: dict[str, Any] | None = None
        if head["commit"] and not restarted:
            new_state, kind, message_text = self._host.commit(cell, kind, message_text)
        self._host.keep_spare(cell, new_state)
        if restarted:
            self._kill()
            notes.append(RESTART_NOTE)
        if new_state is None and cell.work is not None:
            notes.append(UNDONE_NOTE)
        message = " ".join(p for p in (message_text, *notes) if p)
        ok = kind in (None, "output_limit")
        return RunResult(output, new_state if new_state is not None else state, ok, kind, message,
                         committed=new_state is not None, truncated=bool(head["truncated"]), restarted=restarted,
                         api_calls=cell.calls)

    @property
    def _header_max_bytes(self) -> int:
        # output (UTF-8, JSON-escaped: up to 6 bytes a character) plus the traceback and message
        return 6 * (self.limits.output_chars + 20_000) + 65_536

    def _failed(self, state: dict[str, Any], kind: str, message: str, notes: list[str], calls: int) -> RunResult:
        parts = [message, *notes, UNDONE_NOTE, RESTART_NOTE]
        return RunResult("", state, False, kind, " ".join(parts), committed=False, restarted=True, api_calls=calls)
