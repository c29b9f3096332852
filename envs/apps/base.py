"""Shared machinery of the simulated apps: the error type, argument checking, pagination, ids, times and docs.

Every app is an `App` subclass whose public methods are its endpoints. `make_endpoint` wraps each one so that agent
code gets keyword/positional binding, type checks against the method's hints (raising `ApiError`, never TypeError),
internal failures reported as `ApiError`, and results deep-copied so that no returned object aliases the state.
"""

import inspect
import re
import types
import typing
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

PAGE_LIMIT_MAX = 20
PAGE_LIMIT_DEFAULT = 5
DEFAULT_NOW = "2026-03-14T10:00:00"
_EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


class ApiError(ValueError):
    """An api call failed because of its arguments or the apps' state; the message says how to fix the call."""


class ApiAttributeError(ApiError, AttributeError):
    """Unknown app or api name (an AttributeError too, so `hasattr` keeps working)."""


# ---------------------------------------------------------------------------------------------------------------------
# JSON helpers


def json_copy(obj: Any) -> Any:
    """Deep copy of a JSON-able value (dict/list/str/int/float/bool/None); raises ApiError on anything else."""
    if obj is None or isinstance(obj, str | bool | int):
        return obj
    if isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            raise ApiError("Numbers must be finite (no NaN or infinity).")
        return obj
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise ApiError(f"Dictionary keys must be strings, got {type(k).__name__} key {k!r}.")
            out[k] = json_copy(v)
        return out
    if isinstance(obj, list | tuple):
        return [json_copy(v) for v in obj]
    raise ApiError(f"Value of type {type(obj).__name__} is not JSON-serializable; use str, int, float, bool, list, "
                   "dict or None.")


# ---------------------------------------------------------------------------------------------------------------------
# Argument checking from type hints


def type_name(ann: Any) -> str:
    """Readable name of a type hint, as shown in the api docs."""
    if ann is inspect.Parameter.empty or ann is Any:
        return "any"
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(ann))
    if origin is Literal:
        return "str"
    if origin in (list, dict):
        args = typing.get_args(ann)
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]" if args else origin.__name__
    if ann is type(None):
        return "None"
    return getattr(ann, "__name__", str(ann))


def literal_choices(ann: Any) -> list | None:
    """The allowed values of a Literal hint (possibly inside `| None`), else None."""
    if typing.get_origin(ann) is Literal:
        return list(typing.get_args(ann))
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        for a in typing.get_args(ann):
            ch = literal_choices(a)
            if ch is not None:
                return ch
    return None


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def make_checker(ann: Any) -> Callable[[Any], Any]:
    """Checker for one type hint: returns the (possibly normalized) value or raises `_Mismatch`."""
    if ann is inspect.Parameter.empty or ann is Any:
        return json_copy
    if ann is type(None):
        def check_none(v):
            if v is not None:
                raise _Mismatch
            return v
        return check_none
    if ann is bool:
        def check_bool(v):
            if not isinstance(v, bool):
                raise _Mismatch
            return v
        return check_bool
    if ann is int:
        def check_int(v):
            if isinstance(v, bool):
                raise _Mismatch
            if isinstance(v, int):
                return v
            if isinstance(v, float) and v.is_integer():
                return int(v)
            raise _Mismatch
        return check_int
    if ann is float:
        def check_float(v):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise _Mismatch
            v = float(v)
            if v != v or v in (float("inf"), float("-inf")):
                raise _Mismatch
            return v
        return check_float
    if ann is str:
        def check_str(v):
            if not isinstance(v, str):
                raise _Mismatch
            return v
        return check_str
    origin = typing.get_origin(ann)
    if origin is Literal:
        choices = typing.get_args(ann)

        def check_literal(v):
            if not isinstance(v, str) or v not in choices:
                raise _Mismatch
            return v
        return check_literal
    if ann is list or origin is list:
        args = typing.get_args(ann)
        item = make_checker(args[0]) if args else json_copy

        def check_list(v):
            if not isinstance(v, list | tuple):
                raise _Mismatch
            return [item(x) for x in v]
        return check_list
    if ann is dict or origin is dict:
        def check_dict(v):
            if not isinstance(v, dict):
                raise _Mismatch
            try:
                return json_copy(v)
            except ApiError:
                raise _Mismatch from None
        return check_dict
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(ann)
        # Try exact-type members first so that e.g. `str | int | float` keeps ints as ints.
        checkers = [make_checker(a) for a in members]

        def check_union(v):
            for c in checkers:
                try:
                    return c(v)
                except _Mismatch:
                    continue
            raise _Mismatch
        return check_union
    raise TypeError(f"Unsupported api type hint {ann!r}")


