"""The worker's serve loop: set up, lock down, run cells, reply."""

from __future__ import annotations

import ast
import builtins
import contextlib
import gc
import math
import os
import resource
import signal
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

from .channel import ApiError, ApisProxy, Channel, ChannelBroken
from .guard import Guard, build_views, gate_type, plain_copy, plain_deepcopy, prewarm
from .policy import (
    CELL_FILENAME,
    SAFE_BUILTINS,
    CpuLimitExceeded,
    ForbiddenImportError,
    SandboxError,
    attr_problem,
    check_cell,
    rewrite_cell,
    safe_str,
    vetted_format,
    vetted_unbound_format,
)
from .wire import MAX_CONFIG, MAX_REQUEST_HEADER, dumps, frame, loads, read_frame, write_all


class _Capture:
    """sys.stdout/stderr during a cell: keeps the first `limit` characters, counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.total = 0

    def write(self, text: str) -> int:
        if type(text) is not str:
            text = str(text)
        n = len(text)
        self.total += n
        room = self.limit - self.kept
        if room > 0:
            piece = text[:room]
            self.parts.append(piece)
            self.kept += len(piece)
        return n

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def getvalue(self) -> str:
        return "".join(self.parts)


class Worker:
    """The worker's state: the agent-facing builtins and apis, and the current episode's namespace."""

    def __init__(self, config: dict[str, Any], rfd: int, wfd: int) -> None:
        self.config = config
        self.output_chars = int(config["output_chars"])
        self.memory_mb = int(config["memory_mb"])
        self.cpu_s = float(config["cpu_s"])
        self.catalog: dict[str, Any] = config["catalog"]
        self.channel = Channel(self, rfd, wfd, int(config["call_max_bytes"]), int(config["result_max_bytes"]))
        self.views = build_views(list(config["modules"]))
        if "copy" in self.views:  # plain data only: copy protocols and memos reach objects' internals
            object.__getattribute__(self.views["copy"], "_sb_attrs").update(
                copy=plain_copy, deepcopy=plain_deepcopy)
        prewarm()
        self.guard = Guard()
        self.builtins = self._make_builtins()
        self.session: Any = None
        self.ns: dict[str, Any] | None = None
        self.apis: ApisProxy | None = None
        self.running = False
        self.in_call = False
        self.cpu_hit = False
        self.reserve: bytearray | None = None

    # --- agent-facing builtins -------------------------------------------------------------------------------

    def _make_builtins(self) -> dict[str, Any]:
        allowed = ", ".join(sorted(self.views))
        views = self.views

        def sandbox_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0):
            if level:
                raise ForbiddenImportError("relative imports are not allowed")
            view = views.get(name) if type(name) is str else None
            top = views.get(name.partition(".")[0]) if view is not None else None
            if view is None or top is None:
                raise ForbiddenImportError(f"import of {name!r} is not allowed; allowed modules: {allowed}")
            return view if fromlist else top

        def safe_attr(obj: Any, name: str) -> Any:
            value = builtins.getattr(obj, name)
            if name in ("format", "format_map"):  # however it was reached (a str, str itself, super(), ...)
                if type(value) is types.BuiltinMethodType and isinstance(value.__self__, str):
                    return vetted_format(value.__self__, name)
                if type(value) is types.MethodDescriptorType and value.__objclass__ is str:
                    return vetted_unbound_format(name)
            return value

        def checked(name: Any) -> str:
            if type(name) is not str:
                raise TypeError("attribute name must be a string")
            problem = attr_problem(name)
            if problem:
                raise SandboxError(problem)
            return name

        _missing = object()

        def sandbox_getattr(obj: Any, name: str, default: Any = _missing) -> Any:
            try:
                return safe_attr(obj, checked(name))
            except AttributeError:
                if default is _missing:
                    raise
                return default

        def sandbox_hasattr(obj: Any, name: str) -> bool:
            return builtins.hasattr(obj, checked(name))

        def sandbox_setattr(obj: Any, name: str, value: Any) -> None:
            builtins.setattr(obj, checked(name), value)

        def sandbox_delattr(obj: Any, name: str) -> None:
            builtins.delattr(obj, checked(name))

        def display(value: Any) -> None:
            if value is not None:
                print(repr(value))

        def denied(name: str, reason: str) -> Callable[..., Any]:
            def deny(*args: Any, **kwargs: Any) -> Any:
                raise SandboxError(f"{name}() is not allowed in this sandbox: {reason}")

            deny.__name__ = deny.__qualname__ = name
            return deny

        def leave(*args: Any) -> Any:
            raise SystemExit(*args)

        table: dict[str, Any] = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
        for name, value in vars(builtins).items():
            if isinstance(value, type) and issubclass(value, BaseException):
                table[name] = value
        table.update({
            "__build_class__": builtins.__build_class__,
            "__import__": sandbox_import,
            "__sb_attr__": safe_attr,
            "__sb_display__": display,
            "type": gate_type(type),
            "ApiError": ApiError,
            "getattr": sandbox_getattr,
            "hasattr": sandbox_hasattr,
            "setattr": sandbox_setattr,
            "delattr": sandbox_delattr,
            "exit": leave,
            "quit": leave,
            "open": denied("open", "there is no file system; use the apis"),
            "input": denied("input", "nobody can answer it; print what you need instead"),
            "breakpoint": denied("breakpoint", "there is no debugger"),
            "help": denied("help", "use the apis' documentation instead"),
            "eval": denied("eval", "write the code in the cell directly"),
            "exec": denied("exec", "write the code in the cell directly"),
            "compile": denied("compile", "write the code in the cell directly"),
            "globals": denied("globals", "interpreter internals are blocked"),
            "locals": denied("locals", "interpreter internals are blocked"),
            "vars": denied("vars", "interpreter internals are blocked"),
            "memoryview": denied("memoryview", "raw memory access is blocked"),
        })
        return table

    # --- lock-down ---------------------------------------------------------------------------------------------

    def lock_down(self) -> None:
        """Limits, signal handlers and the audit hook: from here on every audited operation is denied."""
        mem = self.memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        nofile = int(self.config.get("nofile", 16))
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))  # binds only non-root users
        total = max(1, math.ceil(float(self.config["cpu_total_s"])))
        resource.setrlimit(resource.RLIMIT_CPU, (total, total))  # lifetime budget; each cell lowers the soft limit
        sys.setrecursionlimit(int(self.config["recursion_limit"]))
        signal.signal(signal.SIGXCPU, self._on_cpu_limit)
        signal.signal(signal.SIGPROF, self._on_cpu_limit)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file write then fails with EFBIG instead of killing us
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        warnings.simplefilter("ignore")
        self.reserve = bytearray(4 << 20)  # freed on MemoryError so the reply can still be built
        gc.collect()
        sys.addaudithook(self.guard.hook)

    def _on_cpu_limit(self, signum: int, frame: Any) -> None:
        self.cpu_hit = True
        if self.running and not self.in_call:  # inside a call, Channel.call raises once the frames are done
            raise CpuLimitExceeded()

    # --- serving -----------------------------------------------------------------------------------------------

    def serve(self) -> None:
        """Answer requests until the parent closes the channel."""
        channel = self.channel
        while True:
            try:
                raw = read_frame(channel.rfd, MAX_REQUEST_HEADER)
                if raw is None:
                    return
                request = loads(raw)
                if type(request) is not dict or request.get("op") != "run":
                    raise ValueError("request is not a run")
                channel.seq = request.get("seq")
                try:
                    header = self.handle(request)
                except ChannelBroken:
                    return  # a call was cut mid-frame: exit, the parent sees EOF and starts a new worker
                except BaseException as exc:  # a bug or an exhausted worker: report, and let the parent respawn
                    self.ns = None
                    header = _reply("crash", f"worker error: {type(exc).__name__}", restart=True)
            except (OSError, ValueError) as exc:  # a broken channel: give up, the parent respawns
                reply = _reply("crash", f"worker protocol error: {type(exc).__name__}")
                with contextlib.suppress(OSError):
                    write_all(channel.wfd, frame(dumps(reply)))
                return
            header["op"] = "done"
            header["seq"] = request.get("seq")
            for key in ("output", "message"):  # text for the agent (and its tokenizer): no lone surrogates
                header[key] = header[key].encode("utf-8", "replace").decode("utf-8")
            write_all(channel.wfd, frame(dumps(header)))

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one cell: the reply header (kind, message, output, and whether its api calls' effects stand)."""
        self.cpu_hit = False
        self._arm_cpu_limit()
        try:
            session = request.get("session")
            if session != self.session:  # a new episode: a fresh namespace and fresh apis objects
                self.session, self.ns, self.apis = session, None, None
            code = request.get("code")
            if type(code) is not str:
                return _reply("crash", "worker protocol error: code is not a string")
            try:
                header = self._run_cell(code)
            except MemoryError:
                self.reserve = None
                header = _reply("memory", self._memory_message(), restart=True)
            header["cpu"] = _cpu_used()
            return header
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)

    def _arm_cpu_limit(self) -> None:
        """A precise per-cell CPU timer (ITIMER_PROF), and RLIMIT_CPU a second later as the kernel's backstop."""
        signal.setitimer(signal.ITIMER_PROF, self.cpu_s)
        soft = math.ceil(_cpu_used() + self.cpu_s) + 1
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        with self.guard.window("resource.setrlimit"):
            resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))

    def _memory_message(self) -> str:
        return f"Your code ran out of memory (limit {self.memory_mb} MB)."

    def _run_cell(self, code: str) -> dict[str, Any]:
        lines = code.splitlines()
        try:
            tree = ast.parse(code, CELL_FILENAME, "exec")
            problems = check_cell(tree)
            compiled = None if problems else compile(rewrite_cell(tree), CELL_FILENAME, "exec", dont_inherit=True)
        except SyntaxError as exc:
            text = _format_syntax_error(exc)
            return _reply("syntax", text.rsplit("\n", 1)[-1], output=text)
        except (RecursionError, MemoryError, ValueError) as exc:
            return _reply("syntax", f"Your code could not be compiled: {type(exc).__name__}: {safe_str(exc)}")
        if problems:
            shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
            return _reply("forbidden", f"Your code was not run: {shown}.")
        if self.ns is None:
            self.ns = {"__builtins__": self.builtins, "__name__": "__main__"}
        if self.apis is None:
            self.apis = ApisProxy(self.channel, self.catalog)
        self.ns["apis"] = self.apis
        capture = _Capture(self.output_chars)
        self.guard.violations.clear()
        error: BaseException | None = None
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = capture
        assert compiled is not None  # a cell with problems returned above
        self.guard.exec_code = compiled
        self.running = True
        try:
            exec(compiled, self.ns)
        except BaseException as exc:
            error = exc
        finally:
            self.running = False
            self.guard.exec_code = None
            sys.stdout, sys.stderr = saved
        output = capture.getvalue()
        truncated = capture.total > capture.kept
        if truncated:
            output += f"\n... [output truncated: {capture.total - capture.kept:,} more characters]"
        signal.setitimer(signal.ITIMER_PROF, 0)
        if isinstance(error, MemoryError):
            error = None  # drop the traceback (and the memory it pins) before anything else
            self.reserve = None
            self.ns = None
            return _reply("memory", self._memory_message(), output=output, truncated=truncated, restart=True)
        if self.guard.violations:
            reason = self.guard.violations[0]
            tb = self._traceback(error, lines) if error is not None else ""
            return _reply("forbidden", f"Your code tried a forbidden operation: {reason}.",
                          output=_join(output, tb), truncated=truncated, restart=True)
        if self.cpu_hit or isinstance(error, CpuLimitExceeded):
            return _reply("timeout", f"Your code was stopped after {self.cpu_s:g} s of CPU time (the limit).",
                          output=output, truncated=truncated)
        if error is not None:
            tb = self._traceback(error, lines)
            kind = "forbidden" if isinstance(error, SandboxError) else "exception"
            return _reply(kind, tb.rsplit("\n", 1)[-1], output=_join(output, tb), truncated=truncated, commit=True)
        if truncated:
            return _reply("output_limit", f"Your code printed {capture.total:,} characters; only the first "
                                          f"{self.output_chars:,} are shown.", output=output, truncated=True,
                          commit=True)
        return _reply(None, "", output=output, commit=True)

    def _traceback(self, error: BaseException, lines: list[str]) -> str:
        """A short traceback: the cell's own frames (last five) and the exception line, no worker internals."""
        entries: list[tuple[int, str]] = []
        with self.guard.window("object.__getattr__"):  # tb_frame and f_code are audited reads
            tb = error.__traceback__
            while tb is not None:
                code = tb.tb_frame.f_code
                if code.co_filename == CELL_FILENAME:
                    entries.append((tb.tb_lineno, code.co_name))
                tb = tb.tb_next
            code = tb = None  # type: ignore[assignment]  # drop the frames' references
        self.running = True  # str(error) may run the cell's own __str__: keep it under the CPU limit
        signal.setitimer(signal.ITIMER_PROF, 0.5)
        try:
            last = _exception_line(error)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            self.running = False
        out = ["Traceback (most recent call last):"]
        if len(entries) > 5:
            out.append(f"  ... {len(entries) - 5} earlier frames ...")
        for lineno, name in entries[-5:]:
            out.append(f'  File "{CELL_FILENAME}", line {lineno}, in {name}')
            if 0 < lineno <= len(lines):
                out.append("    " + lines[lineno - 1].strip()[:200])
        out.append(last)
        return "\n".join(out)


