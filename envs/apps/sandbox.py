"""Run agent-written Python cells against the simulated apps, out of the trainer's process and privileges.

`Sandbox.run(code, state)` sends the cell and the app state (JSON) to a long-lived worker process
(`envs/apps/worker.py`) and returns a `RunResult` with the printed output, the new state and, when the cell failed,
why. The parent keeps the authoritative state: it sends it, validates what comes back (JSON only, never pickle;
types; sizes) and returns the input state unchanged when a run fails hard.

Layers, outermost first:
- process: the worker runs with an empty environment, an empty temporary cwd, its own session (process group) and,
  where `unshare`/`setpriv` work, no network (own network namespace), no capabilities and no_new_privs;
- parent: wall-time limit per run (the process group is killed and a fresh worker started lazily), crash and
  malformed-reply detection, output and state size caps, respawn after a hook violation or a memory error;
- kernel limits set by the worker on itself: address space, CPU time (per cell, and a lifetime budget), file size 0,
  few open files, no core dumps, no processes (the last binds only non-root users);
- a PEP 578 audit hook that denies every audited operation (files, imports, os/subprocess/socket/ctypes, exec and
  compile of new code, frame introspection, ...) except a short allow-list, for the worker's whole life;
- Python level: each cell is parsed and checked (no `_` attributes, no dunder names, no frame/generator internals),
  runs with restricted builtins and can import only allow-listed modules, served as views without submodules.

Variables persist across the cells of one episode (like a notebook, and like AppWorld; a final bare expression is
displayed): `reset()` starts a new episode with a fresh namespace and, by default, a fresh interpreter (started in
the background). When the worker is restarted mid-episode (wall timeout, crash, memory, an audit-hook violation)
the variables are lost and the message says so; the app state is never lost, since the parent holds it.

Typical use: `box = Sandbox()`, `box.start()` once, then per episode `box.reset()` and `result = box.run(code,
state)` per cell, `state = result.state`, and `result.render()` as the observation; `box.close()` at the end.
"""

from __future__ import annotations

import contextlib
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distillgym.envs.apps.worker import DEFAULT_ALLOWED_MODULES, FRAME_HEADER, KINDS, dumps, frame, write_all

__all__ = ["DEFAULT_ALLOWED_MODULES", "Limits", "RunResult", "Sandbox", "SandboxStartError"]

log = logging.getLogger(__name__)

DEFAULT_FACTORY = "distillgym.envs.apps.api:make_apis"
WORKER_PATH = Path(__file__).with_name("worker.py")
RESTART_NOTE = "The Python interpreter was restarted, so your variables are gone (the app state is kept)."
UNDONE_NOTE = "Nothing this cell did to the apps was kept."
#: Every `RunResult.error` value (None on success).
ERROR_KINDS = frozenset(KINDS | {"timeout", "crash", "too_long"})


@dataclass(frozen=True)
class Limits:
    """Per-cell and per-worker limits."""

    cpu_s: float = 2.0  # CPU time of one cell (a CPU timer in the worker; RLIMIT_CPU a second later as backstop)
    wall_s: float = 5.0  # wall time of one run (decode state, run the cell, send the reply)
    memory_mb: int = 512  # address space of the worker (Python + the apps take ~30 MB)
    output_chars: int = 20_000  # printed text kept per cell; the rest is counted and dropped
    recursion_limit: int = 1000
    max_code_chars: int = 20_000
    state_mb: float = 32.0  # largest app state (JSON) either way
    cpu_total_s: float = 120.0  # CPU budget of one worker (hard RLIMIT_CPU); it is replaced before running out
    max_runs: int = 500  # a worker that served this many cells is replaced at the next reset()
    # Replace a used worker after this many episodes (0: never). Whatever an agent changes in the interpreter
    # (random's seed, decimal's context, a class of an allowed module it monkeypatched) lives as long as the
    # worker; 1 gives every episode a fresh interpreter. The replacement starts in the background at reset().
    episodes_per_worker: int = 1
    start_timeout_s: float = 30.0  # worker start-up (imports the factory)


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

    def render(self) -> str:
        """Output and message as one observation for the agent (the exception line is not repeated)."""
        output, message = self.output.rstrip("\n"), self.message
        last = output.rsplit("\n", 1)[-1]
        if last and message.startswith(last):
            message = message[len(last):].strip()
        return "\n".join(p for p in (output, message) if p)


class SandboxStartError(RuntimeError):
    """The worker could not start (bad factory, import error): a setup problem, not the agent's doing."""


