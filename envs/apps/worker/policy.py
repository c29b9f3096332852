"""What agent code in the worker may do: the allow-lists, the static check of a cell, and vetted formatting."""

from __future__ import annotations

import _string  # str.format's own field parser: used to vet format strings
import ast
from collections.abc import Callable
from typing import Any

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

#: The file name of a cell's code (its frames are the only ones a traceback shows).
CELL_FILENAME = "<cell>"


class SandboxError(Exception):
    """Raised in agent code when it uses something the sandbox does not allow (reported as "forbidden")."""


class ForbiddenImportError(SandboxError, ImportError):
    """An import outside the allow-list (still an ImportError, so `except ImportError` fallbacks work)."""


class SandboxViolation(SandboxError):
    """Raised by the audit hook: the cell reached a blocked operation past the Python-level checks."""


class CpuLimitExceeded(BaseException):
    """Raised in agent code when the cell's CPU time is up (SIGPROF timer; SIGXCPU as the backstop)."""


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


def vetted_format(text: str, name: str) -> Callable[..., str]:
    """`text.format` / `text.format_map` that first rejects fields reading blocked attributes."""

    def vetted(*args: Any, **kwargs: Any) -> str:
        check_format_string(text)
        return str.format(text, *args, **kwargs) if name == "format" else str.format_map(text, *args, **kwargs)

    vetted.__name__ = vetted.__qualname__ = name
    return vetted


def vetted_unbound_format(name: str) -> Callable[..., str]:
    """`str.format` / `str.format_map` taken from the type, vetted the same way."""

    def vetted(text: str, *args: Any, **kwargs: Any) -> str:
        if not isinstance(text, str):
            raise TypeError(f"descriptor {name!r} requires a 'str' object")
        return vetted_format(text, name)(*args, **kwargs)

    vetted.__name__ = vetted.__qualname__ = name
    return vetted


def safe_str(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:  # an agent-defined __str__ may fail
        return "<unprintable>"
    return text if len(text) <= 2000 else text[:2000] + "..."
