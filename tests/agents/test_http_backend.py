"""HTTPBackend against local stand-in servers: retries and their count, clear errors, response parsing.

Well-formed completions from a real model server are tested in tests/agents/test_vllm.py (vLLM's own server).
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytest.importorskip("httpx")

from distillgym.agents.generation import SamplingParams
from distillgym.agents.http_backend import (
    BackendConnectionError,
    BackendRequestError,
    BackendResponseError,
    HTTPBackend,
    free_port,
)


class Scripted:
    """A local HTTP server that answers POSTs from a script of (status, body) and records each request body."""

    def __init__(self, answers: list[tuple[int, Any]]) -> None:
        self.answers = answers
        self.requests: list[Any] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append(json.loads(body))
                status, payload = outer.answers[min(len(outer.requests), len(outer.answers)) - 1]
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> Scripted:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    from distillgym.agents.models import train_tokenizer

    return train_tokenizer(["Up Down Left Right\nthought: move: <action>Up</action>"] * 20, vocab_size=300)


def answer(tokens: list[str], logprobs: list[float], text: str, reason: str = "length") -> dict[str, Any]:
    lp = {"tokens": tokens, "token_logprobs": logprobs, "top_logprobs": None, "text_offset": [0] * len(tokens)}
    return {"id": "cmpl-1", "object": "text_completion", "model": "m",
            "choices": [{"index": 0, "text": text, "logprobs": lp, "finish_reason": reason}]}


PARAMS = SamplingParams(temperature=1.0, max_tokens=3, seed=7, stop=("</action>",))


def test_dead_server_fails_clearly_after_its_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # bound then closed: nothing listens there
    backend = HTTPBackend(url, "m", None, max_retries=2, backoff=0.05, timeout=5)
    start = time.perf_counter()
    with pytest.raises(BackendConnectionError) as info:
        backend.generate([[1, 2, 3]], PARAMS)
    assert info.value.attempts == 3 and isinstance(info.value, ConnectionError)
    assert f"{url}/v1/completions" in str(info.value) and "3 attempts" in str(info.value)
    assert "ConnectError" in str(info.value)
    assert time.perf_counter() - start >= 0.05 + 0.1  # it waited between attempts (backoff 0.05 then 0.1)


def test_every_attempt_reaches_the_server_before_giving_up() -> None:
    """A server that accepts and hangs up at once: the backend connects 1 + max_retries times, then gives up."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]
    accepted: list[int] = []

    def serve() -> None:
        try:
            while True:
                conn, _ = listener.accept()
                accepted.append(1)
                conn.close()
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    backend = HTTPBackend(f"http://127.0.0.1:{port}/v1", "m", None, max_retries=3, backoff=0.01, timeout=5)
    try:
        with pytest.raises(BackendConnectionError, match="after 4 attempts") as info:
            backend.generate([[5]], PARAMS)
    finally:
        listener.close()
    assert info.value.attempts == 4 and len(accepted) == 4


def test_server_errors_are_retried_then_the_answer_is_parsed(tokenizer: Any) -> None:
    ids = tokenizer("<action>Up</action>", add_special_tokens=False)["input_ids"]
    good = answer([f"token_id:{i}" for i in ids], [-0.5] * len(ids), "whatever the server decoded", "stop")
    with Scripted([(503, {"error": {"message": "overloaded"}}), (500, "oops"), (200, good)]) as server:
        backend = HTTPBackend(server.url, "tiny", tokenizer, max_retries=2, backoff=0.01)
        (out,) = backend.generate([[3, 4, 5]], PARAMS)
    assert len(server.requests) == 3
    assert out.ids == ids and out.logprobs == [-0.5] * len(ids) and out.finish_reason == "stop"
    assert out.text == "<action>Up</action>"  # decoded from the exact ids (the text convention), not the server's
    body = server.requests[0]
    assert body["prompt"] == [3, 4, 5] and body["model"] == "tiny" and body["logprobs"] == 0
    assert body["return_tokens_as_token_ids"] is True and body["include_stop_str_in_output"] is True
    assert body["seed"] == 7 and body["stop"] == ["</action>"] and body["max_tokens"] == 3 and "top_k" not in body


def test_retries_exhausted_on_5xx_name_the_last_server_message() -> None:
    with Scripted([(503, {"error": {"message": "engine is restarting"}})]) as server:
        backend = HTTPBackend(server.url, "m", None, max_retries=1, backoff=0.01)
        with pytest.raises(BackendConnectionError, match="engine is restarting") as info:
            backend.generate([[1]], PARAMS)
    assert info.value.attempts == 2 and len(server.requests) == 2


def test_client_error_is_not_retried_and_carries_the_server_message() -> None:
    msg = "This model's maximum context length is 64 tokens"
    with Scripted([(400, {"object": "error", "message": msg, "code": 400})]) as server:
        backend = HTTPBackend(server.url, "m", None, max_retries=3, backoff=0.01)
        with pytest.raises(BackendRequestError, match="maximum context length") as info:
            backend.generate([[1, 2]], PARAMS)
    assert len(server.requests) == 1 and info.value.status == 400 and info.value.server_message == msg


@pytest.mark.parametrize("payload", ["<html>not json</html>", {"object": "list", "data": []}, {"choices": []}])
def test_malformed_answer_is_a_clear_error(payload: Any) -> None:
    with Scripted([(200, payload)]) as server:
        backend = HTTPBackend(server.url, "m", None, max_retries=2, backoff=0.01)
        with pytest.raises(BackendResponseError, match="/v1/completions"):
            backend.generate([[1, 2]], PARAMS)
    assert len(server.requests) == 1


def test_without_ids_the_text_is_tokenized(tokenizer: Any) -> None:
    text = "Up Down"
    n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    same = answer([f"piece{k}" for k in range(n)], [-1.0] * n, text)
    other = answer(["x"], [-2.0], text)  # logprob count differs from the tokenization: logprobs unknown
    with Scripted([(200, same), (200, other)]) as server:
        backend = HTTPBackend(server.url, "m", tokenizer, concurrency=1)
        a, b = backend.generate([[1], [2]], PARAMS)
    assert a.text == b.text == text and a.ids == b.ids and len(a.ids) == n
    assert a.logprobs == [-1.0] * n and all(math.isnan(v) for v in b.logprobs)
    assert a.finish_reason == "length"
    assert [r["seed"] for r in server.requests] == [7, 8]  # prompt i samples with seed + i


def test_generate_works_inside_a_running_event_loop(tokenizer: Any) -> None:
    ids = tokenizer("Up", add_special_tokens=False)["input_ids"]
    good = answer([f"token_id:{i}" for i in ids], [-0.1] * len(ids), "Up", "length")

    async def main(backend: HTTPBackend) -> tuple[list[Any], list[Any]]:
        sync = backend.generate([[1, 2]], PARAMS)  # a sync caller inside async code (e.g. a notebook)
        asynchronous = await backend.agenerate([[1, 2], [3]], SamplingParams(top_k=5))
        return sync, asynchronous

    with Scripted([(200, good)]) as server:
        sync, asynchronous = asyncio.run(main(HTTPBackend(server.url, "m", tokenizer)))
    assert sync[0].ids == ids and [c.text for c in asynchronous] == ["Up", "Up"]
    assert server.requests[-1]["top_k"] == 5 and "seed" not in server.requests[-1]


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        HTTPBackend("http://127.0.0.1:1", "m", None, max_retries=-1)
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        HTTPBackend("http://127.0.0.1:1", "m", None).generate([[1], []], PARAMS)