class _Dead(Exception):
    """The worker closed the channel or sent something malformed."""


class _Timeout(Exception):
    """No reply before the deadline."""


# The isolation wrapper (argv prefix) that works on this machine, probed once per process.
_WRAPPER_LOCK = threading.Lock()
_WRAPPER: list[str] | None = None


def isolation_wrapper() -> list[str]:
    """The strongest of `unshare --net` + `setpriv` (drop capabilities, no_new_privs) that runs here, else []."""
    global _WRAPPER
    with _WRAPPER_LOCK:
        if _WRAPPER is not None:
            return _WRAPPER
        unshare, setpriv, true = shutil.which("unshare"), shutil.which("setpriv"), shutil.which("true")
        nocaps = [setpriv, "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all", "--"] if setpriv else []
        candidates: list[list[str]] = []
        if unshare and nocaps:
            candidates += [[unshare, "--net", "--", *nocaps], [unshare, "--net", "--map-root-user", "--", *nocaps]]
        if unshare:
            candidates += [[unshare, "--net", "--"], [unshare, "--net", "--map-root-user", "--"]]
        if setpriv:
            candidates += [nocaps, [setpriv, "--no-new-privs", "--"]]
        _WRAPPER = []
        for candidate in candidates:
            try:
                ok = subprocess.run([*candidate, true or "/bin/true"], env={}, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10).returncode == 0
            except (OSError, subprocess.SubprocessError):
                ok = False
            if ok:
                _WRAPPER = candidate
                break
        return _WRAPPER


