"""`apis` inside the worker: proxies whose calls travel to the parent over the channel."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from .policy import CpuLimitExceeded, safe_str
from .wire import dumps, frame, loads, read_frame, write_all

if TYPE_CHECKING:
    from .serve import Worker


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
                            f"and lists and dicts of them): {safe_str(exc)}") from None
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


