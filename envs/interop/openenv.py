"""OpenEnv both ways, on `openenv-core` itself: any distillgym env served as an OpenEnv server, and any OpenEnv server
played as a `gymnasium.Env[str, str]`.

    distillgym serve-env Sokoban-6x6-1-v0 --port 8000 [--privileged] [--max-sessions 64] [--session-timeout 300]
    env = make_env("openenv:http://127.0.0.1:8000")     # OpenEnvClientEnv: collect, eval, train (GRPO) on it

Server (`app(env_id)`): OpenEnv's own FastAPI app (`create_fastapi_app`): one env per WebSocket session (`/ws`),
at most `max_sessions` at once (OpenEnv answers CAPACITY_REACHED beyond), idle ones closed after `session_timeout_s`,
plus its `/health`, `/schema`, `/metadata`, `/reset`, `/step` routes and its own errors for malformed messages. The
action is `{"text": ...}`; the observation is `{"text": ..., "info": {...}}` with distillgym's info (task,
admissible actions, success, invalid action, feedback, step, task index and split, truncated) and privileged
information only when the server is started with it on (OpenEnv's serializer drops `metadata`, so info is a field of
its own). Reset takes distillgym's task choice: `seed` (the task index) and `split`.

Client (`OpenEnvClientEnv(url)`): OpenEnv's `GenericEnvClient` in its synchronous form, one session per env; reset
with a task index and split, step with text; OpenEnv's `done` is `terminated` unless the server's info says the
episode was cut (`truncated`).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any, ClassVar

import gymnasium as gym

from distillgym.envs.core.protocol import DEFAULT_PROTOCOL, AgentProtocol
from distillgym.envs.core.spaces import TextSpace
from distillgym.envs.core.text_env import SPLITS, choose_task

PREFIX = "openenv:"

try:
    from openenv.core.env_server.interfaces import Environment
    from openenv.core.env_server.types import Action, Observation, State
    from pydantic import Field
except ImportError as e:  # pragma: no cover - the module is imported only where the extra is installed
    raise ImportError("OpenEnv needs openenv-core: pip install 'distillgym[openenv]'") from e


class TextAction(Action):
    """One text action (a reply, a command, a move)."""

    text: str = Field(..., max_length=1 << 16, description="the action, as text")


class TextObservation(Observation):
    """What the agent sees, and distillgym's info for the step."""

    text: str = Field(default="", description="the observation text")
    info: dict[str, Any] = Field(default_factory=dict, description="distillgym's info (privileged only when served)")


def _json_info(info: dict[str, Any], *, privileged: bool, truncated: bool) -> dict[str, Any]:
    keep = ("task", "admissible_actions", "success", "invalid_action", "feedback", "step", "task_index", "task_seed",
            "split")
    out = {k: info[k] for k in keep if k in info}
    out["truncated"] = truncated
    if privileged:
        out["privileged"] = _plain(dict(info.get("privileged") or {}))
    return out


def _plain(value: Any) -> Any:
    """JSON-safe copy (tuples to lists, unknown objects to text)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def environment_class(env_id: str, *, privileged: bool = False, env_kwargs: dict[str, Any] | None = None) -> type:
    """An OpenEnv `Environment` subclass serving `env_id` (each instance makes its own env: one per session)."""
    from distillgym.envs.core.make import make_env

    kwargs = dict(env_kwargs or {})

    class DistillgymEnvironment(Environment[TextAction, TextObservation, State]):
        SUPPORTS_CONCURRENT_SESSIONS = True

        def __init__(self) -> None:
            super().__init__()
            try:
                self.env = make_env(env_id, privileged=privileged, **kwargs)
            except TypeError:  # an env without the privileged switch
                self.env = make_env(env_id, **kwargs)
            self._state = State(episode_id=None, step_count=0)

        def reset(self, seed: int | None = None, episode_id: str | None = None, split: str | None = None,
                  **options: Any) -> TextObservation:
            if split is not None and split not in SPLITS:
                raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
            opts = {**options, **({"split": split} if split is not None else {})}  # the family's own options too
            obs, info = self.env.reset(seed=seed, options=opts or None)
            self._state = State(episode_id=episode_id or uuid.uuid4().hex, step_count=0)
            return TextObservation(text=obs, info=_json_info(info, privileged=privileged, truncated=False),
                                   done=False, reward=0.0)

        def step(self, action: TextAction, timeout_s: float | None = None, **kwargs: Any) -> TextObservation:
            obs, reward, terminated, truncated, info = self.env.step(action.text)
            self._state.step_count += 1
            return TextObservation(text=obs, info=_json_info(info, privileged=privileged, truncated=truncated),
                                   done=bool(terminated or truncated), reward=float(reward))

        @property
        def state(self) -> State:
            return self._state

        def close(self) -> None:
            self.env.close()

    DistillgymEnvironment.__name__ = DistillgymEnvironment.__qualname__ = "DistillgymEnvironment"
    return DistillgymEnvironment


def app(env_id: str, *, privileged: bool = False, max_sessions: int = 64, session_timeout_s: float | None = 300.0,
        env_kwargs: dict[str, Any] | None = None) -> Any:
    """OpenEnv's FastAPI app serving `env_id` (see the module docstring)."""
    from openenv.core.env_server.http_server import create_fastapi_app
    from openenv.core.env_server.types import ConcurrencyConfig

    if max_sessions < 1:
        raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
    env_cls = environment_class(env_id, privileged=privileged, env_kwargs=env_kwargs)
    env_cls().close()  # a bad id or keyword fails here, not in the first session
    config = ConcurrencyConfig(max_concurrent_envs=max_sessions, session_timeout=session_timeout_s or None)
    served = create_fastapi_app(env_cls, TextAction, TextObservation, concurrency_config=config)
    add_error_handlers(served)
    served.add_middleware(QuietDisconnect)
    return served