class _Mismatch(Exception):
    """Internal signal: a value does not match a hint."""


# ---------------------------------------------------------------------------------------------------------------------
# Docstrings


COMMON_PARAM_DOCS = {
    "page_index": "Index of the page of results to return, starting at 0. Keep increasing it until an empty list "
                  "comes back.",
    "page_limit": f"Number of results per page (1 to {PAGE_LIMIT_MAX}).",
    "query": "Search text, matched case-insensitively against the relevant text fields; empty matches everything.",
    "start_date": "Only include items at or after this date/time (ISO format, e.g. '2026-03-01' or "
                  "'2026-03-01T09:00:00').",
    "end_date": "Only include items at or before this date/time (ISO format; a bare date includes that whole day).",
}


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str], str]:
    """Split a method docstring into (description, {param: description}, returns)."""
    doc = inspect.cleandoc(doc or "")
    desc_lines: list[str] = []
    params: dict[str, str] = {}
    returns: list[str] = []
    section = "desc"
    current = None
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            section = "args"
            continue
        if stripped.startswith("Returns:"):
            section = "returns"
            rest = stripped[len("Returns:"):].strip()
            if rest:
                returns.append(rest)
            continue
        if section == "desc":
            desc_lines.append(stripped)
        elif section == "args":
            m = re.match(r"^(\w+)(?:\s*\([^)]*\))?:\s*(.*)$", stripped)
            if m and not line.startswith("        "):
                current = m.group(1)
                params[current] = m.group(2)
            elif current and stripped:
                params[current] += " " + stripped
        else:
            if stripped:
                returns.append(stripped)
    description = " ".join(x for x in desc_lines if x).strip()
    return description, params, " ".join(returns).strip()


# ---------------------------------------------------------------------------------------------------------------------
# Endpoint wrapper


