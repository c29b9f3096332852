"""Generation through any OpenAI-compatible server (vLLM's, SGLang's, ...) over HTTP, with httpx.

Prompts go to `/v1/completions` as token-id lists, one request per prompt (at most `concurrency` in flight). For
vLLM the request asks for `return_tokens_as_token_ids`, so the sampled ids come back exactly ("token_id:123") with
their log-probabilities. A server that returns no ids (a plain OpenAI-style server) gets the fallback: the ids are
the tokenization of the returned text, which may differ from what was sampled, and when their count differs from
the server's logprob count the logprobs are NaN (unknown). Transient failures (connection errors, timeouts, 429 and
5xx answers) are retried with exponential backoff; a 4xx answer fails at once with the server's message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import random
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from distillgym.agents.generation import Completion, SamplingParams, check_prompts, decode

T = TypeVar("T")

TOKEN_ID_PREFIX = "token_id:"


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion from synchronous code; inside a running event loop, on a helper thread with its own
    loop (so a synchronous backend call also works from async code)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for servers started on localhost)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BackendConnectionError(ConnectionError):
    """The server could not be reached or kept failing (connection errors, timeouts, 5xx) after all retries."""

    def __init__(self, message: str, *, url: str, attempts: int) -> None:
        super().__init__(message)
        self.url = url
        self.attempts = attempts


class BackendRequestError(RuntimeError):
    """The server rejected the request (4xx): retrying would not help. `status` and the server's message."""

    def __init__(self, message: str, *, url: str, status: int, server_message: str) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.server_message = server_message


class BackendResponseError(RuntimeError):
    """The server answered 200 with something that is not an OpenAI completions response."""


