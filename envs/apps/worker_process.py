"""The parent's side of one sandbox worker: start it in its jail, exchange frames with deadlines, check its
replies, kill it. `sandbox.Sandbox` drives it; the worker itself is the package `worker/`."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from distillgym.envs.apps.isolation import WORKER_DEST, Jail
from distillgym.envs.apps.worker.policy import KINDS
from distillgym.envs.apps.worker.wire import FRAME_HEADER, dumps, frame

CONFIG_INLINE_BYTES = 60_000


class SandboxStartError(RuntimeError):
    """The worker could not start (bad factory, isolation refused by the kernel): a setup problem, not the agent's."""


class WorkerDead(Exception):
    """The worker closed the channel or sent something malformed."""


class WorkerTimeout(Exception):
    """No reply before the deadline."""


class WorkerProcess:
    """One worker process and its end of the channel; `kill` is safe to call twice and from a finalizer."""

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
                raise WorkerTimeout()
            chunk = os.read(self.info_fd, 4096)
            if not chunk:
                break
            data += chunk
        os.close(self.info_fd)
        self.info_fd = None
        try:
            pid = json.loads(data)["child-pid"]
        except (ValueError, KeyError, TypeError):
            raise WorkerDead(f"bubblewrap's info is not valid: {data[:200]!r}") from None
        if type(pid) is not int or pid <= 1:
            raise WorkerDead("bubblewrap's info has no child pid")
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)

    @staticmethod
    def _read_exact(fd: int, n: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        while n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerTimeout()
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                raise WorkerTimeout()
            chunk = os.read(fd, min(n, 1 << 20))
            if not chunk:
                raise WorkerDead("the worker closed the channel")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def recv(self, deadline: float, max_len: int) -> bytes:
        """One frame from the worker before the deadline (WorkerDead past `max_len` or at EOF)."""
        (n,) = FRAME_HEADER.unpack(self._read_exact(self.rfd, FRAME_HEADER.size, deadline))
        if n > max_len:
            raise WorkerDead(f"frame of {n} bytes exceeds {max_len}")
        return self._read_exact(self.rfd, n, deadline)

    def send(self, data: bytes, deadline: float) -> None:
        """Write all of `data` before the deadline (the worker may have stopped reading)."""
        view = memoryview(data)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([], [self.wfd], [], remaining)[1]:
                raise WorkerTimeout()
            try:
                view = view[os.write(self.wfd, view):]
            except BlockingIOError:
                continue
            except BrokenPipeError:
                raise WorkerDead("the worker closed the channel") from None


def launch(isolation: str, worker: Path, config: Callable[[tuple[int, int] | None], dict[str, Any]], *,
           tmpfs_mb: int, cwd: str) -> tuple[WorkerProcess, bool]:
    """Start a worker process (`worker`: its package directory, or a script) in a jail of level `isolation`, and
    write it `config(uid and gid it should drop to)` as far as the pipe takes it without blocking (the rest goes at
    the handshake). Does not wait for the worker; returns it and whether a seccomp filter was loaded."""
    jail = Jail(isolation, tmpfs_mb=tmpfs_mb)
    jailed = isolation == "namespaces"
    script = WORKER_DEST if jailed else str(worker)
    cmd, fds = jail.command([sys.executable, "-I", "-S", "-B", script], worker_script=str(worker))
    info_r: int | None = None
    if jailed:
        info_r, info_w = os.pipe()
        fds.append(info_w)
        cmd[1:1] = ["--info-fd", str(info_w)]
    try:
        popen = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={},
            cwd="/" if jailed else cwd, start_new_session=True, close_fds=True, pass_fds=fds, bufsize=0,
        )
    except OSError as exc:
        if info_r is not None:
            os.close(info_r)
        raise SandboxStartError(f"the sandbox worker could not be started: {exc}") from None
    finally:
        for fd in fds:
            os.close(fd)
    message = frame(dumps(config(jail.drop_to)))
    written = 0
    if len(message) <= CONFIG_INLINE_BYTES:  # a config frame this small fits the pipe's buffer: never blocks
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.set_blocking(popen.stdin.fileno(), False)  # type: ignore[union-attr]
            written = os.write(popen.stdin.fileno(), message)  # type: ignore[union-attr]
    return WorkerProcess(popen, info_r, message[written:]), jail.seccomp


def validate_reply(head: Any, seq: int) -> dict[str, Any]:
    """The reply header, checked field by field (a compromised worker may send anything)."""
    if type(head) is not dict:
        raise WorkerDead("reply header is not an object")
    if head.get("op") != "done" or head.get("seq") != seq:
        raise WorkerDead("reply to another request")
    kind = head.get("kind")
    if kind is not None and kind not in KINDS:
        raise WorkerDead(f"unknown result kind {kind!r}")
    for key in ("message", "output"):
        if type(head.get(key)) is not str:
            raise WorkerDead(f"reply {key} is not a string")
    for key in ("truncated", "commit", "restart"):
        if type(head.get(key)) is not bool:
            raise WorkerDead(f"reply {key} is not a bool")
    cpu = head.get("cpu")
    if type(cpu) not in (int, float) or not 0 <= cast(float, cpu) < 1e9:
        raise WorkerDead("reply cpu is not a number")
    if head["commit"] and kind not in (None, "exception", "forbidden", "output_limit"):
        raise WorkerDead(f"a {kind} result cannot commit state")
    return head


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
