"""Load on the cascade server: `distillgym serve` started as its own process on localhost, C concurrent clients each
sending R requests one after another; latency p50/p99, requests/s, errors, and how many generation batches served
them (from /metrics).

    python -m distillgym.eval.bench.serve_load --clients 64 --requests 50                 # tiny student and teacher
    python -m distillgym.eval.bench.serve_load --student runs/x/model --teacher runs/y/model --endpoint chat

Each request is a one-step `/v1/act` (or an OpenAI chat completion with `--endpoint chat`) on a Household-style
observation; the default cascade is the tiny preset as both student and teacher (N = 2 samples, no demonstrations),
so the figure is the server's and the batcher's, not a model's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def wait_until_healthy(url: str, server: subprocess.Popen[Any], timeout_s: float = 300.0) -> None:
    """Poll `url`/health until the server process answers 200; an error if it exits or the time runs out."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        time.sleep(0.1)
    raise TimeoutError(f"no answer from {url}/health in {timeout_s:g} s")


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))]


async def load(url: str, clients: int, requests: int, endpoint: str, token: str) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    errors: list[str] = []

    async def client(i: int, http: Any) -> None:
        for j in range(requests):
            task, obs = f"Your task is to: put a mug {i} in the fridge.", f"You are in a kitchen (step {j})."
            body: dict[str, Any]
            if endpoint == "act":
                path, body = "/v1/act", {"task": task, "observation": obs}
            else:
                path, body = "/v1/chat/completions", {"model": "distillgym-cascade", "messages": [
                    {"role": "system", "content": task}, {"role": "user", "content": obs}]}
            t = time.perf_counter()
            r = await http.post(url + path, json=body, headers=headers)
            latencies.append(time.perf_counter() - t)
            if r.status_code != 200:
                errors.append(f"{r.status_code}: {r.text[:200]}")

    t = time.perf_counter()
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=clients)) as http:
        await asyncio.gather(*(client(i, http) for i in range(clients)))
        wall = time.perf_counter() - t
        metrics = (await http.get(url + "/metrics", headers=headers)).text
    gauges = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines()
              if line.startswith("distillgym_") and " " in line and "{" not in line}
    return {"requests": clients * requests, "errors": len(errors), "first_errors": errors[:3], "wall_s": wall,
            "requests_per_s": clients * requests / wall, "p50_ms": 1000 * percentile(latencies, 50),
            "p99_ms": 1000 * percentile(latencies, 99), "mean_ms": 1000 * statistics.fmean(latencies),
            "generation_batches": gauges.get("distillgym_generation_batches", 0.0),
            "largest_batch": gauges.get("distillgym_largest_batch", 0.0)}


def main(argv: list[str] | None = None) -> None:
    from distillgym.agents.http_backend import free_port
    from distillgym.eval.bench.common import machine, write_json

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--requests", type=int, default=50, help="per client, one after another")
    p.add_argument("--endpoint", choices=["act", "chat"], default="act")
    p.add_argument("--student", default="tiny")
    p.add_argument("--teacher", default="tiny")
    p.add_argument("--n", type=int, default=2)
    p.add_argument("--max-tokens", type=int, default=8)
    p.add_argument("--max-batch", type=int, default=64)
    p.add_argument("--batch-window-ms", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=2, help="torch threads of the server")
    p.add_argument("--out", default="runs/bench/serve_load.json")
    args = p.parse_args(argv)
    token = "bench"
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "cascade.json"
        spec.write_text(json.dumps({"student": args.student, "teacher": args.teacher, "cascade": {
            "k": 0, "n": args.n, "max_tokens": args.max_tokens, "history": 0}}))
        port = free_port()
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "DISTILLGYM_TOKEN": token}
        cmd = [sys.executable, "-m", "distillgym.cli", "serve", "--cascade", str(spec), "--env", "Household-v0",
               "--port", str(port), "--max-batch", str(args.max_batch), "--batch-window-ms",
               str(args.batch_window_ms)]
        server = subprocess.Popen(cmd, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(url, server)
            result = asyncio.run(load(url, args.clients, args.requests, args.endpoint, token))
        finally:
            server.terminate()
            server.wait(timeout=30)
    result = {**result, "args": vars(args), "machine": machine()}
    write_json(args.out, result)
    print(f"{result['requests']} requests from {args.clients} clients ({args.endpoint}): {result['errors']} errors; "
          f"p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms, {result['requests_per_s']:.1f} req/s; "
          f"{result['generation_batches']:.0f} generation batches (largest {result['largest_batch']:.0f})")


if __name__ == "__main__":
    main()
