"""Run agent-written Python cells against the simulated apps, out of the trainer's process and privileges.

`Sandbox.run(code, state)` sends the cell to a long-lived worker process (`envs/apps/worker.py`) and returns a
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
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from distillgym.envs.apps.isolation import WORKER_DEST, IsolationError, Jail, default_level, require
from distillgym.envs.apps.worker import DEFAULT_ALLOWED_MODULES, FRAME_HEADER, KINDS, dumps, frame

__all__ = ["DEFAULT_ALLOWED_MODULES", "IsolationError", "Limits", "RunResult", "Sandbox", "SandboxStartError"]

log = logging.getLogger(__name__)

DEFAULT_FACTORY = "distillgym.envs.apps.api:make_apis"
WORKER_PATH = Path(__file__).with_name("worker.py")
RESTART_NOTE = "The Python interpreter was restarted, so your variables are gone (the app state is kept)."
UNDONE_NOTE = "Nothing this cell did to the apps was kept."
#: Every `RunResult.error` value (None on success).
ERROR_KINDS = frozenset(KINDS | {"timeout", "crash", "too_long"})
_CONFIG_INLINE_BYTES = 60_000
#: Whether a worker has started in this process (then a failed start is transient, not a setup problem).
_STARTED_HERE = threading.Event()  # a config frame this small fits the pipe's buffer: written at launch, never blocking


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


class SandboxStartError(RuntimeError):
    """The worker could not start (bad factory, isolation refused by the kernel): a setup problem, not the agent's."""


class _Dead(Exception):
    """The worker closed the channel or sent something malformed."""


class _Timeout(Exception):
    """No reply before the deadline."""


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


def build_catalog(apis: Any) -> dict[str, dict[str, Any]]:
    """What the worker's proxies know of an apis object: per app, its endpoints (name -> first doc line) and its
    plain public values (a description...). Names only: no state, no code."""
    catalog: dict[str, dict[str, Any]] = {}
    for app in dir(apis):
        if app.startswith("_"):
            continue
        obj = getattr(apis, app)
        names = {n for n in dir(obj) if not n.startswith("_")}
        with contextlib.suppress(TypeError):
            names |= {n for n in vars(obj) if not n.startswith("_")}
        spec: dict[str, Any] = {"apis": {}, "values": {}}
        for name in sorted(names):
            value = getattr(obj, name, None)
            if callable(value):
                doc = (getattr(value, "__doc__", None) or "").strip()
                spec["apis"][name] = doc.split("\n\n", 1)[0]
            else:
                with contextlib.suppress(TypeError, ValueError):
                    dumps(value)
                    spec["values"][name] = value
        catalog[app] = spec
    return catalog


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


class _Cell:
    """The parent's side of one cell: the state it started from and the working copy its api calls change."""

    def __init__(self, state: dict[str, Any], seq: int) -> None:
        self.state = state
        self.seq = seq
        self.work: dict[str, Any] | None = None
        self.apis: Any = None
        self.calls = 0
        self.too_big = False


