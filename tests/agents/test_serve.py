"""The cascade server on a real uvicorn on localhost: the official `openai` client, sessions and /v1/act, the
remote cascade agent, 4xx JSON errors after which the server keeps serving, stale sessions after a restart,
batching under 64 concurrent clients, /metrics."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")
httpx = pytest.importorskip("httpx")

from distillgym.agents.cascade import CascadeAgent, CascadeConfig, cascade_costs  # noqa: E402
from distillgym.agents.generation import SamplingParams, TransformersBackend  # noqa: E402
from distillgym.agents.http_backend import free_port  # noqa: E402
from distillgym.agents.policies import ExpertAgent, ModelAgent  # noqa: E402
from distillgym.agents.rollout import collect  # noqa: E402
from distillgym.agents.serve import CascadeServer, ServeConfig, Sessions, uvicorn_config  # noqa: E402
from distillgym.envs.core.protocol import protocol_of  # noqa: E402
from distillgym.skills.demos import DemoStore  # noqa: E402

TOKEN = "s3cret"




class Running:
    """A CascadeServer on a real uvicorn in a background thread."""

    def __init__(self, server: CascadeServer) -> None:
        import uvicorn

        self.server = server
        self.url = f"http://127.0.0.1:{server.cfg.port}"
        self.uv = uvicorn.Server(uvicorn_config(server))
        self.thread = threading.Thread(target=self.uv.run, daemon=True)
        self.thread.start()
        for _ in range(500):
            if self.uv.started:
                break
            time.sleep(0.02)
        assert self.uv.started, "uvicorn did not start"

    def stop(self) -> None:
        self.uv.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def household() -> tuple[Any, str]:
    import gymnasium as gym

    env = gym.make("distillgym/Household-v0")
    protocol = protocol_of(env)
    env.close()
    return protocol, "household"


@pytest.fixture(scope="module")
def store(household_demos: DemoStore) -> DemoStore:
    return household_demos


def make_server(tiny_model: tuple, store: DemoStore, household: tuple, **cfg: Any) -> CascadeServer:
    model, tok = tiny_model
    backend = TransformersBackend(model, tok)
    teacher = ModelAgent(backend, sampling=SamplingParams(temperature=0.0, max_tokens=6), name="teacher")
    mode, k = cfg.pop("mode", "cascade"), cfg.pop("k", 1)
    agent = CascadeAgent(ModelAgent(backend), teacher, store, CascadeConfig(mode=mode, k=k, n=2, max_tokens=6,
                                                                            history=0 if k == 0 else 4))
    protocol, family = household
    return CascadeServer(agent, ServeConfig(port=free_port(), token=TOKEN, **cfg), family=family,
                         protocol=protocol)


@pytest.fixture(scope="module")
def running(tiny_model: tuple, store: DemoStore, household: tuple) -> Iterator[Running]:
    r = Running(make_server(tiny_model, store, household, max_body_bytes=4096, max_messages=8, max_tokens=64))
    yield r
    r.stop()


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def test_openai_client_lists_the_model_and_chats(running: Running) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=running.url + "/v1", api_key=TOKEN, max_retries=0)
    assert [m.id for m in client.models.list()] == ["distillgym-cascade"]
    out = client.chat.completions.create(
        model="distillgym-cascade", max_tokens=16,
        messages=[{"role": "system", "content": "Your task is to: put a mug in the fridge."},
                  {"role": "user", "content": "You are in a kitchen. You see a fridge 1 and a mug 1."}])
    assert isinstance(out.choices[0].message.content, str) and out.choices[0].finish_reason == "stop"
    extra = out.model_extra["distillgym"]
    assert extra["acted_by"] in ("student", "teacher") and extra["cost"] > 0
    assert out.usage.prompt_tokens > 0
    chunks = list(client.chat.completions.create(
        model="distillgym-cascade", stream=True,
        messages=[{"role": "system", "content": "Your task is to: look."}, {"role": "user", "content": "A room."}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) != "" or len(chunks) >= 2
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=running.url + "/v1", api_key="wrong", max_retries=0).models.list()


def test_bad_requests_get_4xx_json_and_the_server_keeps_serving(running: Running) -> None:
    u = running.url
    cases = [
        (lambda: httpx.post(u + "/v1/act", content=b"{not json", headers=auth()), 400, "malformed JSON"),
        (lambda: httpx.post(u + "/v1/act", json=[1, 2], headers=auth()), 400, "JSON object"),
        (lambda: httpx.post(u + "/v1/act", json={"task": "t"}, headers=auth()), 400, "'observation'"),
        (lambda: httpx.post(u + "/v1/act", json={"task": 3, "observation": "o"}, headers=auth()), 400,
         "must be str"),
        (lambda: httpx.post(u + "/v1/act", json={"task": "t", "observation": "x" * 5000}, headers=auth()), 413,
         "bytes"),
        (lambda: httpx.post(u + "/v1/act", json={"session_id": "nope", "observation": "o"}, headers=auth()), 404,
         "not made by this server run"),
        (lambda: httpx.post(u + "/v1/act", json={"task": "t", "observation": "o"}), 401, "bearer token"),
        (lambda: httpx.post(u + "/v1/act", json={"task": "t", "observation": "o"},
                            headers={"Authorization": "Bearer nope"}), 401, "bearer token"),
        (lambda: httpx.post(u + "/v1/chat/completions", json={"model": "distillgym-cascade", "messages": []},
                            headers=auth()), 400, "must not be empty"),
        (lambda: httpx.post(u + "/v1/chat/completions", headers=auth(), json={
            "model": "distillgym-cascade", "messages": [{"role": "user", "content": "x"}] * 9}), 400, "at most 8"),
        (lambda: httpx.post(u + "/v1/chat/completions", headers=auth(), json={
            "model": "distillgym-cascade", "max_tokens": 100000, "messages": [{"role": "user", "content": "x"}]}),
         400, "max_tokens"),
        (lambda: httpx.post(u + "/v1/chat/completions", headers=auth(), json={
            "model": "distillgym-cascade", "messages": [{"role": "robot", "content": "x"}]}), 400, "role"),
        (lambda: httpx.delete(u + "/v1/sessions/nope", headers=auth()), 404, "session"),
        (lambda: httpx.get(u + "/v1/nothing", headers=auth()), 404, "no route"),
        (lambda: httpx.get(u + "/v1/act", headers=auth()), 405, "not allowed"),
    ]
    for call, status, words in cases:
        r = call()
        assert r.status_code == status, (words, r.text)
        assert words in r.json()["error"]["message"], r.text
        assert httpx.get(u + "/health").json()["status"] == "ok"  # still serving, and /health needs no token
    ok = httpx.post(u + "/v1/act", json={"task": "Your task is to: look.", "observation": "A room."}, headers=auth())
    assert ok.status_code == 200 and set(ok.json()) >= {"action", "reply", "acted_by", "tokens", "cost"}


def test_sessions_keep_history_and_close(running: Running) -> None:
    u = running.url
    sid = httpx.post(u + "/v1/sessions", json={"task": "Your task is to: look."}, headers=auth()).json()["session_id"]
    steps = [httpx.post(u + "/v1/act", json={"session_id": sid, "observation": f"obs {i}"}, headers=auth()).json()
             for i in range(3)]
    assert [s["step"] for s in steps] == [0, 1, 2]
    # the third step's student prompt holds the first two turns: its input tokens grew with the history
    assert steps[2]["tokens"]["student"][0] > steps[0]["tokens"]["student"][0]
    assert httpx.delete(f"{u}/v1/sessions/{sid}", headers=auth()).json()["closed"] is True
    r = httpx.post(u + "/v1/act", json={"session_id": sid, "observation": "again"}, headers=auth())
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_session"


def test_a_restarted_server_refuses_old_sessions(tiny_model: tuple, store: DemoStore, household: tuple) -> None:
    first = Running(make_server(tiny_model, store, household))
    sid = httpx.post(first.url + "/v1/sessions", json={"task": "t"}, headers=auth()).json()["session_id"]
    port = first.server.cfg.port
    first.stop()
    again = make_server(tiny_model, store, household)
    again.cfg.port = port
    second = Running(again)
    try:
        r = httpx.post(second.url + "/v1/act", json={"session_id": sid, "observation": "o"}, headers=auth())
        assert r.status_code == 404 and r.json()["error"]["code"] == "stale_session"
        assert "restarted" in r.json()["error"]["message"]
    finally:
        second.stop()


def test_sessions_are_bounded_and_expire() -> None:
    s = Sessions(max_sessions=2, ttl_s=3600, history=2)
    a, b, c = s.create("a"), s.create("b"), s.create("c")
    assert len(s) == 2 and s.evicted == 1
    with pytest.raises(Exception, match="unknown session"):
        s.get(a.id)
    assert s.get(b.id).task == "b" and s.get(c.id).task == "c"
    s.ttl_s = 0.0
    c.last_used -= 1.0
    b.last_used -= 1.0
    with pytest.raises(Exception, match="expired"):
        s.get(c.id)
    assert len(s) == 0 and s.expired == 2


def test_remote_cascade_plays_episodes_through_the_server(running: Running) -> None:
    from distillgym.agents.remote import RemoteCascade

    agent = RemoteCascade(running.url, token=TOKEN)
    eps = collect(agent, "Household-v0", 2, num_envs=2, progress=False, env_kwargs={"max_steps": 3})
    agent.close()
    costs = cascade_costs(eps)
    assert costs["episodes"] == 2 and costs["steps_per_episode"] == 3 and costs["cost_per_episode"] > 0
    with pytest.raises(Exception, match="401"):
        RemoteCascade(running.url).act([_request()], 0)


def _request() -> Any:
    from distillgym.agents.policies import ActRequest

    return ActRequest(env=None, family="household", task="t", observation="o", info={})


def test_64_clients_x_50_requests_are_batched(tiny_model: tuple, store: DemoStore, household: tuple) -> None:
    r = Running(make_server(tiny_model, store, household, mode="student", k=0, max_batch=64,
                            batch_window_ms=50))
    try:
        async def client(i: int, http: Any) -> list[int]:
            codes = []
            for j in range(50):
                res = await http.post(r.url + "/v1/act", headers=auth(),
                                      json={"task": f"Your task is to: look {i}.", "observation": f"room {j}"})
                codes.append(res.status_code)
            return codes

        async def main() -> list[list[int]]:
            limits = httpx.Limits(max_connections=64)
            async with httpx.AsyncClient(timeout=120, limits=limits) as http:
                return list(await asyncio.gather(*(client(i, http) for i in range(64))))

        codes = [c for cs in asyncio.run(main()) for c in cs]
        assert codes == [200] * 3200
        batcher = r.server.batcher
        # fewer generation calls than requests (the margin is wide: 64 clients wait on each answer, and a batch waits
        # up to 50 ms for company)
        assert batcher.requests == 3200 and batcher.calls < 3200 / 2 and batcher.largest > 1
        text = httpx.get(r.url + "/metrics", headers=auth()).text
        assert 'distillgym_requests_total{endpoint="/v1/act",status="200"} 3200' in text
        calls = next(line for line in text.splitlines() if line.startswith("distillgym_generation_batches "))
        assert int(float(calls.split()[1])) == batcher.calls
    finally:
        r.stop()


def test_keep_alive_connections_outlive_an_idle_client(tiny_model: tuple, store: DemoStore, household: tuple) -> None:
    """A connection the client leaves idle stays open for keep_alive_s (uvicorn's own default, 5 s, closed idle
    connections under the 64-client load just as clients reused them)."""
    import socket

    request = (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")

    def answered(sock: socket.socket) -> bytes:
        """Send the request and read one whole response (headers, then Content-Length bytes of body)."""
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return data
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            chunk = sock.recv(4096)
            if not chunk:
                break
            body += chunk
        assert len(body) == length
        return head

    for keep_alive in (1.0, 75.0):
        r = Running(make_server(tiny_model, store, household, keep_alive_s=keep_alive))
        try:
            assert uvicorn_config(r.server).timeout_keep_alive == round(keep_alive)
            with socket.create_connection(("127.0.0.1", r.server.cfg.port), timeout=60) as sock:
                assert answered(sock).startswith(b"HTTP/1.1 200")
                if keep_alive == 1.0:
                    assert sock.recv(1) == b""  # the server closes the idle connection (recv waits for it)
                else:
                    time.sleep(2.0)  # idle twice as long as the 1 s server above kept its connection
                    assert answered(sock).startswith(b"HTTP/1.1 200")
        finally:
            r.stop()


def test_expert_teacher_is_refused_by_the_server(tiny_model: tuple) -> None:
    model, tok = tiny_model
    agent = CascadeAgent(ModelAgent(TransformersBackend(model, tok)), ExpertAgent(), None, CascadeConfig(k=0))
    with pytest.raises(ValueError, match="teacher must be a model"):
        CascadeServer(agent)
    assert json.dumps(ServeConfig().__dict__)


def test_cli_serve_starts_answers_and_refuses_an_expert_teacher(tmp_path: Any, tiny_model: tuple) -> None:
    import os
    import subprocess
    import sys

    from distillgym.eval.bench.serve_load import wait_until_healthy

    model, tok = tiny_model
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"student": str(tmp_path / "m"), "teacher": "expert", "cascade": {"k": 0}}))
    cmd = [sys.executable, "-m", "distillgym.cli", "serve", "--cascade", str(spec), "--env", "Household-v0"]
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "teacher must be a model" in refused.stderr
    spec.write_text(json.dumps({"student": str(tmp_path / "m"), "teacher": str(tmp_path / "m"),
                                "cascade": {"k": 0, "n": 2, "max_tokens": 4}}))
    port = free_port()
    server = subprocess.Popen([*cmd, "--port", str(port)], env={**os.environ, "DISTILLGYM_TOKEN": TOKEN},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, server)
        r = httpx.post(url + "/v1/act", json={"task": "Your task is to: look.", "observation": "A room."},
                       headers=auth())
        assert r.status_code == 200 and r.json()["acted_by"] in ("student", "teacher")
        assert httpx.post(url + "/v1/act", json={"task": "t", "observation": "o"}).status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=30)
