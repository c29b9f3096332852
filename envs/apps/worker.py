"""Sandbox worker: the separate process that runs agent code cells for `distillgym.envs.apps.sandbox.Sandbox`.

It holds no app state and no task. The parent starts it as a plain script (`python -I -S -B worker.py`, empty
environment; inside bubblewrap by default: see `isolation.py`) and it:

1. moves its message channel off fds 0/1 (which become /dev/null), reads its configuration frame (limits, allowed
   modules, and the catalog of apps and apis: names and docs only), and drops to uid 65534 when asked;
2. imports the allowed modules (the only modules agent code may import, served as read-only views without their
   module attributes), then locks itself down: rlimits (address space, CPU, file size 0, few fds, no core dumps, no
   processes) and a PEP 578 audit hook that denies every audited operation but a short allow-list for the rest of its
   life: opening files, importing new modules, os/subprocess/socket/ctypes calls, running new code, frame
   introspection... all raise;
3. serves requests: each cell is parsed and checked (no `_`-prefixed attributes, no dunder names, no frame/generator
   internals), run with restricted builtins in a namespace that lives until the episode (session) changes. `apis`
   in the cell is a proxy: each `apis.<app>.<api>(...)` is sent to the parent, which runs the endpoint on the real
   state and sends back the JSON result or the error, raised in the cell as `ApiError` (or the builtin it names).

Protocol (JSON only, never pickle): frames of a 4-byte big-endian length and UTF-8 JSON.
parent -> worker: the configuration (once), then per cell `{"op": "run", "code", "session", "seq"}`, and the answer
to each call: `{"op": "return", "seq", "value"}` or `{"op": "raise", "seq", "type", "message"}`.
worker -> parent: `{"ready": true, ...}` (once), then per cell any number of `{"op": "call", "seq", "app", "api",
"args", "kwargs"}` and one `{"op": "done", "seq", "kind", "message", "output", "truncated", "commit", "restart",
"cpu"}` (commit: whether the cell's api calls stand, as after a Python exception; never after a kill).
"""

from __future__ import annotations

import _string  # str.format's own field parser: used to vet format strings
import ast
import builtins
import contextlib
import gc
import importlib
import importlib.util
import json
import math
import os
import resource
import signal
import struct
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any

# ----------------------------------------------------------------------------------------------------------- policy

#: Modules agent code may import (pre-imported before the lock-down; served as attribute views).
DEFAULT_ALLOWED_MODULES: tuple[str, ...] = (
    "base64", "bisect", "calendar", "cmath", "collections", "collections.abc", "copy", "datetime", "decimal",
    "difflib", "fractions", "functools", "hashlib", "heapq", "itertools", "json", "math", "numbers", "operator",
    "pprint", "random", "re", "statistics", "string", "textwrap", "time", "typing", "unicodedata",
)

#: Public names left out of a module's view: they read attributes by name (a way around the attribute check),
#: compile code at runtime (blocked by the audit hook anyway), or only waste wall time.
EXCLUDED_NAMES: dict[str, frozenset[str]] = {
    "string": frozenset({"Formatter"}),
    "operator": frozenset({"attrgetter", "methodcaller"}),
    "functools": frozenset({"update_wrapper", "wraps", "WRAPPER_ASSIGNMENTS", "WRAPPER_UPDATES"}),
    "collections": frozenset({"namedtuple"}),
    # Type[...] and get_origin/get_args hand out `type` itself (typing.get_origin(typing.Type[int]) is type)
    "typing": frozenset({"NamedTuple", "get_type_hints", "TypeVar", "ParamSpec", "TypeVarTuple", "NewType", "Type",
                         "get_origin", "get_args"}),
    "time": frozenset({"sleep"}),
}

#: Result kinds the worker may send (the parent adds "timeout", "crash" and "too_long" of its own).
KINDS = frozenset({"exception", "syntax", "forbidden", "timeout", "memory", "crash", "output_limit", "state_limit"})

#: Dunder attributes a cell may use (`super().__init__(...)`, `type(e).__name__`); every other `_` attribute is out.
SAFE_DUNDER_ATTRS = frozenset({"__init__", "__name__", "__qualname__", "__doc__"})