class _Proc:
    """One worker process and its channel; `kill` is safe to call twice and from a finalizer."""

    def __init__(self, popen: subprocess.Popen[bytes], info_fd: int | None, pending: bytes) -> None:
        self.popen = popen
        self.owner_pid = os.getpid()
        self.rfd = popen.stdout.fileno()  # type: ignore[union-attr]
        self.wfd = popen.stdin.fileno()  # type: ignore[union-attr]
        os.set_blocking(self.wfd, False)  # writes wait in select with the cell's deadline, never forever
        self.info_fd = info_fd  # bubblewrap writes the worker's host pid here
        self.pending = pending  # the part of the config frame not written at launch
        self.pid = popen.pid if info_fd is None else None  # the worker's host pid (bubblewrap's child)
        self.pidfd: int | None = None
        self.runs = 0
        self.cpu = 0.0
        self.session_cells = 0
        self.episodes = 0
        self.ready = False  # the hello frame has been read
        self.t0 = time.perf_counter()

    def kill(self) -> int | None:
        """Kill the worker and its wrapper (bubblewrap), reap them, close the pipes; returns the exit status."""
        if os.getpid() != self.owner_pid:  # a forked child must not kill its parent's worker
            return None
        popen = self.popen
        if self.pidfd is not None:  # the worker itself (PID 1 of its namespace: everything in it dies too) ...
            with contextlib.suppress(ProcessLookupError, OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=5)  # ... then bubblewrap reaps it and exits
        if popen.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(popen.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                popen.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=10)
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                select.select([self.pidfd], [], [], 10)  # readable once the worker has exited
                os.close(self.pidfd)
            self.pidfd = None
        if self.info_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.info_fd)
            self.info_fd = None
        for pipe in (popen.stdin, popen.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()
        return popen.returncode

    def read_info(self, deadline: float) -> None:
        """The worker's host pid from bubblewrap's info fd, and a pidfd to kill it by."""
        if self.info_fd is None:
            if self.pid is not None and self.pidfd is None:
                with contextlib.suppress(OSError):
                    self.pidfd = os.pidfd_open(self.pid)
            return
        data = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.info_fd], [], [], remaining)[0]:
                raise _Timeout()
            chunk = os.read(self.info_fd, 4096)
            if not chunk:
                break
            data += chunk
        os.close(self.info_fd)
        self.info_fd = None
        try:
            pid = json.loads(data)["child-pid"]
        except (ValueError, KeyError, TypeError):
            raise _Dead(f"bubblewrap's info is not valid: {data[:200]!r}") from None
        if type(pid) is not int or pid <= 1:
            raise _Dead("bubblewrap's info has no child pid")
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)


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
        # An unchanged working copy of the last state (and its apis), reused by the next cell on that same state:
        # read-only cells then cost no copy. Checked equal to the state before each reuse.
        self._spare: tuple[dict[str, Any], dict[str, Any], Any] | None = None

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
            proc: _Proc | None = self._holder["proc"]
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
        proc: _Proc | None = self._holder["proc"]
        if proc is None:
            return None
        if proc.pid is None:  # bubblewrap writes it right after starting the worker
            with contextlib.suppress(_Timeout, _Dead, OSError):
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
            "result_max_bytes": self._state_max_bytes + 65_536,
            "drop_to": list(drop_to) if drop_to else None,
        }

    @property
    def _state_max_bytes(self) -> int:
        return int(self.limits.state_mb * (1 << 20))

    def _launch(self) -> _Proc:
        """Start a worker process in its jail (not waiting for it: see `_ready_proc`)."""
        jail = Jail(self.isolation, tmpfs_mb=self.limits.tmpfs_mb)
        jailed = self.isolation == "namespaces"
        script = WORKER_DEST if jailed else str(WORKER_PATH)
        cmd, fds = jail.command([sys.executable, "-I", "-S", "-B", script], worker_script=str(WORKER_PATH))
        info_r: int | None = None
        if jailed:
            info_r, info_w = os.pipe()
            fds.append(info_w)
            cmd[1:1] = ["--info-fd", str(info_w)]
        try:
            popen = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={},
                cwd="/" if jailed else self._tmpdir(), start_new_session=True, close_fds=True, pass_fds=fds,
                bufsize=0,
            )
        except OSError as exc:
            if info_r is not None:
                os.close(info_r)
            raise SandboxStartError(f"the sandbox worker could not be started: {exc}") from None
        finally:
            for fd in fds:
                os.close(fd)
        message = frame(dumps(self._config(jail.drop_to)))
        written = 0
        if len(message) <= _CONFIG_INLINE_BYTES:
            with contextlib.suppress(BlockingIOError, BrokenPipeError):
                os.set_blocking(popen.stdin.fileno(), False)  # type: ignore[union-attr]
                written = os.write(popen.stdin.fileno(), message)  # type: ignore[union-attr]
        proc = _Proc(popen, info_r, message[written:])
        self._holder["proc"] = proc
        self.stats.seccomp = jail.seccomp
        return proc

    def _ready_proc(self) -> _Proc:
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

    def _ready_proc_once(self) -> _Proc:
        proc: _Proc | None = self._holder["proc"]
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
                self._send(proc, proc.pending, deadline)
                proc.pending = b""
            raw = self._recv(proc, deadline, 1 << 20)
            hello = json.loads(raw)
            proc.read_info(deadline)
        except (_Dead, _Timeout, ValueError, OSError) as exc:
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
        proc: _Proc | None = self._holder["proc"]
        self._holder["proc"] = None
        if proc is None:
            return None
        self.stats.kills += 1
        return proc.kill()

    # --- channel ------------------------------------------------------------------------------------------------

    @staticmethod
    def _read_exact(fd: int, n: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        while n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout()
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                raise _Timeout()
            chunk = os.read(fd, min(n, 1 << 20))
            if not chunk:
                raise _Dead("the worker closed the channel")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _recv(self, proc: _Proc, deadline: float, max_len: int) -> bytes:
        (n,) = FRAME_HEADER.unpack(self._read_exact(proc.rfd, FRAME_HEADER.size, deadline))
        if n > max_len:
            raise _Dead(f"frame of {n} bytes exceeds {max_len}")
        return self._read_exact(proc.rfd, n, deadline)

    @staticmethod
    def _send(proc: _Proc, data: bytes, deadline: float) -> None:
        """Write all of `data` before the deadline (the worker may have stopped reading)."""
        view = memoryview(data)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([], [proc.wfd], [], remaining)[1]:
                raise _Timeout()
            try:
                view = view[os.write(proc.wfd, view):]
            except BlockingIOError:
                continue
            except BrokenPipeError:
                raise _Dead("the worker closed the channel") from None

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
        proc: _Proc | None = self._holder["proc"]
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
        cell = _Cell(state, self._seq)
        request = frame(dumps({"op": "run", "code": code, "session": self._session, "seq": self._seq}))
        proc.runs += 1
        proc.session_cells += 1
        deadline = time.monotonic() + lim.wall_s
        max_in = max(self._header_max_bytes, int(lim.call_mb * (1 << 20)) + 4096)
        try:
            self._send(proc, request, deadline)
            while True:
                message = json.loads(self._recv(proc, deadline, max_in))
                if type(message) is dict and message.get("op") == "call":
                    self._send(proc, frame(self._serve_call(cell, message)), deadline)
                    continue
                head = self._validate(message, self._seq)
                break
            if select.select([proc.rfd], [], [], 0)[0]:  # bytes beyond the reply (or EOF): not a sane worker
                raise _Dead("the worker sent more than one reply")
        except _Timeout:
            self._kill()
            return self._failed(state, "timeout", f"Your code was stopped after {lim.wall_s:g} s of wall time "
                                "(the limit).", notes, cell.calls)
        except (_Dead, OSError, ValueError, RecursionError, TypeError) as exc:
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
            new_state, kind, message_text = self._commit(cell, kind, message_text)
        if new_state is state and cell.work is not None:  # the copy is still pristine: keep it for the next cell
            self._spare = (state, cell.work, cell.apis)
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

    def _commit(self, cell: _Cell, kind: str | None, message: str) -> tuple[dict[str, Any] | None, str | None, str]:
        """The state after a cell whose effects stand: the input itself when its calls changed nothing."""
        if cell.work is None or cell.work == cell.state:
            return cell.state, kind, message
        size = None if cell.too_big else len(dumps(cell.work))
        if size is None or size > self._state_max_bytes:
            shown = f"{size >> 20} MB" if size is not None else "too large"
            return None, "state_limit", (f"Your code made the app state too large ({shown}; the limit is "
                                         f"{self.limits.state_mb:g} MB).")
        return cell.work, kind, message

    def _serve_call(self, cell: _Cell, message: dict[str, Any]) -> bytes:
        """Run one api call from the worker on the cell's working copy; the reply frame's JSON."""
        if message.get("seq") != cell.seq:
            raise _Dead("a call for another request")
        app, api, args, kwargs = message.get("app"), message.get("api"), message.get("args"), message.get("kwargs")
        if type(app) is not str or type(api) is not str or type(args) is not list or type(kwargs) is not dict:
            raise _Dead("malformed api call")
        cell.calls += 1
        spec = self.catalog.get(app)
        if spec is None or api not in spec["apis"]:  # only the catalog's endpoints are callable, nothing else
            return self._raise(cell, "ApiAttributeError", f"There is no api apis.{app:.100}.{api:.100}.")
        if cell.calls > self.limits.max_api_calls:
            return self._raise(cell, "ApiError", f"More than {self.limits.max_api_calls:,} api calls in one cell; "
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
        if cell.calls % 64 == 0 and len(dumps(cell.work)) > self._state_max_bytes:
            cell.too_big = True
        try:
            return dumps({"op": "return", "seq": cell.seq, "value": value})
        except (TypeError, ValueError, RecursionError):
            return self._raise(cell, "TypeError", f"apis.{app}.{api} returned something that is not JSON.")

    def _working_copy(self, cell: _Cell) -> None:
        """The state the cell's calls change: the spare copy when it is still equal to the cell's state."""
        spare, self._spare = self._spare, None
        if spare is not None and spare[0] is cell.state and spare[1] == cell.state:
            cell.work, cell.apis = spare[1], spare[2]
            return
        cell.work = copy_json(cell.state)
        cell.apis = self.factory(cell.work)

    @staticmethod
    def _raise(cell: _Cell, kind: str, message: str) -> bytes:
        return dumps({"op": "raise", "seq": cell.seq, "type": kind, "message": message})

    @property
    def _header_max_bytes(self) -> int:
        # output (UTF-8, JSON-escaped: up to 6 bytes a character) plus the traceback and message
        return 6 * (self.limits.output_chars + 20_000) + 65_536

    @staticmethod
    def _validate(head: Any, seq: int) -> dict[str, Any]:
        """The reply header, checked field by field (a compromised worker may send anything)."""
        if type(head) is not dict:
            raise _Dead("reply header is not an object")
        if head.get("op") != "done" or head.get("seq") != seq:
            raise _Dead("reply to another request")
        kind = head.get("kind")
        if kind is not None and kind not in KINDS:
            raise _Dead(f"unknown result kind {kind!r}")
        for key in ("message", "output"):
            if type(head.get(key)) is not str:
                raise _Dead(f"reply {key} is not a string")
        for key in ("truncated", "commit", "restart"):
            if type(head.get(key)) is not bool:
                raise _Dead(f"reply {key} is not a bool")
        cpu = head.get("cpu")
        if type(cpu) not in (int, float) or not 0 <= cast(float, cpu) < 1e9:
            raise _Dead("reply cpu is not a number")
        if head["commit"] and kind not in (None, "exception", "forbidden", "output_limit"):
            raise _Dead(f"a {kind} result cannot commit state")
        return head

    def _failed(self, state: dict[str, Any], kind: str, message: str, notes: list[str], calls: int) -> RunResult:
        parts = [message, *notes, UNDONE_NOTE, RESTART_NOTE]
        return RunResult("", state, False, kind, " ".join(parts), committed=False, restarted=True, api_calls=calls)