def _reply(kind: str | None, message: str, *, output: str = "", truncated: bool = False, commit: bool = False,
           restart: bool = False) -> dict[str, Any]:
    return {"kind": kind, "message": message, "output": output, "truncated": truncated, "commit": commit,
            "restart": restart, "cpu": _cpu_used()}


def _join(a: str, b: str) -> str:
    if a and b and not a.endswith("\n"):
        return a + "\n" + b
    return a + b


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _exception_line(exc: BaseException) -> str:
    name = type(exc).__name__
    if type(name) is not str:
        name = "Exception"
    text = safe_str(exc)
    if isinstance(exc, SystemExit):
        text = (text + " " if text else "") + "(exit() only ends this cell)"
    return f"{name}: {text}" if text else name


def _format_syntax_error(exc: SyntaxError) -> str:
    out = [f'  File "{CELL_FILENAME}", line {exc.lineno}']
    if exc.text:
        text = exc.text.rstrip("\n")
        stripped = text.lstrip()
        out.append("    " + stripped[:200])
        if exc.offset:
            col = max(0, exc.offset - 1 - (len(text) - len(stripped)))
            if col < 200:
                out.append("    " + " " * col + "^")
    out.append(f"{type(exc).__name__}: {exc.msg}")
    return "\n".join(out)