class EndpointSpec:
    """Signature and documentation of one endpoint, computed once per App class."""

    def __init__(self, app_name: str, method: Callable) -> None:
        self.app_name = app_name
        self.name = method.__name__
        sig = inspect.signature(method)
        hints = typing.get_type_hints(method)
        description, pdocs, returns = parse_docstring(method.__doc__)
        self.description = description
        self.returns = returns
        self.params: list[dict] = []
        self.checkers: dict[str, Callable] = {}
        self.defaults: dict[str, Any] = {}
        self.order: list[str] = []
        for pname, p in list(sig.parameters.items())[1:]:  # skip self
            ann = hints.get(pname, inspect.Parameter.empty)
            self.order.append(pname)
            self.checkers[pname] = make_checker(ann)
            pdoc = pdocs.get(pname) or COMMON_PARAM_DOCS.get(pname, "")
            if not pdoc and self.name.startswith("update_") and p.default is None:
                pdoc = f"New {pname.replace('_', ' ')}; None keeps the current value."
            entry = {"name": pname, "type": type_name(ann), "required": p.default is inspect.Parameter.empty,
                     "description": pdoc}
            if p.default is not inspect.Parameter.empty:
                entry["default"] = p.default
                self.defaults[pname] = p.default
            choices = literal_choices(ann)
            if choices:
                entry["choices"] = choices
            self.params.append(entry)
        self.label = f"apis.{app_name}.{self.name}"

    def usage(self) -> str:
        parts = []
        for p in self.params:
            parts.append(f"{p['name']}: {p['type']}" + (f" = {p['default']!r}" if "default" in p else ""))
        return f"{self.label}({', '.join(parts)})"

    def doc(self) -> dict:
        return {"app_name": self.app_name, "api_name": self.name, "description": self.description,
                "parameters": json_copy(self.params), "returns": self.returns, "usage": self.usage()}

    def bind(self, args: tuple, kwargs: dict) -> dict:
        if len(args) > len(self.order):
            raise ApiError(f"{self.label} takes at most {len(self.order)} positional arguments but "
                           f"{len(args)} were given. Usage: {self.usage()}")
        call = dict(zip(self.order, args, strict=False))
        for k, v in kwargs.items():
            if k not in self.checkers:
                raise ApiError(f"{self.label} got an unexpected argument {k!r}. Its parameters are: "
                               f"{', '.join(self.order) or '(none)'}. Usage: {self.usage()}")
            if k in call:
                raise ApiError(f"{self.label} got multiple values for argument {k!r}.")
            call[k] = v
        out = {}
        for p in self.params:
            pname = p["name"]
            if pname in call:
                value = call[pname]
                try:
                    out[pname] = self.checkers[pname](value)
                except _Mismatch:
                    extra = f" (one of {p['choices']})" if "choices" in p else ""
                    raise ApiError(f"Argument {pname!r} of {self.label} must be {p['type']}{extra}, got "
                                   f"{type(value).__name__} {_describe(value)}.") from None
                except ApiError as e:
                    raise ApiError(f"Argument {pname!r} of {self.label}: {e}") from None
                except Exception:  # e.g. absurdly deep nesting
                    raise ApiError(f"Argument {pname!r} of {self.label} could not be read as {p['type']}.") from None
            elif p["required"]:
                raise ApiError(f"{self.label} is missing the required argument {pname!r}. Usage: {self.usage()}")
            else:
                out[pname] = json_copy(self.defaults[pname])
        return out


def make_endpoint(spec: EndpointSpec, bound: Callable) -> Callable:
    """The callable exposed to agent code for one endpoint."""

    def endpoint(*args, **kwargs):
        call = spec.bind(args, kwargs)
        try:
            result = bound(**call)
        except ApiError:
            raise
        except Exception as e:  # never leak Python internals to the agent
            raise ApiError(f"Internal error in {spec.label}: {type(e).__name__}: {e}") from None
        return json_copy(result)

    endpoint.__name__ = spec.name
    endpoint.__qualname__ = f"{spec.app_name}.{spec.name}"
    endpoint.__doc__ = f"{spec.usage()}\n\n{spec.description}" + (f"\n\nReturns: {spec.returns}" if spec.returns
                                                                 else "")
    return endpoint


# ---------------------------------------------------------------------------------------------------------------------
# Times


def parse_time(value: str, pname: str, *, end_of_day: bool = False) -> str:
    """Normalize an ISO date or datetime string to 'YYYY-MM-DDTHH:MM:SS' (a bare date: start or end of that day)."""
    v = value.strip()
    try:
        if len(v) == 10:
            d = datetime.strptime(v, "%Y-%m-%d")
            d = d.replace(hour=23, minute=59, second=59) if end_of_day else d
        else:
            d = datetime.fromisoformat(v.replace(" ", "T").replace("Z", ""))
            if d.tzinfo is not None:
                d = d.replace(tzinfo=None)
    except ValueError:
        raise ApiError(f"Argument {pname!r} must be an ISO date 'YYYY-MM-DD' or datetime 'YYYY-MM-DDTHH:MM:SS', "
                       f"got {value!r}.") from None
    return d.strftime("%Y-%m-%dT%H:%M:%S")


def parse_date(value: str, pname: str) -> str:
    """Normalize a date string to 'YYYY-MM-DD'."""
    return parse_time(value, pname)[:10]


