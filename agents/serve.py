"""The in-context cascade inference server: `distillgym serve --cascade SPEC.json` (ASGI on uvicorn).

Endpoints (JSON in and out; errors are `{"error": {"message", "type", "code"}}` with a 4xx status, and the server
goes on serving):

- `POST /v1/chat/completions`: OpenAI-compatible; the cascade answers behind the model name `--model-name`. The
  system message is the task, the last user message the observation, earlier user/assistant pairs the history.
  `stream: true` answers as server-sent events (one content chunk, then `[DONE]`). The response carries
  `distillgym: {acted_by, tokens, cost}` beside the usual `usage`.
- `GET /v1/models`: the one model.
- `POST /v1/sessions` `{"task": ...}` -> `{"session_id"}`; `DELETE /v1/sessions/{id}`; `POST /v1/act`
  `{"session_id", "observation"}` (or `{"task", "observation"}` without a session) -> the action, the reply, who
  acted, tokens and cost. A session keeps the last `history` turns; sessions expire after `session_ttl_s` idle and
  the oldest is dropped when `max_sessions` are open. Session ids name the server run that made them, so a
  restarted server refuses an old one with a message that says so.
- `GET /health` (never needs the token), `GET /metrics` (Prometheus text).

Requests that arrive together, from any sessions, are batched: one worker runs the cascade on up to `max_batch`
of them at once (one student generation call, one teacher call for the steps the student does not settle), after
waiting up to `batch_window_ms` for company. Limits: body size, message count, max_tokens; an optional bearer
token.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from distillgym.agents.policies import ActRequest, ActResult
from distillgym.agents.prompts import PastTurn
from distillgym.envs.core.protocol import DEFAULT_PROTOCOL, AgentProtocol


@dataclass
class ServeConfig:
    """How the server listens, batches and protects itself."""

    host: str = "127.0.0.1"
    port: int = 8000
    model_name: str = "distillgym-cascade"
    token: str | None = None  # bearer token required on every endpoint but /health
    max_body_bytes: int = 1 << 20
    max_messages: int = 64
    max_tokens: int = 1024  # the largest max_tokens a chat request may ask for
    max_sessions: int = 1024
    session_ttl_s: float = 600.0
    max_batch: int = 64
    batch_window_ms: float = 5.0
    # an idle keep-alive connection stays open this long: agents think and step their envs between turns, and a
    # server that closes a connection the moment a client reuses it answers that request with a dropped connection
    keep_alive_s: float = 75.0
    history: int = 4  # turns a session keeps (the prompt shows at most the cascade's history)


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code


@dataclass
class Session:
    id: str
    task: str
    number: int  # the server's count of sessions: the episode index the cascade seeds from
    past: list[PastTurn] = field(default_factory=list)
    steps: int = 0
    last_used: float = field(default_factory=time.monotonic)


class Sessions:
    """Open sessions, least recently used first; bounded in number and idle time."""

    def __init__(self, max_sessions: int, ttl_s: float, history: int) -> None:
        self.boot = secrets.token_hex(4)  # this server run: part of every session id it makes
        self.max_sessions, self.ttl_s, self.history = max_sessions, ttl_s, history
        self._open: OrderedDict[str, Session] = OrderedDict()
        self._count = 0
        self.expired = 0
        self.evicted = 0

    def _expire(self) -> None:
        now = time.monotonic()
        while self._open:
            first = next(iter(self._open.values()))
            if now - first.last_used <= self.ttl_s:
                break
            self._open.popitem(last=False)
            self.expired += 1

    def number(self) -> int:
        """A fresh episode number (what seeds a session's, or a one-off request's, samples)."""
        self._count += 1
        return self._count

    def create(self, task: str) -> Session:
        self._expire()
        while len(self._open) >= self.max_sessions:
            self._open.popitem(last=False)
            self.evicted += 1
        s = Session(f"{self.boot}-{secrets.token_hex(8)}", task, self.number())
        self._open[s.id] = s
        return s

    def get(self, sid: str) -> Session:
        self._expire()
        s = self._open.get(sid)
        if s is None:
            if not sid.startswith(f"{self.boot}-"):
                raise ApiError(404, f"session {sid!r} was not made by this server run (the server restarted, or the "
                               "id is wrong): create a new session", "invalid_request_error", "stale_session")
            raise ApiError(404, f"unknown session {sid!r}: closed, expired after {self.ttl_s:g} s idle, or dropped "
                           f"(at most {self.max_sessions} open)", "invalid_request_error", "unknown_session")
        s.last_used = time.monotonic()
        self._open.move_to_end(sid)
        return s

    def close(self, sid: str) -> None:
        self.get(sid)
        del self._open[sid]

    def record(self, s: Session, observation: str, result: ActResult) -> None:
        s.past.append(PastTurn(observation, result.reply, result.completion_ids))
        del s.past[: max(0, len(s.past) - self.history)]
        s.steps += 1

    def __len__(self) -> int:
        return len(self._open)


class Batcher:
    """Collects act requests from concurrent HTTP requests and runs `agent.act` once per batch, in one worker
    thread (so the event loop keeps accepting requests while the models generate)."""

    def __init__(self, agent: Any, max_batch: int, window_s: float) -> None:
        self.agent, self.max_batch, self.window_s = agent, max_batch, window_s
        self._queue: asyncio.Queue[tuple[ActRequest, asyncio.Future[ActResult]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cascade")
        self.calls = 0
        self.requests = 0
        self.largest = 0
        self._seed = 0

    async def submit(self, req: ActRequest) -> ActResult:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._run())
        fut: asyncio.Future[ActResult] = asyncio.get_running_loop().create_future()
        await self._queue.put((req, fut))
        return await fut

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.window_s
            while len(batch) < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                except TimeoutError:
                    break
            self.calls += 1
            self.requests += len(batch)
            self.largest = max(self.largest, len(batch))
            self._seed += 1
            try:
                results = await loop.run_in_executor(self._pool, self.agent.act, [r for r, _ in batch], self._seed)
            except Exception as e:  # the batch fails, the server goes on
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            for (_, fut), res in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(res)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)


class Metrics:
    """Counters in Prometheus' text format."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.lock = threading.Lock()

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        with self.lock:
            key = (name, tuple(sorted(labels.items())))
            self.counts[key] = self.counts.get(key, 0.0) + value

    def text(self, gauges: Mapping[str, float]) -> str:
        lines = []
        with self.lock:
            names = sorted({n for n, _ in self.counts})
            for name in names:
                lines.append(f"# TYPE {name} counter")
                for (n, labels), v in sorted(self.counts.items()):
                    if n == name:
                        lab = ",".join(f'{k}="{val}"' for k, val in labels)
                        lines.append(f"{name}{{{lab}}} {v:g}" if lab else f"{name} {v:g}")
        for name, v in sorted(gauges.items()):
            lines += [f"# TYPE {name} gauge", f"{name} {v:g}"]
        return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------------------- request bodies


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], required: bool = True) -> Any:
    if name not in body or body[name] is None:
        if required:
            raise ApiError(400, f"missing field {name!r}", code="missing_field")
        return None
    value = body[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ApiError(400, f"field {name!r} must be {want}, got {type(value).__name__}", code="invalid_field")
    return value


def chat_request(body: dict[str, Any], cfg: ServeConfig) -> tuple[str, list[PastTurn], str]:
    """(task, past turns, observation) of an OpenAI chat body; ApiError naming what is wrong."""
    model = _field(body, "model", str)
    if model != cfg.model_name:
        raise ApiError(404, f"model {model!r} does not exist; this server serves {cfg.model_name!r}",
                       code="model_not_found")
    messages = _field(body, "messages", list)
    if not messages:
        raise ApiError(400, "messages must not be empty", code="invalid_field")
    if len(messages) > cfg.max_messages:
        raise ApiError(400, f"{len(messages)} messages; at most {cfg.max_messages}", code="too_many_messages")
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool)
                                   or not 1 <= max_tokens <= cfg.max_tokens):
        raise ApiError(400, f"max_tokens must be an integer in [1, {cfg.max_tokens}], got {max_tokens!r}",
                       code="invalid_field")
    if body.get("n", 1) != 1:
        raise ApiError(400, "n must be 1 (the cascade answers once)", code="invalid_field")
    system, turns = [], []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise ApiError(400, f"messages[{i}] must be an object with a string 'content'", code="invalid_field")
        role = m.get("role")
        if role in ("system", "developer"):
            system.append(m["content"])
        elif role in ("user", "assistant"):
            turns.append((role, m["content"]))
        else:
            raise ApiError(400, f"messages[{i}].role must be system, user or assistant, got {role!r}",
                           code="invalid_field")
    if not turns or turns[-1][0] != "user":
        raise ApiError(400, "the last message must be the user's (the observation to answer)", code="invalid_field")
    past, pending = [], None
    for role, content in turns[:-1]:
        if role == "user":
            pending = content
        else:
            past.append(PastTurn(pending or "", content))
            pending = None
    return "\n\n".join(system), past, turns[-1][1]