class QuietDisconnect:
    """ASGI middleware: a WebSocket session whose client left first ends quietly. OpenEnv's client sends "close"
    and shuts its socket at once; openenv-core's handler then closes the socket again in a `finally`, which raises
    `WebSocketDisconnect` out of the app, and uvicorn logs it as an "Exception in ASGI application" traceback at
    every session's end. Other errors, and every HTTP request, pass through untouched."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        from starlette.websockets import WebSocketDisconnect

        with contextlib.suppress(WebSocketDisconnect):
            await self.app(scope, receive, send)


def add_error_handlers(served: Any) -> None:
    """JSON 4xx answers, not 500s, for what a client got wrong on OpenEnv's stateless HTTP routes (each request
    makes a fresh env): a step with no episode (sessions live on the WebSocket) and a bad reset argument."""
    from fastapi.responses import JSONResponse

    async def no_episode(request: Any, exc: Exception) -> Any:
        return JSONResponse(status_code=409, content={"detail": (
            "no episode to step: OpenEnv's HTTP /step runs on a fresh env; play an episode over the WebSocket /ws "
            f"session (reset, then step) ({exc})")})

    async def bad_argument(request: Any, exc: Exception) -> Any:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    served.add_exception_handler(gym.error.ResetNeeded, no_episode)
    served.add_exception_handler(ValueError, bad_argument)


class OpenEnvClientEnv(gym.Env[str, str]):
    """An OpenEnv server (`url`, served by `serve-env` or any server whose actions are `{"text": ...}`) as a
    gymnasium text env: one WebSocket session per env, opened at the first reset."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's)
    family: ClassVar[str] = "openenv"
    agent_protocol: ClassVar[AgentProtocol] = DEFAULT_PROTOCOL
    capabilities: ClassVar[frozenset[str]] = frozenset()  # no expert or snapshots across the wire
    takes_task_index: ClassVar[bool] = True

    def __init__(self, url: str, *, split: str = "train", action_field: str = "text",
                 message_timeout_s: float = 60.0) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.url = url.removeprefix(PREFIX).rstrip("/")
        if not self.url.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError(f"an OpenEnv server URL starts with http:// or https://, got {url!r}")
        self.split = split
        self.action_field = action_field
        self.message_timeout_s = float(message_timeout_s)
        self.observation_space = TextSpace(1 << 16)
        self.action_space = TextSpace(1 << 16)
        self._client: Any = None
        self._task = ""

    def _session(self) -> Any:
        if self._client is None:
            from openenv.core.generic_client import GenericEnvClient

            self._client = GenericEnvClient(base_url=self.url, message_timeout_s=self.message_timeout_s).sync()
            self._client.connect()
        return self._client

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        split, index, options = choose_task(self, seed, options, self.split)
        result = self._session().reset(seed=index, split=split, **options)
        obs = result.observation
        info = dict(obs.get("info") or {})
        self._task = str(info.get("task", ""))
        info.setdefault("task", self._task)
        return str(obs.get("text", "")), self._info(info)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._client is None:
            raise gym.error.ResetNeeded("Call reset() before step().")
        result = self._client.step({self.action_field: str(action)})
        obs = result.observation
        info = self._info(dict(obs.get("info") or {}))
        truncated = bool(info.get("truncated", False))
        terminated = bool(result.done) and not truncated
        return str(obs.get("text", "")), float(result.reward or 0.0), terminated, truncated, info

    def _info(self, info: dict[str, Any]) -> dict[str, Any]:
        info.setdefault("task", self._task)
        info.setdefault("admissible_actions", None)
        info.setdefault("privileged", {})
        info.setdefault("success", False)
        info.setdefault("invalid_action", False)
        return info

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None


def make(name: str, **kwargs: Any) -> OpenEnvClientEnv:
    """`openenv:<url>` as an OpenEnvClientEnv."""
    return OpenEnvClientEnv(name, **kwargs)