def add_time(iso: str, **delta: float) -> str:
    return (datetime.fromisoformat(iso) + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%S")


def check_email(value: str, pname: str = "email") -> str:
    v = value.strip().lower()
    if not _EMAIL_RE.match(v):
        raise ApiError(f"Argument {pname!r} must be an email address like 'name@example.com', got {value!r}.")
    return v


def nonempty(value: str, pname: str) -> str:
    v = value.strip()
    if not v:
        raise ApiError(f"Argument {pname!r} must not be empty.")
    return v


def positive_amount(value: float, pname: str = "amount") -> float:
    if value <= 0:
        raise ApiError(f"Argument {pname!r} must be a positive amount, got {value}.")
    if round(value, 2) != round(value, 6):
        raise ApiError(f"Argument {pname!r} must have at most 2 decimal places (cents), got {value}.")
    return round(value, 2)


def money(x: float) -> float:
    return round(x + 0.0, 2)


def matches(query: str, *fields: Any) -> bool:
    """Case-insensitive match: every whitespace-separated word of `query` occurs in one of `fields`."""
    if not query.strip():
        return True
    hay = " ".join(str(f) for f in fields if f is not None).lower()
    return all(w in hay for w in query.lower().split())


def paginate(items: list, page_index: int, page_limit: int) -> list:
    if page_index < 0:
        raise ApiError(f"page_index must be >= 0, got {page_index}.")
    if not 1 <= page_limit <= PAGE_LIMIT_MAX:
        raise ApiError(f"page_limit must be between 1 and {PAGE_LIMIT_MAX}, got {page_limit}. Loop over "
                       "page_index to get more results.")
    start = page_index * page_limit
    return items[start:start + page_limit]


# ---------------------------------------------------------------------------------------------------------------------
# App base class


class App:
    """Base of the simulated apps. Public methods of subclasses are the endpoints; state lives in `self._db`."""

    name: str = ""
    state_key: str | None = None  # key of this app's tables in the state (default: `name`)
    description: str = ""
    schema: typing.ClassVar[dict[str, Any]] = {}

    def __init__(self, state: dict) -> None:
        self._state = state
        meta = state.setdefault("_meta", {})
        meta.setdefault("now", DEFAULT_NOW)
        meta.setdefault("next_ids", {})
        self._db = state.setdefault(self.state_key or self.name, {})
        for table, default in self.schema.items():
            if table not in self._db:
                self._db[table] = json_copy(default)

    # -- helpers (underscore: never exposed) --
    @property
    def _now(self) -> str:
        return self._state["_meta"]["now"]

    def _new_id(self, table: str, existing: typing.Iterable[int] | None = None) -> int:
        counters = self._state["_meta"]["next_ids"]
        key = f"{self.name}.{table}"
        if key not in counters:
            ids = existing if existing is not None else (r["id"] for r in self._db[table])
            counters[key] = max(ids, default=0) + 1
        new = counters[key]
        counters[key] = new + 1
        return new

    def _find(self, table: str, rid: int, entity: str, hint: str) -> dict:
        for r in self._db[table]:
            if r["id"] == rid:
                return r
        raise ApiError(f"No {entity} with id {rid}. {hint}")

    def _remove(self, table: str, rid: int) -> None:
        self._db[table] = [r for r in self._db[table] if r["id"] != rid]

    @property
    def _user_email(self) -> str:
        return self._state.get("_supervisor", {}).get("profile", {}).get("email", "me@example.com")

    @classmethod
    def _endpoint_names(cls) -> list[str]:
        names = []
        for klass in reversed(cls.__mro__):
            if klass in (App, object):
                continue
            for n, v in vars(klass).items():
                if not n.startswith("_") and callable(v) and n not in names:
                    names.append(n)
        return names


_SPEC_CACHE: dict[type, list[EndpointSpec]] = {}


def specs_of(cls: type[App]) -> list[EndpointSpec]:
    """Endpoint specs of an App class, in definition order (cached)."""
    if cls not in _SPEC_CACHE:
        _SPEC_CACHE[cls] = [EndpointSpec(cls.name, getattr(cls, n)) for n in cls._endpoint_names()]
    return _SPEC_CACHE[cls]