#: Dunder methods a cell may define in its classes (no finalizers, no attribute hooks).
SAFE_DUNDER_DEFS = frozenset({
    "__init__", "__repr__", "__str__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__",
    "__len__", "__iter__", "__next__", "__contains__", "__getitem__", "__setitem__", "__delitem__", "__call__",
    "__enter__", "__exit__", "__bool__", "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
    "__truediv__", "__floordiv__", "__mod__", "__neg__", "__abs__", "__post_init__",
})

#: Public attributes of frames, generators, coroutines and tracebacks: they lead to other frames' globals.
FRAME_ATTRS = frozenset({
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "cr_origin", "ag_frame", "ag_code",
    "ag_await", "tb_frame", "tb_next", "f_back", "f_builtins", "f_code", "f_globals", "f_locals", "f_trace",
})

#: Public attributes of classes that hand out other classes, the real `type` among them (`M.mro()` of a metaclass).
CLASS_ATTRS = frozenset({"mro"})

#: Builtins a cell gets as they are (plus every exception class); the rest are replaced or left out.
SAFE_BUILTINS = (
    "abs", "aiter", "all", "anext", "any", "ascii", "bin", "bool", "bytearray", "bytes", "callable", "chr",
    "classmethod", "complex", "dict", "dir", "divmod", "enumerate", "filter", "float", "format", "frozenset", "hash",
    "hex", "id", "int", "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "next", "object",
    "oct", "ord", "pow", "print", "property", "range", "repr", "reversed", "round", "set", "slice", "sorted",
    "staticmethod", "str", "sum", "super", "tuple", "type", "zip", "Ellipsis", "NotImplemented",
)

#: Audit events allowed at any time after the lock-down (everything else is denied unless a window opens it).
#: "compile" only makes a code object (typing compiles string annotations such as List['int']); running one needs
#: an "exec" event, allowed for the cell's own code object only, or "function.__new__", always denied.
ALWAYS_ALLOWED_EVENTS = frozenset({"builtins.id", "sys.unraisablehook", "compile"})

CELL_FILENAME = "<cell>"
FRAME_HEADER = struct.Struct(">I")
MAX_REQUEST_HEADER = 1 << 22  # code is capped by the parent far below this
MAX_CONFIG = 1 << 24


class SandboxError(Exception):
    """Raised in agent code when it uses something the sandbox does not allow (reported as "forbidden")."""


class ForbiddenImportError(SandboxError, ImportError):
    """An import outside the allow-list (still an ImportError, so `except ImportError` fallbacks work)."""


class SandboxViolation(SandboxError):
    """Raised by the audit hook: the cell reached a blocked operation past the Python-level checks."""


class CpuLimitExceeded(BaseException):
    """Raised in agent code when the cell's CPU time is up (SIGPROF timer; SIGXCPU as the backstop)."""


# ----------------------------------------------------------------------------------------------------------- frames


