"""The worker's guards past the static check: the audit hook, read-only module views, plain-data copies and
gated metaclasses."""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import json
import types
from collections.abc import Callable, Iterator
from typing import Any

from .policy import ALWAYS_ALLOWED_EVENTS, EXCLUDED_NAMES, SAFE_DUNDER_DEFS, SandboxError, SandboxViolation


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


def plain_copy(x: Any) -> Any:
    """`copy.copy` for plain data (what the apis return); other objects are refused, since a copy protocol
    (`__reduce_ex__`, `__copy__`, a memo) is a way to reach an object's internals."""
    t = type(x)
    if t in (list, dict, set, bytearray):
        return t(x)
    if t in (str, int, float, bool, complex, bytes, tuple, frozenset, type(None), range):
        return x
    raise TypeError(f"copy.copy copies plain data only (dict, list, set, str, numbers...) in this sandbox, "
                    f"not {type(x).__name__}")


def plain_deepcopy(x: Any, memo: Any = None) -> Any:
    """`copy.deepcopy` for plain data, nested (the memo argument is accepted and ignored)."""
    t = type(x)
    if t is dict:
        return {plain_deepcopy(k): plain_deepcopy(v) for k, v in x.items()}
    if t in (list, tuple, set, frozenset):
        return t(plain_deepcopy(v) for v in x)
    if t is bytearray:
        return bytearray(x)
    if t in (str, int, float, bool, complex, bytes, type(None), range):
        return x
    raise TypeError(f"copy.deepcopy copies plain data only (dict, list, set, str, numbers...) in this sandbox, "
                    f"not {type(x).__name__}")


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