def _server_message(response: Any) -> str:
    """The error text of an OpenAI-style error body ({"error": {"message": ...}} or {"message": ...}), else raw."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])
        if isinstance(err, str):
            return err
        if "detail" in body:
            return str(body["detail"])
    return json.dumps(body)[:500]


class HTTPBackend:
    """Batched generation against an OpenAI-compatible `/v1/completions` endpoint (token-id prompts).

    base_url: the server root, with or without `/v1` (e.g. "http://127.0.0.1:8000"); model: the served model name;
    tokenizer: the model's tokenizer (decodes ids into text, and tokenizes text when the server returns no ids).
    timeout: seconds per request; max_retries: retries after the first attempt; backoff: first retry delay in
    seconds (doubles each retry, with jitter); concurrency: requests in flight at once.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        tokenizer: Any,
        *,
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        concurrency: int = 32,
        api_key: str | None = None,
        vllm_extensions: bool = True,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        root = base_url.rstrip("/")
        self.base_url = root[: -len("/v1")] if root.endswith("/v1") else root
        self.url = f"{self.base_url}/v1/completions"
        self.model = model
        self.tokenizer = tokenizer
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.concurrency = concurrency
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        #: send vLLM's extra fields (top_k, return_tokens_as_token_ids, include_stop_str_in_output)
        self.vllm_extensions = vllm_extensions

    # ------------------------------------------------------------------------------------------------ requests

    def _body(self, prompt: list[int], params: SamplingParams, seed: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "logprobs": 0,  # the sampled token's own logprob, no alternatives
            "echo": False,
            "n": 1,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if seed is not None:
            body["seed"] = seed
        if self.vllm_extensions:
            body["return_tokens_as_token_ids"] = True
            body["include_stop_str_in_output"] = True
            body["skip_special_tokens"] = True
            if params.top_k:
                body["top_k"] = params.top_k
        return body

    async def _post(self, client: Any, body: dict[str, Any]) -> dict[str, Any]:
        """POST with retries on transient failures; the parsed JSON answer."""
        import httpx

        attempts = self.max_retries + 1
        last = ""
        for attempt in range(attempts):
            if attempt:
                delay = self.backoff * 2 ** (attempt - 1)
                await asyncio.sleep(delay * (1 + 0.1 * random.random()))
            try:
                response = await client.post(self.url, json=body, headers=self.headers)
            except httpx.TransportError as e:  # connection refused/reset, timeouts, protocol errors
                last = f"{e.__class__.__name__}: {e}" if str(e) else e.__class__.__name__
                continue
            if response.status_code == 429 or response.status_code >= 500:
                last = f"HTTP {response.status_code}: {_server_message(response)}"
                continue
            if response.status_code >= 400:
                msg = _server_message(response)
                raise BackendRequestError(
                    f"POST {self.url} was rejected with HTTP {response.status_code}: {msg}",
                    url=self.url,
                    status=response.status_code,
                    server_message=msg,
                )
            try:
                data = response.json()
            except ValueError as e:
                raise BackendResponseError(
                    f"POST {self.url} answered HTTP {response.status_code} with a body that is not JSON: "
                    f"{response.text[:200]!r}"
                ) from e
            return data
        raise BackendConnectionError(
            f"POST {self.url} failed after {attempts} attempt{'s' * (attempts > 1)} "
            f"(max_retries={self.max_retries}); last error: {last}",
            url=self.url,
            attempts=attempts,
        )

    # ------------------------------------------------------------------------------------------------ parsing

    def _parse(self, data: Any, prompt_index: int) -> Completion:
        """A Completion from one `/v1/completions` answer (exact ids when the server returns them)."""
        try:
            choice = data["choices"][0]
            text = choice.get("text") or ""
            reason = choice.get("finish_reason")
            lp = choice.get("logprobs") or {}
            tokens = lp.get("tokens") or []
            token_logprobs = lp.get("token_logprobs") or []
        except (KeyError, IndexError, TypeError, AttributeError) as e:
            raise BackendResponseError(
                f"POST {self.url}: the answer for prompt {prompt_index} is not an OpenAI completions response "
                f"(expected choices[0] with text and logprobs): {json.dumps(data)[:300]}"
            ) from e
        logprobs = [float("nan") if v is None else float(v) for v in token_logprobs]
        if tokens and all(isinstance(t, str) and t.startswith(TOKEN_ID_PREFIX) for t in tokens):
            ids = [int(t[len(TOKEN_ID_PREFIX) :]) for t in tokens]
            text = decode(self.tokenizer, ids)
        else:
            # fallback: no ids from the server; the tokenization of the text (may differ from what was sampled)
            ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            if len(logprobs) != len(ids):
                logprobs = [math.nan] * len(ids)
        if len(logprobs) != len(ids):
            raise BackendResponseError(
                f"POST {self.url}: prompt {prompt_index} came back with {len(ids)} tokens but {len(logprobs)} logprobs"
            )
        finish = "length" if reason == "length" else "stop"
        return Completion(ids=ids, logprobs=logprobs, text=text, finish_reason=finish)

    # ------------------------------------------------------------------------------------------------ public

    async def agenerate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        """One completion per prompt, requests running concurrently. Prompt i uses `params.seeds[i]`, else seed + i
        (repeated prompts still differ, and the batch is reproducible)."""
        import httpx

        checked = check_prompts(prompts)
        params.check_seeds(len(checked))
        sem = asyncio.Semaphore(self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits) as client:

            async def one(i: int, prompt: list[int]) -> Completion:
                seed = params.prompt_seed(i)
                async with sem:
                    data = await self._post(client, self._body(prompt, params, seed))
                return self._parse(data, i)

            return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(checked))))

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        """Synchronous `agenerate` (see `run_blocking`)."""
        return run_blocking(self.agenerate(prompts, params))

    def health(self) -> bool:
        """True when the server answers GET /health (vLLM) or /v1/models with 200."""
        import httpx

        for path in ("/health", "/v1/models"):
            try:
                if httpx.get(self.base_url + path, timeout=self.timeout, headers=self.headers).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
        return False