# ------------------------------------------------------------------------------------------------------- the app


class CascadeServer:
    """The ASGI application around one agent (a CascadeAgent, or any Agent whose answers carry
    `info["cascade"]`)."""

    def __init__(self, agent: Any, cfg: ServeConfig | None = None, *, family: str = "text",
                 protocol: AgentProtocol = DEFAULT_PROTOCOL) -> None:
        from distillgym.agents.policies import ExpertAgent

        self.cfg = cfg or ServeConfig()
        teacher = getattr(agent, "teacher", None)
        mode = getattr(getattr(agent, "cfg", None), "mode", "cascade")
        if isinstance(teacher, ExpertAgent) and mode != "student":
            raise ValueError("the server's teacher must be a model: the expert needs the environment, which stays "
                             "with the client (use teacher = a model directory, or mode = student)")
        self.agent, self.family, self.protocol = agent, family, protocol
        self.sessions = Sessions(self.cfg.max_sessions, self.cfg.session_ttl_s, self.cfg.history)
        self.batcher = Batcher(agent, self.cfg.max_batch, self.cfg.batch_window_ms / 1000)
        self.metrics = Metrics()
        self.started = time.time()
        from starlette.applications import Starlette
        from starlette.routing import Route

        self.app = Starlette(routes=[
            Route("/health", self._wrap(self.health, auth=False), methods=["GET"]),
            Route("/metrics", self._wrap(self.prometheus), methods=["GET"]),
            Route("/v1/models", self._wrap(self.models), methods=["GET"]),
            Route("/v1/chat/completions", self._wrap(self.chat), methods=["POST"]),
            Route("/v1/sessions", self._wrap(self.open_session), methods=["POST"]),
            Route("/v1/sessions/{sid}", self._wrap(self.close_session), methods=["DELETE"]),
            Route("/v1/act", self._wrap(self.act), methods=["POST"]),
        ], lifespan=self._lifespan, exception_handlers={404: self._http_error, 405: self._http_error})

    @asynccontextmanager
    async def _lifespan(self, app: Any) -> AsyncIterator[None]:
        yield
        self.batcher.close()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    # --------------------------------------------------------------------------------------------- plumbing

    def _wrap(self, handler: Callable[[Any], Awaitable[Any]], auth: bool = True) -> Callable[[Any], Awaitable[Any]]:
        from starlette.responses import JSONResponse

        async def endpoint(request: Any) -> Any:
            t = time.perf_counter()
            path = request.url.path if not request.url.path.startswith("/v1/sessions/") else "/v1/sessions/{id}"
            try:
                if auth and self.cfg.token is not None:
                    header = request.headers.get("authorization", "")
                    if not secrets.compare_digest(header.encode(), f"Bearer {self.cfg.token}".encode()):
                        raise ApiError(401, "missing or wrong bearer token (Authorization: Bearer ...)",
                                       "authentication_error", "invalid_api_key")
                response = await handler(request)
            except ApiError as e:
                response = JSONResponse({"error": {"message": e.message, "type": e.kind, "code": e.code}},
                                        status_code=e.status)
            except Exception as e:  # a bug or a failed generation: a 500 that says what, and the server goes on
                response = JSONResponse({"error": {"message": f"{type(e).__name__}: {e}", "type": "server_error",
                                                   "code": None}}, status_code=500)
            self.metrics.inc("distillgym_requests_total", endpoint=path, status=str(response.status_code))
            self.metrics.inc("distillgym_request_seconds_sum", time.perf_counter() - t, endpoint=path)
            return response

        return endpoint

    async def _http_error(self, request: Any, exc: Any) -> Any:
        from starlette.responses import JSONResponse

        status = int(getattr(exc, "status_code", 404))
        message = f"no route {request.method} {request.url.path}" if status == 404 else \
            f"method {request.method} not allowed on {request.url.path}"
        self.metrics.inc("distillgym_requests_total", endpoint="other", status=str(status))
        return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "code": None}},
                            status_code=status)

    async def _json(self, request: Any) -> dict[str, Any]:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.cfg.max_body_bytes:
            raise ApiError(413, f"body of {length} bytes; at most {self.cfg.max_body_bytes}", code="body_too_large")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > self.cfg.max_body_bytes:
                raise ApiError(413, f"body over {self.cfg.max_body_bytes} bytes", code="body_too_large")
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ApiError(400, f"malformed JSON body: {e}", code="malformed_json") from e
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object", code="malformed_json")
        return body

    async def _cascade(self, task: str, past: list[PastTurn], observation: str, number: int,
                       info: dict[str, Any] | None = None) -> ActResult:
        req = ActRequest(env=None, family=self.family, task=task, observation=observation, info=info or {},
                         past=list(past), episode=number, step=len(past), seed=0, protocol=self.protocol)
        res = await self.batcher.submit(req)
        acc = res.info.get("cascade", {})
        self.metrics.inc("distillgym_steps_total", acted=str(acc.get("acted", "unknown")))
        for who, (tin, tout) in acc.get("tokens", {}).items():
            self.metrics.inc("distillgym_tokens_total", tin, model=who, kind="input")
            self.metrics.inc("distillgym_tokens_total", tout, model=who, kind="output")
        self.metrics.inc("distillgym_cost_usd_total", float(acc.get("cost", 0.0)))
        return res

    @staticmethod
    def _accounting(res: ActResult) -> dict[str, Any]:
        acc = res.info.get("cascade", {})
        return {"acted_by": acc.get("acted", "unknown"), "agree": acc.get("agree"),
                "tokens": acc.get("tokens", {}), "cost": acc.get("cost", 0.0)}

    # -------------------------------------------------------------------------------------------- endpoints

    async def health(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse({"status": "ok", "model": self.cfg.model_name, "sessions": len(self.sessions),
                             "uptime_s": round(time.time() - self.started, 3)})

    async def prometheus(self, request: Any) -> Any:
        from starlette.responses import PlainTextResponse

        gauges = {"distillgym_sessions_active": len(self.sessions),
                  "distillgym_sessions_expired": self.sessions.expired,
                  "distillgym_sessions_evicted": self.sessions.evicted,
                  "distillgym_generation_batches": self.batcher.calls,
                  "distillgym_batched_requests": self.batcher.requests,
                  "distillgym_largest_batch": self.batcher.largest}
        return PlainTextResponse(self.metrics.text(gauges), media_type="text/plain; version=0.0.4")

    async def models(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse({"object": "list", "data": [{"id": self.cfg.model_name, "object": "model",
                                                         "created": int(self.started), "owned_by": "distillgym"}]})

    async def chat(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        body = await self._json(request)
        task, past, observation = chat_request(body, self.cfg)
        res = await self._cascade(task, past, observation, self.sessions.number())
        acc = self._accounting(res)
        tokens = acc["tokens"].get(acc["acted_by"], [0, 0]) if isinstance(acc["tokens"], dict) else [0, 0]
        rid, created = f"chatcmpl-{secrets.token_hex(12)}", int(time.time())
        if body.get("stream"):
            def events() -> Any:
                head = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": self.cfg.model_name}
                yield "data: " + json.dumps({**head, "choices": [{"index": 0, "delta": {"role": "assistant",
                                                                                         "content": res.reply},
                                                                  "finish_reason": None}]}) + "\n\n"
                yield "data: " + json.dumps({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                                             "distillgym": acc}) + "\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        return JSONResponse({
            "id": rid, "object": "chat.completion", "created": created, "model": self.cfg.model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": res.reply}, "finish_reason": "stop",
                         "logprobs": None}],
            "usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1], "total_tokens": sum(tokens)},
            "distillgym": acc,
        })

    async def open_session(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        body = await self._json(request)
        s = self.sessions.create(_field(body, "task", str))
        return JSONResponse({"session_id": s.id, "expires_after_idle_s": self.cfg.session_ttl_s})

    async def close_session(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        sid = request.path_params["sid"]
        self.sessions.close(sid)
        return JSONResponse({"session_id": sid, "closed": True})

    async def act(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        body = await self._json(request)
        observation = _field(body, "observation", str)
        admissible = _field(body, "admissible_actions", list, required=False)
        info = {"admissible_actions": admissible} if admissible else {}
        sid = _field(body, "session_id", str, required=False)
        if sid is None:
            task = _field(body, "task", str)
            res = await self._cascade(task, [], observation, self.sessions.number(), info)
            step = 0
        else:
            s = self.sessions.get(sid)
            res = await self._cascade(s.task, s.past, observation, s.number, info)
            step = s.steps
            self.sessions.record(s, observation, res)
        return JSONResponse({"action": res.action, "reply": res.reply, "session_id": sid, "step": step,
                             **self._accounting(res)})


def uvicorn_config(server: CascadeServer, *, log_level: str = "warning") -> Any:
    """The uvicorn.Config that serves `server` (host, port, keep-alive from its ServeConfig)."""
    import uvicorn

    return uvicorn.Config(server.app, host=server.cfg.host, port=server.cfg.port, log_level=log_level,
                          lifespan="on", timeout_keep_alive=max(1, round(server.cfg.keep_alive_s)))


def run(server: CascadeServer, *, log_level: str = "warning") -> None:
    """Serve until interrupted (uvicorn, one process)."""
    import uvicorn

    uvicorn.Server(uvicorn_config(server, log_level=log_level)).run()