class _Proc:
    """One worker process and its channel; `kill` is safe to call twice and from a finalizer."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.owner_pid = os.getpid()
        self.rfd = popen.stdout.fileno()  # type: ignore[union-attr]
        self.wfd = popen.stdin.fileno()  # type: ignore[union-attr]
        self.runs = 0
        self.cpu = 0.0
        self.state_json: str | None = None  # the state the worker holds, as last committed (None: resend)
        self.session_cells = 0
        self.episodes = 0
        self.ready = False  # the hello frame has been read
        self.t0 = time.perf_counter()

    def kill(self) -> int | None:
        """Kill the whole process group, reap the worker, close the pipes; returns the exit status."""
        if os.getpid() != self.owner_pid:  # a forked child must not kill its parent's worker
            return None
        popen = self.popen
        if popen.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(popen.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                popen.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=10)
        for pipe in (popen.stdin, popen.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()
        return popen.returncode


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
    last_spawn_s: float = 0.0
    spawn_s_total: float = 0.0
    isolation: list[str] = field(default_factory=list)


class Sandbox:
    """Runs agent code cells in a locked-down worker process; see the module docstring for the layers.

    Not thread-safe across concurrent `run`s by design of the protocol; a lock serialises them. One Sandbox per
    process (a forked child must create its own).
    """

    def __init__(
        self,
        factory: str = DEFAULT_FACTORY,
        limits: Limits | None = None,
        *,
        allowed_modules: tuple[str, ...] = DEFAULT_ALLOWED_MODULES,
        extra_path: tuple[str, ...] | list[str] = (),
        isolate: bool = True,
        light_import: bool = True,
    ) -> None:
        """factory: "module:function" returning the apis object for a state dict (run inside the worker).
        extra_path: sys.path entries the worker needs to import the factory (the worker runs with `python -I`).
        isolate: use unshare/setpriv when they work here (network namespace, no capabilities).
        light_import: import the factory module without running its parent packages' `__init__` (the top-level
        `distillgym` package imports gymnasium and numpy, which the worker does not need).
        """
        if ":" not in factory:
            raise ValueError(f"factory must be 'module:function', got {factory!r}")
        self.factory = factory
        self.limits = limits or Limits()
        self.allowed_modules = tuple(allowed_modules)
        self.extra_path = [str(p) for p in extra_path]
        self.isolate = isolate
        self.light_import = light_import
        self.stats = SandboxStats()
        self._lock = threading.Lock()
        self._session = 0
        self._seq = 0
        self._owner_pid = os.getpid()
        self._holder: dict[str, Any] = {"proc": None, "tmpdir": None, "owner_pid": self._owner_pid}
        self._finalizer = weakref.finalize(self, _cleanup, self._holder)
        self._closed = False

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
            proc.state_json = None  # rebuild the apis from the new state (drops any monkeypatching)
            lim = self.limits
            if proc.runs and (proc.runs >= lim.max_runs or proc.cpu > lim.cpu_total_s / 2
                              or 0 < lim.episodes_per_worker <= proc.episodes):
                self._kill()
                self._launch()

    @property
    def worker_pid(self) -> int | None:
        """The current worker's pid (None when none is running)."""
        proc: _Proc | None = self._holder["proc"]
        return None if proc is None else proc.popen.pid

    def _check_usable(self) -> None:
        if self._closed:
            raise RuntimeError("Sandbox is closed")
        if os.getpid() != self._owner_pid:
            raise RuntimeError("Sandbox was created in another process (fork); create one per process")

    def _tmpdir(self) -> str:
        if not self._holder["tmpdir"]:
            self._holder["tmpdir"] = tempfile.mkdtemp(prefix="distillgym-sandbox-")
        return self._holder["tmpdir"]

    def _config(self) -> dict[str, Any]:
        lim = self.limits
        return {
            "factory": self.factory,
            "extra_path": self.extra_path,
            "light_import": self.light_import,
            "modules": list(self.allowed_modules),
            "memory_mb": int(lim.memory_mb),
            "cpu_s": float(lim.cpu_s),
            "cpu_total_s": float(lim.cpu_total_s),
            "recursion_limit": int(lim.recursion_limit),
            "output_chars": int(lim.output_chars),
            "state_max_bytes": self._state_max_bytes,
        }

    @property
    def _state_max_bytes(self) -> int:
        return int(self.limits.state_mb * (1 << 20))

    def _launch(self) -> _Proc:
        """Start a worker process (not waiting for it: see `_ready_proc`)."""
        wrapper = isolation_wrapper() if self.isolate else []
        cmd = [*wrapper, sys.executable, "-I", "-B", str(WORKER_PATH), json.dumps(self._config())]
        popen = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={},
            cwd=self._tmpdir(), start_new_session=True, close_fds=True, bufsize=0,
        )
        proc = _Proc(popen)
        self._holder["proc"] = proc
        self.stats.isolation = [Path(w).name for w in wrapper if w.startswith("/")]
        return proc

    def _ready_proc(self) -> _Proc:
        """The current worker, started if need be, after its hello (raises SandboxStartError if it fails).

        Once a worker has started here, a failed start is retried once (a transient failure, e.g. a worker started
        in the background and killed from outside), so `run` raises only when workers cannot start at all.
        """
        try:
            return self._ready_proc_once()
        except SandboxStartError:
            if not self.stats.spawns:
                raise
            log.warning("sandbox worker failed to start; retrying once", exc_info=True)
            return self._ready_proc_once()

    def _ready_proc_once(self) -> _Proc:
        proc: _Proc | None = self._holder["proc"]
        if proc is not None and proc.ready and proc.popen.poll() is not None:  # died while idle (killed outside)
            self._kill()
            proc = None
        if proc is None:
            proc = self._launch()
        if proc.ready:
            return proc
        try:
            raw = self._recv(proc, time.monotonic() + self.limits.start_timeout_s, 1 << 20)
            hello = json.loads(raw)
        except (_Dead, _Timeout, ValueError) as exc:
            self._kill()
            raise SandboxStartError(f"sandbox worker did not start ({type(exc).__name__}: {exc})") from None
        if not isinstance(hello, dict) or hello.get("ready") is not True:
            self._kill()
            error = hello.get("error") if isinstance(hello, dict) else None
            raise SandboxStartError(f"sandbox worker failed to start: {error or hello!r}")
        proc.ready = True
        elapsed = time.perf_counter() - proc.t0
        self.stats.spawns += 1
        self.stats.last_spawn_s = elapsed
        self.stats.spawn_s_total += elapsed
        if hello.get("loaded"):
            log.debug("sandbox worker has %s loaded (imported by the factory)", hello["loaded"])
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
            raise _Dead(f"reply frame of {n} bytes exceeds {max_len}")
        return self._read_exact(proc.rfd, n, deadline)

    # --- running ------------------------------------------------------------------------------------------------

    def run(self, code: str, state: dict[str, Any]) -> RunResult:
        """Run one cell against `state`; never raises for anything the code does (only for misuse/start-up)."""
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
            return result

    def _run(self, code: str, state: dict[str, Any]) -> RunResult:
        lim = self.limits
        if len(code) > lim.max_code_chars:
            return RunResult("", state, False, "too_long", f"Your code is {len(code):,} characters long; the limit "
                             f"is {lim.max_code_chars:,}. Nothing was run.")
        state_json = dumps(state).decode()
        if len(state_json) > self._state_max_bytes:
            raise ValueError(f"state is {len(state_json)} bytes of JSON, over Limits.state_mb={lim.state_mb}")
        notes: list[str] = []
        proc: _Proc | None = self._holder["proc"]
        if proc is not None and proc.cpu + lim.cpu_s + 1 >= lim.cpu_total_s:  # out of lifetime CPU: replace now
            if proc.session_cells:
                notes.append("Note: the Python interpreter was restarted before this cell (its CPU budget was "
                             "spent), so variables from earlier cells are gone.")
            self._kill()
            proc = None
        proc = self._ready_proc()
        send_state = proc.state_json != state_json
        self._seq += 1
        header = dumps({"code": code, "session": self._session, "has_state": send_state, "seq": self._seq})
        message = frame(header) + (frame(state_json.encode()) if send_state else b"")
        proc.state_json = None  # until a commit says otherwise
        proc.runs += 1
        proc.session_cells += 1
        deadline = time.monotonic() + lim.wall_s
        try:
            write_all(proc.wfd, message)
            reply = self._recv(proc, deadline, self._header_max_bytes)
            head = self._validate(json.loads(reply), self._seq)
            new_state: dict[str, Any] | None = None
            if head["commit"] and head["same"]:  # the cell did not change the state
                new_state, raw_state = state, state_json.encode()
            elif head["commit"]:
                raw_state = self._recv(proc, deadline, self._state_max_bytes)
                new_state = json.loads(raw_state)
                if type(new_state) is not dict:
                    raise _Dead("the state in the reply is not an object")
            if select.select([proc.rfd], [], [], 0)[0]:  # bytes beyond the reply (or EOF): not a sane worker
                raise _Dead("the worker sent more than one reply")
        except _Timeout:
            self._kill()
            return self._failed(state, "timeout", f"Your code was stopped after {lim.wall_s:g} s of wall time "
                                "(the limit).", notes)
        except (_Dead, OSError, ValueError, RecursionError, TypeError) as exc:
            status = self._kill()
            how = ""
            if status is not None and status < 0:
                with contextlib.suppress(ValueError):
                    how = f" (killed by {signal.Signals(-status).name})"
            log.debug("sandbox worker failed: %s: %s", type(exc).__name__, exc)
            return self._failed(state, "crash", f"Your code crashed the Python interpreter{how}.", notes)
        proc.cpu = float(head["cpu"])
        kind: str | None = head["kind"]
        output: str = head["output"]
        if len(output) > lim.output_chars + 4096:  # the worker caps it; a broken worker might not
            output = output[: lim.output_chars] + "\n... [output truncated]"
        message_text = head["message"]
        restarted = bool(head["restart"])
        if kind == "crash":
            restarted = True
        if restarted:
            self._kill()
            if new_state is None:
                notes.append(UNDONE_NOTE)
            notes.append(RESTART_NOTE)
        elif new_state is not None:
            proc.state_json = raw_state.decode()
        if kind is not None and kind not in ("exception", "syntax", "forbidden", "output_limit") and not restarted:
            notes.append(UNDONE_NOTE)
        message = " ".join(p for p in (message_text, *notes) if p)
        ok = kind in (None, "output_limit")
        return RunResult(output, new_state if new_state is not None else state, ok, kind, message,
                         committed=new_state is not None, truncated=bool(head["truncated"]), restarted=restarted)

    @property
    def _header_max_bytes(self) -> int:
        # output (UTF-8, JSON-escaped: up to 6 bytes a character) plus the traceback and message
        return 6 * (self.limits.output_chars + 20_000) + 65_536

    @staticmethod
    def _validate(head: Any, seq: int) -> dict[str, Any]:
        """The reply header, checked field by field (a compromised worker may send anything)."""
        if type(head) is not dict:
            raise _Dead("reply header is not an object")
        if head.get("seq") != seq:
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
        if type(cpu) not in (int, float) or not 0 <= cpu < 1e9:
            raise _Dead("reply cpu is not a number")
        if head["commit"] and kind not in (None, "exception", "forbidden", "output_limit"):
            raise _Dead(f"a {kind} result cannot commit state")
        head.setdefault("same", False)
        if type(head["same"]) is not bool or (head["same"] and not head["commit"]):
            raise _Dead("reply same is not a bool, or same without commit")
        return head

    def _failed(self, state: dict[str, Any], kind: str, message: str, notes: list[str]) -> RunResult:
        parts = [message, *notes, UNDONE_NOTE, RESTART_NOTE]
        return RunResult("", state, False, kind, " ".join(parts), committed=False, restarted=True)