def _take_channel() -> tuple[int, int]:
    """Move the channel off fds 0/1 (which become /dev/null), so stray writes cannot corrupt it."""
    rfd, wfd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    return rfd, wfd


DANGEROUS_MODULES = ("ctypes", "_ctypes", "socket", "_socket", "subprocess", "_posixsubprocess", "threading")


def drop_privileges(uid: int, gid: int) -> None:
    """Become uid/gid (no supplementary groups) for good; as root this also clears every capability."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise RuntimeError(f"could not drop to uid {uid}")


def main(argv: list[str]) -> int:
    """Entry point: read the configuration frame, drop privileges, set up, lock down, report ready, serve."""
    rfd, wfd = _take_channel()
    try:
        raw = read_frame(rfd, MAX_CONFIG)
        if raw is None:
            return 1
        config = loads(raw)
        if config.get("drop_to"):
            drop_privileges(*config["drop_to"])
        worker = Worker(config, rfd, wfd)
        worker.lock_down()
    except BaseException as exc:
        write_all(wfd, frame(dumps({"ready": False, "error": f"{type(exc).__name__}: {safe_str(exc)}"})))
        return 1
    loaded = [m for m in DANGEROUS_MODULES if m in sys.modules]
    write_all(wfd, frame(dumps({"ready": True, "pid": os.getpid(), "uid": os.getuid(), "loaded": loaded})))
    with contextlib.suppress(BrokenPipeError):
        worker.serve()
    return 0
