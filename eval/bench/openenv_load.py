"""Load on `distillgym serve-env` beside OpenEnv's own example env, served the same way, in one run: concurrent
WebSocket sessions, requests per second, latency percentiles.

    python -m distillgym.eval.bench.openenv_load [--sessions 64 256] [--steps 20] [--env Sokoban-6x6-1-v0] [--plot PNG]

The protocol of OpenEnv's scaling tutorial: N sessions at once, each a WebSocket to `/ws` that resets and then steps
`--steps` times, one message after another; every reset and step is a request, timed from send to reply. The two
servers:

- distillgym: `distillgym serve-env ENV --max-sessions N --session-timeout 0` (one uvicorn process), random moves
  (`{"text": "Up"}`...), a new episode (a reset, counted) when one ends;
- OpenEnv's example: the echo environment `openenv init` generates (openenv-core's template: it echoes the message),
  served by openenv-core's `create_fastapi_app` with `max_concurrent_envs=N` on uvicorn, one process, the same as
  `serve-env`; actions `{"message": "hello"}`.

The load generator runs in this process (asyncio, `websockets`), so on a small machine it shares the cores with the
server it measures. Reported per server and N: requests, errors, requests/s, p50 and p99 latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from distillgym.agents.http_backend import free_port
from distillgym.eval.bench.common import machine, markdown_table, save_results
from distillgym.eval.bench.serve_load import percentile, wait_until_healthy

MOVES = ["Up", "Down", "Left", "Right"]

ECHO_LAUNCHER = """
import sys, uvicorn
sys.path.insert(0, {root!r})
from openenv.core.env_server.http_server import create_fastapi_app
from echo_bench.models import EchoBenchAction, EchoBenchObservation
from echo_bench.server.echo_bench_environment import EchoBenchEnvironment
app = create_fastapi_app(EchoBenchEnvironment, EchoBenchAction, EchoBenchObservation, max_concurrent_envs={n})
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning")
"""


def start_distillgym(env_id: str, sessions: int) -> tuple[str, subprocess.Popen[Any]]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "distillgym.cli", "serve-env", env_id, "--port", str(port),
                             "--max-sessions", str(sessions), "--session-timeout", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return f"http://127.0.0.1:{port}", proc


def start_echo(root: Path, sessions: int) -> tuple[str, subprocess.Popen[Any]]:
    """OpenEnv's template env (made by `openenv init` under `root`), served by create_fastapi_app on uvicorn."""
    if not (root / "echo_bench").is_dir():
        subprocess.run([sys.executable, "-m", "openenv.cli", "init", "echo_bench", "-o", str(root)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", ECHO_LAUNCHER.format(root=str(root), n=sessions, port=port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return f"http://127.0.0.1:{port}", proc


async def session(url: str, steps: int, seed: int, kind: str, lat: list[float], errors: list[str]) -> None:
    from websockets.asyncio.client import connect

    rng = random.Random(seed)
    async with connect(url.replace("http://", "ws://") + "/ws", open_timeout=60, max_size=None) as ws:

        async def request(message: dict[str, Any]) -> dict[str, Any]:
            t = time.perf_counter()
            await ws.send(json.dumps(message))
            reply = json.loads(await ws.recv())
            lat.append(time.perf_counter() - t)
            if reply.get("type") == "error":
                errors.append(str(reply.get("data", {}).get("code")))
            return reply

        reset = {"type": "reset", "data": {"seed": seed} if kind == "distillgym" else {}}
        await request(reset)
        for _ in range(steps):
            action = {"text": rng.choice(MOVES)} if kind == "distillgym" else {"message": "hello"}
            reply = await request({"type": "step", "data": action})
            if reply.get("type") == "observation" and reply["data"].get("done"):
                await request(reset)


async def load(url: str, sessions: int, steps: int, kind: str) -> dict[str, Any]:
    lat: list[float] = []
    errors: list[str] = []
    t = time.perf_counter()
    outcomes = await asyncio.gather(*(session(url, steps, i, kind, lat, errors) for i in range(sessions)),
                                    return_exceptions=True)
    wall = time.perf_counter() - t
    failed = [repr(o) for o in outcomes if isinstance(o, BaseException)]
    return {"sessions": sessions, "requests": len(lat), "errors": len(errors) + len(failed),
            "error_codes": sorted(set(errors))[:5] + failed[:3], "wall_s": wall,
            "requests_per_s": len(lat) / wall if wall else 0.0,
            "p50_ms": 1000 * percentile(lat, 50) if lat else float("nan"),
            "p99_ms": 1000 * percentile(lat, 99) if lat else float("nan")}


def plot(results: list[dict[str, Any]], path: str) -> None:
    """Requests/s and p99 latency against concurrent sessions, one line per server."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for server in dict.fromkeys(r["server"] for r in results):
        rows = sorted((r for r in results if r["server"] == server), key=lambda r: r["sessions"])
        n = [r["sessions"] for r in rows]
        axes[0].plot(n, [r["requests_per_s"] for r in rows], marker="o", label=server)
        axes[1].plot(n, [r["p99_ms"] for r in rows], marker="o", label=server)
    for ax, label in zip(axes, ("requests per second", "p99 latency (ms)"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent sessions")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[1].set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--env", default="Sokoban-6x6-1-v0")
    ap.add_argument("--out", default="runs/bench/openenv_load.json")
    ap.add_argument("--plot", default=None, help="also draw requests/s and p99 against sessions to this PNG")
    args = ap.parse_args(argv)

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sessions:
            for kind in ("distillgym", "openenv-echo"):
                url, proc = start_distillgym(args.env, n) if kind == "distillgym" else start_echo(Path(tmp), n)
                try:
                    wait_until_healthy(url, proc, timeout_s=120)
                    res = asyncio.run(load(url, n, args.steps, kind))
                finally:
                    proc.terminate()
                    proc.wait(120)
                results.append({"server": kind if kind != "distillgym" else f"distillgym {args.env}", **res})
                print(f"{results[-1]['server']}, {n} sessions: {res['requests_per_s']:.0f} req/s, "
                      f"p50 {res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms, {res['errors']} errors", flush=True)
    print(markdown_table(["server", "sessions", "requests", "errors", "requests/s", "p50 ms", "p99 ms"],
                         [[r["server"], r["sessions"], r["requests"], r["errors"], f"{r['requests_per_s']:.0f}",
                           f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}"] for r in results]))
    save_results(args.out, {"machine": machine(), "args": vars(args), "results": results}, args.plot, plot)


if __name__ == "__main__":
    main()