def read_frame(fd: int, max_len: int) -> bytes | None:
    """One length-prefixed frame from `fd`; None on EOF; ValueError past `max_len`."""
    head = _read_exact(fd, FRAME_HEADER.size)
    if head is None:
        return None
    (n,) = FRAME_HEADER.unpack(head)
    if n > max_len:
        raise ValueError(f"frame of {n} bytes exceeds {max_len}")
    body = _read_exact(fd, n)
    if body is None:
        return None
    return body


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks: list[bytes] = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def frame(data: bytes) -> bytes:
    """`data` with its length prefix."""
    return FRAME_HEADER.pack(len(data)) + data


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd` (a pipe)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _not_serializable(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# The protocol's JSON goes straight to the C accelerators, bound here at import: agent code can patch json's Python
# classes (`json.JSONEncoder.encode = ...`), and must not reach the worker's own encoding and decoding that way.
# (CPython's private accelerators: typeshed does not declare them)
_C_ENCODER = json.encoder.c_make_encoder  # type: ignore[attr-defined]
_C_ENCODE_STR = json.encoder.c_encode_basestring  # type: ignore[attr-defined]
_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # a C scanner holding its own parse settings


def dumps(obj: Any) -> bytes:
    """Compact JSON, the one encoding both sides use (equal states give equal text; same as json.dumps with
    separators=(",", ":"), ensure_ascii=False). Lone surrogates become JSON escapes, so any str survives the trip.
    """
    if _C_ENCODER is None or _C_ENCODE_STR is None:  # no C accelerator (not CPython): the pure-Python encoder
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    else:
        encode = _C_ENCODER({}, _not_serializable, _C_ENCODE_STR, None, ":", ",", False, False, True)
        text = "".join(encode(obj, 0))
    return text.encode("utf-8", "backslashreplace")


def loads(data: bytes) -> Any:
    """Parse one JSON document (as `dumps` writes it) with the C scanner bound at import."""
    text = data.decode("utf-8")
    try:
        obj, end = _SCAN(text, 0)
    except StopIteration as exc:
        raise ValueError(f"invalid JSON at offset {exc.value}") from None
    if end != len(text):
        raise ValueError(f"extra data after JSON at offset {end}")
    return obj


# ----------------------------------------------------------------------------------------------------------- checks


def attr_problem(name: str) -> str | None:
    """Why agent code may not touch attribute `name` (None if it may)."""
    if name.startswith("_") and name not in SAFE_DUNDER_ATTRS:
        return f"attribute {name!r} is not allowed (attributes starting with '_' are blocked in this sandbox)"
    if name in FRAME_ATTRS:
        return f"attribute {name!r} is not allowed (frame and generator internals are blocked in this sandbox)"
    if name in CLASS_ATTRS:
        return f"attribute {name!r} is not allowed (class internals are blocked in this sandbox)"
    return None


def _name_problem(name: str, what: str) -> str | None:
    if name.startswith("__") and name != "__name__":
        return f"{what} {name!r} is not allowed (names starting with '__' are blocked in this sandbox)"
    return None


class _Checker(ast.NodeVisitor):
    """Collects the places where a cell reaches for interpreter internals by name."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def _add(self, node: ast.AST, problem: str | None) -> None:
        if problem:
            self.problems.append(f"line {getattr(node, 'lineno', '?')}: {problem}")

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "__name__" and not isinstance(node.ctx, ast.Load):
            self._add(node, "assigning '__name__' is not allowed")
        self._add(node, _name_problem(node.id, "name"))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._add(node, attr_problem(node.attr))
        self.generic_visit(node)

    def _visit_def(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if node.name.startswith("__") and node.name not in SAFE_DUNDER_DEFS:
            self._add(node, f"defining {node.name!r} is not allowed in this sandbox")
        self.generic_visit(node)

    visit_FunctionDef = _visit_def
    visit_AsyncFunctionDef = _visit_def

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._add(node, _name_problem(node.name, "class name"))
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        self._add(node, _name_problem(node.arg, "argument"))
        self.generic_visit(node)

    def visit_alias(self, node: ast.alias) -> None:
        if any(part.startswith("_") for part in node.name.split(".")):
            self._add(node, f"importing {node.name!r} is not allowed (names starting with '_' are blocked)")
        if node.asname:
            self._add(node, _name_problem(node.asname, "name"))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self._add(node, "relative imports are not allowed")
        if node.module and any(part.startswith("_") for part in node.module.split(".")):
            self._add(node, f"importing {node.module!r} is not allowed (names starting with '_' are blocked)")
        self.generic_visit(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self._add(node, _name_problem(node.name, "name"))
        self.generic_visit(node)

    def _visit_names(self, node: ast.Global | ast.Nonlocal) -> None:
        for name in node.names:
            self._add(node, _name_problem(name, "name"))

    visit_Global = _visit_names
    visit_Nonlocal = _visit_names

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        for attr in node.kwd_attrs:  # `case C(attr=...)` reads attributes by name
            self._add(node, attr_problem(attr))
            if attr in ("format", "format_map"):
                self._add(node, f"{attr!r} is not allowed in a class pattern")
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self._add(node, _name_problem(node.name, "name"))
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self._add(node, _name_problem(node.name, "name"))

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self._add(node, _name_problem(node.rest, "name"))
        self.generic_visit(node)


def check_cell(tree: ast.Module) -> list[str]:
    """The static problems of a parsed cell (empty if it may run)."""
    checker = _Checker()
    checker.visit(tree)
    return checker.problems


class _Rewriter(ast.NodeTransformer):
    """Routes `x.format` / `x.format_map` through a vetting helper, and displays a final bare expression."""

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if node.attr in ("format", "format_map") and isinstance(node.ctx, ast.Load):
            call = ast.Call(ast.Name("__sb_attr__", ast.Load()), [node.value, ast.Constant(node.attr)], [])
            return ast.copy_location(call, node)
        return node


def rewrite_cell(tree: ast.Module) -> ast.Module:
    """The cell as it runs: vetted `.format`, and like a notebook the value of a final expression is shown."""
    tree = _Rewriter().visit(tree)
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body[-1]
        last.value = ast.copy_location(ast.Call(ast.Name("__sb_display__", ast.Load()), [last.value], []), last.value)
    return ast.fix_missing_locations(tree)


def check_format_string(fmt: str, depth: int = 0) -> None:
    """Reject format fields that read blocked attributes (`"{0.__class__}"`), nested specs included."""
    for _literal, field, spec, _conversion in _string.formatter_parser(fmt):
        if field is not None:
            _first, rest = _string.formatter_field_name_split(field)
            for is_attr, key in rest:
                problem = attr_problem(key) if is_attr else None
                if problem:
                    raise SandboxError(f"format string field {field!r}: {problem}")
        if spec and depth < 3:
            check_format_string(spec, depth + 1)


def _vetted_format(text: str, name: str) -> Callable[..., str]:
    """`text.format` / `text.format_map` that first rejects fields reading blocked attributes."""

    def vetted(*args: Any, **kwargs: Any) -> str:
        check_format_string(text)
        return str.format(text, *args, **kwargs) if name == "format" else str.format_map(text, *args, **kwargs)

    vetted.__name__ = vetted.__qualname__ = name
    return vetted


def _vetted_unbound_format(name: str) -> Callable[..., str]:
    """`str.format` / `str.format_map` taken from the type, vetted the same way."""

    def vetted(text: str, *args: Any, **kwargs: Any) -> str:
        if not isinstance(text, str):
            raise TypeError(f"descriptor {name!r} requires a 'str' object")
        return _vetted_format(text, name)(*args, **kwargs)

    vetted.__name__ = vetted.__qualname__ = name
    return vetted


# ------------------------------------------------------------------------------------------------------------ guard


def describe_event(event: str, args: tuple[Any, ...]) -> str:
    """A short reason for a denied audit event (never calls repr on agent objects)."""
    first = args[0] if args else None
    detail = f" ({first!r:.100})" if type(first) in (str, bytes, int) else ""
    if event == "open":
        return f"opening files{detail} is not allowed"
    if event == "import":
        return f"importing {first!r:.100} is not allowed" if type(first) is str else "importing is not allowed"
    if event in ("exec", "compile", "code.__new__", "function.__new__"):
        return "running new code at runtime (exec/eval, or code made by a library) is not allowed"
    if event == "builtins.input":
        return "input() is not available (nobody can answer it)"
    if event.startswith(("socket.", "urllib.", "http.", "ftplib.", "smtplib.", "poplib.", "imaplib.", "nntplib.",
                         "telnetlib.", "webbrowser.")):
        return f"network access ({event}) is not allowed"
    if event.startswith("ctypes."):
        return f"ctypes ({event}) is not allowed"
    if event.startswith(("os.", "subprocess.", "pty.", "shutil.", "tempfile.", "glob.", "fcntl.", "mmap.",
                         "resource.", "signal.", "syslog.", "_posixsubprocess")):
        return f"operating-system access ({event}{detail}) is not allowed"
    if event.startswith(("sys.", "object.", "gc.", "cpython.", "marshal.", "pickle.", "_thread.")):
        return f"access to interpreter internals ({event}) is not allowed"
    return f"the operation {event!r} is not allowed in this sandbox"


class Guard:
    """The audit hook's policy: deny every event but a few, plus windows the worker opens for its own needs.

    Windows (an event name allowed for a moment) are opened only around the worker's own code, with the cyclic
    garbage collector off so no agent finalizer can run inside one.
    """

    def __init__(self) -> None:
        self.windows: set[str] = set()
        self.exec_code: types.CodeType | None = None
        self.violations: list[str] = []

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        """The audit hook (PEP 578): raise to abort the operation."""
        if event in ALWAYS_ALLOWED_EVENTS or event in self.windows:
            return
        if event == "exec" and args and self.exec_code is not None and args[0] is self.exec_code:
            return
        reason = describe_event(event, args)
        self.violations.append(reason)
        raise SandboxViolation(reason)

    @contextlib.contextmanager
    def window(self, *events: str) -> Iterator[None]:
        """Allow `events` inside the block (the worker's own parse, traceback walk, rlimit update)."""
        was_enabled = gc.isenabled()
        gc.disable()
        self.windows.update(events)
        try:
            yield
        finally:
            self.windows.difference_update(events)
            if was_enabled:
                gc.enable()


# ------------------------------------------------------------------------------------------------------ module views


class ModuleView:
    """A read-only stand-in for an allowed module: its public attributes that are not modules."""

    __slots__ = ("_sb_attrs", "_sb_name")

    def __init__(self, name: str, attrs: dict[str, Any]) -> None:
        try:
            object.__getattribute__(self, "_sb_attrs")
        except AttributeError:
            pass
        else:  # `json.__init__(...)` from agent code
            raise AttributeError("modules are read-only in this sandbox")
        object.__setattr__(self, "_sb_name", name)
        object.__setattr__(self, "_sb_attrs", attrs)

    def __getattr__(self, attr: str) -> Any:
        attrs = object.__getattribute__(self, "_sb_attrs")
        if attr == "__all__":  # for `from m import *`
            return [a for a in attrs if not isinstance(attrs[a], ModuleView)]
        try:
            return attrs[attr]
        except KeyError:
            name = object.__getattribute__(self, "_sb_name")
            raise AttributeError(f"module {name!r} has no attribute {attr!r} in this sandbox") from None

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError("modules are read-only in this sandbox")

    def __delattr__(self, attr: str) -> None:
        raise AttributeError("modules are read-only in this sandbox")

    def __dir__(self) -> list[str]:
        return sorted(object.__getattribute__(self, "_sb_attrs"))

    def __repr__(self) -> str:
        return f"<module {object.__getattribute__(self, '_sb_name')!r}>"


def build_views(names: list[str]) -> dict[str, ModuleView]:
    """Import the allowed modules and wrap each in a view; `a.b` also becomes attribute `b` of `a`'s view."""
    views: dict[str, ModuleView] = {}
    for name in sorted(names, key=lambda n: n.count(".")):
        module = importlib.import_module(name)
        public = getattr(module, "__all__", None) or [a for a in vars(module) if not a.startswith("_")]
        excluded = EXCLUDED_NAMES.get(name, frozenset())
        attrs = {}
        for attr in public:
            if attr.startswith("_") or attr in excluded or not hasattr(module, attr):
                continue
            value = getattr(module, attr)
            if not isinstance(value, types.ModuleType):
                attrs[attr] = value
        views[name] = ModuleView(name, attrs)
        parent, _, child = name.rpartition(".")
        if parent in views:
            object.__getattribute__(views[parent], "_sb_attrs")[child] = views[name]
    return views


def prewarm() -> None:
    """Run the allowed modules' lazy paths once, so they do not need an import after the lock-down."""
    probes: list[Callable[[], object]] = [
        lambda: __import__("datetime").datetime.strptime("2024-01-02 03:04:05", "%Y-%m-%d %H:%M:%S"),
        lambda: __import__("time").strptime("2024", "%Y"),
        lambda: __import__("datetime").datetime.now().astimezone().isoformat(),
        lambda: "x".encode("utf-16") + "x".encode("utf-32") + "x".encode("latin-1") + "x".encode("cp1252"),
        lambda: json.loads(json.dumps({"a": [1.5, "é", None]}, indent=2, sort_keys=True)),
        lambda: __import__("re").compile(r"(?i)\d+\s*\w+").findall("12 ab"),
        lambda: __import__("statistics").stdev([1.0, 2.0, 4.0]),
        lambda: __import__("statistics").median([1, 2, 3]),
        lambda: __import__("decimal").Decimal("1.15").quantize(__import__("decimal").Decimal("0.1")),
        lambda: __import__("random").Random(0).sample(range(10), 3),
        lambda: __import__("textwrap").fill("a b c d", 3),
        lambda: __import__("calendar").monthrange(2024, 2),
        lambda: __import__("pprint").pformat({"a": [1, 2]}),
        lambda: __import__("difflib").get_close_matches("ab", ["ac", "ab"]),
        lambda: __import__("hashlib").sha256(b"").hexdigest() + __import__("hashlib").md5(b"").hexdigest(),
        lambda: __import__("base64").b64decode(__import__("base64").b64encode(b"x")),
        lambda: __import__("string").Template("$a").substitute(a=1),
    ]
    for probe in probes:
        with contextlib.suppress(Exception):
            probe()


# ----------------------------------------------------------------------------------------------------------- output


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


# ------------------------------------------------------------------------------------------------------- apis proxy


class ApiError(ValueError):
    """An app refused the call (its message says why and how to fix it)."""


class ApiAttributeError(ApiError, AttributeError):
    """Unknown app or api name (an AttributeError too, so `hasattr` keeps working)."""


#: Exception classes a forwarded call may raise in the cell, by the name the parent reports (others: ApiError).
CALL_ERRORS: dict[str, type[Exception]] = {
    "ApiError": ApiError,
    "ApiAttributeError": ApiAttributeError,
    **{name: value for name, value in vars(builtins).items()
       if isinstance(value, type) and issubclass(value, Exception) and not name.startswith("_")},
}


class ChannelBroken(BaseException):
    """The channel to the parent cannot be trusted any more (a call was cut mid-frame): the worker exits."""


class Endpoint:
    """`apis.<app>.<api>`: calling it sends the call to the parent, which runs it on the real app state."""

    def __init__(self, channel: Channel, app: str, api: str, doc: str) -> None:
        self._sb_where = (app, api)
        self._sb_channel = channel
        self.__name__ = api
        self.__qualname__ = f"{app}.{api}"
        self.__doc__ = doc

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        app, api = self._sb_where
        return self._sb_channel.call(app, api, args, kwargs)

    def __repr__(self) -> str:
        app, api = self._sb_where
        return f"<api apis.{app}.{api}>"


class AppProxy:
    """`apis.<app>`: one attribute per api (and the app's plain values, such as its description)."""

    def __init__(self, channel: Channel, name: str, spec: dict[str, Any]) -> None:
        self._sb_name = name
        self._sb_names = [*spec["apis"], *spec["values"]]
        self._sb_apis = list(spec["apis"])
        for api, doc in spec["apis"].items():
            setattr(self, api, Endpoint(channel, name, api, doc))
        for key, value in spec["values"].items():
            setattr(self, key, value)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise ApiAttributeError(f"App {self._sb_name!r} has no api named {name!r}. Its apis are: "
                                f"{', '.join(self._sb_apis)}. See apis.api_docs.show_api_doc(app_name="
                                f"{self._sb_name!r}, api_name=...).")

    def __dir__(self) -> list[str]:
        return list(self._sb_names)

    def __repr__(self) -> str:
        return f"<apis.{self._sb_name}: {', '.join(self._sb_apis)}>"


class ApisProxy:
    """`apis`: one attribute per app. Holds no state: every call goes to the parent."""

    def __init__(self, channel: Channel, catalog: dict[str, Any]) -> None:
        self._sb_apps = list(catalog)
        for app, spec in catalog.items():
            setattr(self, app, AppProxy(channel, app, spec))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise ApiAttributeError(f"No app named {name!r}. Apps: {', '.join(self._sb_apps)}. "
                                "Use apis.api_docs.show_app_descriptions().")

    def __dir__(self) -> list[str]:
        return list(self._sb_apps)

    def __repr__(self) -> str:
        return f"<apis: {', '.join(self._sb_apps)}>"


class Channel:
    """The worker's end of the pipe pair: requests in, calls out and their results back, replies out."""

    def __init__(self, worker: Worker, rfd: int, wfd: int, call_max_bytes: int, result_max_bytes: int) -> None:
        self.worker = worker
        self.rfd, self.wfd = rfd, wfd
        self.call_max_bytes = call_max_bytes
        self.result_max_bytes = result_max_bytes
        self.seq: Any = None

    def call(self, app: str, api: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Forward one api call; return its JSON result or raise the error the app raised."""
        try:
            payload = dumps({"op": "call", "seq": self.seq, "app": app, "api": api, "args": args, "kwargs": kwargs})
        except (TypeError, ValueError, RecursionError) as exc:
            raise TypeError(f"the arguments of apis.{app}.{api} must be plain data (str, int, float, bool, None, "
                            f"and lists and dicts of them): {_safe_str(exc)}") from None
        if len(payload) > self.call_max_bytes:
            raise ValueError(f"the arguments of apis.{app}.{api} are {len(payload):,} bytes of JSON; the limit is "
                             f"{self.call_max_bytes:,}")
        worker = self.worker
        worker.in_call = True  # the CPU timer only notes a hit now: a frame must never be cut in half
        try:
            write_all(self.wfd, frame(payload))
            raw = read_frame(self.rfd, self.result_max_bytes)
            if raw is None:
                raise ChannelBroken()
            reply = loads(raw)
        except BaseException:
            raise ChannelBroken() from None
        finally:
            worker.in_call = False
        if worker.cpu_hit:
            raise CpuLimitExceeded()
        if type(reply) is not dict or reply.get("seq") != self.seq:
            raise ChannelBroken()
        if reply.get("op") == "return":
            return reply.get("value")
        error = CALL_ERRORS.get(str(reply.get("type")), ApiError)
        raise error(str(reply.get("message", "")))


# ---------------------------------------------------------------------------------------------------- plain copies


def _plain_copy(x: Any) -> Any:
    """`copy.copy` for plain data (what the apis return); other objects are refused, since a copy protocol
    (`__reduce_ex__`, `__copy__`, a memo) is a way to reach an object's internals."""
    t = type(x)
    if t in (list, dict, set, bytearray):
        return t(x)
    if t in (str, int, float, bool, complex, bytes, tuple, frozenset, type(None), range):
        return x
    raise TypeError(f"copy.copy copies plain data only (dict, list, set, str, numbers...) in this sandbox, "
                    f"not {type(x).__name__}")


def _plain_deepcopy(x: Any, memo: Any = None) -> Any:
    """`copy.deepcopy` for plain data, nested (the memo argument is accepted and ignored)."""
    t = type(x)
    if t is dict:
        return {_plain_deepcopy(k): _plain_deepcopy(v) for k, v in x.items()}
    if t in (list, tuple, set, frozenset):
        return t(_plain_deepcopy(v) for v in x)
    if t is bytearray:
        return bytearray(x)
    if t in (str, int, float, bool, complex, bytes, type(None), range):
        return x
    raise TypeError(f"copy.deepcopy copies plain data only (dict, list, set, str, numbers...) in this sandbox, "
                    f"not {type(x).__name__}")


# ------------------------------------------------------------------------------------------------------------ types

#: Names a class made at runtime (type(name, bases, ns)) may define: what a class statement in a cell may define.
CLASS_NAMESPACE_DUNDERS = SAFE_DUNDER_DEFS | {"__module__", "__qualname__", "__doc__", "__annotations__"}


def vet_class_namespace(ns: Any) -> None:
    """Refuse a runtime class namespace that sets what a cell's class statement may not (`__match_args__`,
    `__reduce_ex__`, `__getattr__`, finalizers...): the same rule as the static check."""
    if not isinstance(ns, dict):
        raise TypeError("type() needs a dict as its third argument")
    for key in list(ns):
        if type(key) is not str:
            raise TypeError("class attribute names must be strings")
        if key.startswith("_") and key not in CLASS_NAMESPACE_DUNDERS:
            raise SandboxError(f"a class may not define {key!r} in this sandbox")


class TypeGate:
    """What a cell sees as `type` (and as any metaclass it gets from `type(cls)`): `type(x)` as usual, but the
    three-argument form and subclassing go through `vet_class_namespace`."""

    _vetted: dict[type, type] = {}  # noqa: RUF012 - a cache shared by all gates

    def __init__(self, meta: type) -> None:
        self._sb_meta = meta

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs:
            obj = args[0]
            if type(obj) is TypeGate:  # type(type) is type
                obj = obj._sb_meta
            return gate_type(type(obj))
        if len(args) == 3:
            vet_class_namespace(args[2])
        return self._sb_meta(*args, **kwargs)

    def __instancecheck__(self, obj: Any) -> bool:
        return isinstance(obj, self._sb_meta)

    def __subclasscheck__(self, cls: Any) -> bool:
        return isinstance(cls, type) and issubclass(cls, self._sb_meta)

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        return (vetted_metaclass(self._sb_meta),)

    def __eq__(self, other: object) -> bool:
        return other is self._sb_meta or (isinstance(other, TypeGate) and other._sb_meta is self._sb_meta)

    def __hash__(self) -> int:
        return hash(self._sb_meta)

    def __repr__(self) -> str:
        return repr(self._sb_meta)


def vetted_metaclass(meta: type) -> type:
    """A subclass of `meta` whose class creation is vetted (what `class M(type): ...` in a cell derives from)."""
    cached = TypeGate._vetted.get(meta)
    if cached is None:

        def __new__(mcs: type, name: str, bases: tuple[type, ...], ns: dict[str, Any], **kwargs: Any) -> type:
            vet_class_namespace(ns)
            return meta.__new__(mcs, name, bases, ns, **kwargs)

        cached = meta(meta.__name__, (meta,), {"__new__": __new__, "__module__": "builtins", "_sb_vetted": True})
        TypeGate._vetted[meta] = cached
    return cached


_GATES: dict[type, TypeGate] = {}


def gate_type(t: type) -> Any:
    """`t` itself, or a gate in its place when `t` is a metaclass (a way to build classes with any namespace) that
    does not vet class namespaces itself."""
    if isinstance(t, type) and issubclass(t, type) and not getattr(t, "_sb_vetted", False):
        gate = _GATES.get(t)
        if gate is None:
            gate = _GATES[t] = TypeGate(t)
        return gate
    return t


# ------------------------------------------------------------------------------------------------------------ worker


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
                copy=_plain_copy, deepcopy=_plain_deepcopy)
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
                    return _vetted_format(value.__self__, name)
                if type(value) is types.MethodDescriptorType and value.__objclass__ is str:
                    return _vetted_unbound_format(name)
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
            return _reply("syntax", f"Your code could not be compiled: {type(exc).__name__}: {_safe_str(exc)}")
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


def _safe_str(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:  # an agent-defined __str__ may fail
        return "<unprintable>"
    return text if len(text) <= 2000 else text[:2000] + "..."


def _exception_line(exc: BaseException) -> str:
    name = type(exc).__name__
    if type(name) is not str:
        name = "Exception"
    text = _safe_str(exc)
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
        write_all(wfd, frame(dumps({"ready": False, "error": f"{type(exc).__name__}: {_safe_str(exc)}"})))
        return 1
    loaded = [m for m in DANGEROUS_MODULES if m in sys.modules]
    write_all(wfd, frame(dumps({"ready": True, "pid": os.getpid(), "uid": os.getuid(), "loaded": loaded})))
    with contextlib.suppress(BrokenPipeError):
        worker.serve()
    return 0


if __name__ == "__main__":
    os._exit(main(sys.argv))  # skip interpreter teardown (atexit, finalizers of agent objects)
