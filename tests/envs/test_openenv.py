"""OpenEnv both ways (envs/interop/openenv.py): real `distillgym serve-env` servers on localhost played through
openenv-core's own client, malformed messages and full servers answered with errors while the server keeps serving,
and distillgym evaluating and training GRPO against a running OpenEnv server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("openenv")

from openenv.core.generic_client import GenericEnvClient
from typer.testing import CliRunner
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from distillgym.agents.http_backend import free_port
from distillgym.cli import app
from distillgym.eval.bench.serve_load import wait_until_healthy
from tests.conftest import grpo_iteration_through_cli


def serve(env_id: str, *extra: str, log: Path | None = None) -> tuple[str, subprocess.Popen[Any]]:
    port = free_port()
    err = subprocess.DEVNULL if log is None else log.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "distillgym.cli", "serve-env", env_id, "--port", str(port), *extra],
                            stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(url, proc, timeout_s=120)
    return url, proc


@pytest.fixture(scope="module")
def sokoban() -> Iterator[str]:
    url, proc = serve("Sokoban-6x6-1-v0", "--privileged", "--max-sessions", "64")
    yield url
    proc.terminate()
    proc.wait(120)


def play_expert(url: str, seed: int) -> tuple[Any, int]:
    """Play task `seed` with the expert's moves read from the served privileged info; the last result and steps."""
    with GenericEnvClient(base_url=url).sync() as client:
        result = client.reset(seed=seed)
        for step in range(1, 30):
            result = client.step({"text": result.observation["info"]["privileged"]["expert_action"]})
            if result.done:
                return result, step
    raise AssertionError("the expert did not finish")


def test_openenv_client_plays_sokoban_and_household(sokoban: str) -> None:
    result, steps = play_expert(sokoban, seed=2)
    assert result.observation["info"]["success"] and result.reward > 0 and steps <= 20
    url, proc = serve("Household-v0", "--privileged")
    try:
        result, steps = play_expert(url, seed=1)
        assert result.observation["info"]["success"] and steps == 4
        with GenericEnvClient(base_url=url).sync() as client:  # the test split is served too
            first = client.reset(seed=1, split="test").observation
            assert first["info"]["split"] == "test" and first["info"]["task_seed"] == 2**31 + 1
    finally:
        proc.terminate()
        proc.wait(120)


def test_privileged_information_only_when_served_with_it() -> None:
    url, proc = serve("Sokoban-6x6-1-v0")
    try:
        with GenericEnvClient(base_url=url).sync() as client:
            info = client.reset(seed=2).observation["info"]
            assert "privileged" not in info and info["admissible_actions"] and "Sokoban" in info["task"]
    finally:
        proc.terminate()
        proc.wait(120)


def ws(url: str) -> Any:
    return connect(url.replace("http://", "ws://") + "/ws", open_timeout=120)


def test_malformed_messages_get_errors_and_the_server_keeps_serving(sokoban: str) -> None:
    with ws(sokoban) as conn:
        for message, code in [("not json", "INVALID_JSON"), (json.dumps({"type": "fly"}), "UNKNOWN_TYPE"),
                              (json.dumps({"type": "step", "data": {"txt": "Up"}}), "VALIDATION_ERROR"),
                              (json.dumps({"type": "step", "data": {"text": "Up"}}), "EXECUTION_ERROR")]:
            conn.send(message)  # the last: a step before any reset
            reply = json.loads(conn.recv(timeout=120))
            assert reply["type"] == "error" and reply["data"]["code"] == code, reply
        conn.send(json.dumps({"type": "reset", "data": {"seed": 2}}))  # the same session still plays
        reply = json.loads(conn.recv(timeout=120))
        assert reply["type"] == "observation" and "#" in reply["data"]["observation"]["text"]
    play_expert(sokoban, seed=3)  # and so do new ones
    # OpenEnv's HTTP routes are stateless (a fresh env per request): a step there has no episode, a bad split is
    # refused, both as JSON 4xx; a reset answers
    import httpx

    res = httpx.post(sokoban + "/step", json={"action": {"text": "Up"}}, timeout=120)
    assert res.status_code == 409 and "WebSocket" in res.json()["detail"]
    res = httpx.post(sokoban + "/reset", json={"seed": 1, "split": "dev"}, timeout=120)
    assert res.status_code == 422 and "split" in res.json()["detail"]
    assert httpx.post(sokoban + "/step", json={"action": {"txt": "Up"}}, timeout=120).status_code == 422
    assert "#" in httpx.post(sokoban + "/reset", json={"seed": 1}, timeout=120).json()["observation"]["text"]
    # the family's own reset options pass through (an unknown one is refused by the env, by name)
    res = httpx.post(sokoban + "/reset", json={"seed": 1, "colour": "red"}, timeout=120)
    assert res.status_code == 422 and "colour" in res.json()["detail"]
    assert httpx.post(sokoban + "/reset", json={"seed": 1, "task_index": 7},
                      timeout=120).json()["observation"]["info"]["task_index"] == 7


def test_a_full_server_refuses_a_session_then_serves_it_when_one_closes(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    url, proc = serve("Sokoban-6x6-1-v0", "--max-sessions", "1", log=log)
    try:
        with ws(url) as first:
            first.send(json.dumps({"type": "reset", "data": {"seed": 0}}))
            assert json.loads(first.recv(timeout=120))["type"] == "observation"
            with ws(url) as second:  # the server answers a session it cannot hold at once, and closes it
                reply = json.loads(second.recv(timeout=120))
                assert reply["type"] == "error" and reply["data"]["code"] == "CAPACITY_REACHED"
        # the server frees the first session when its handler ends: wait for that (a condition, not a time)
        deadline = time.monotonic() + 60
        while True:
            try:
                with GenericEnvClient(base_url=url).sync() as client:
                    assert "#" in client.reset(seed=0).observation["text"]
                break
            except (ConnectionError, RuntimeError, WebSocketException):  # refused while the first is freed
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        for _ in range(3):  # OpenEnv's client: "close", then its socket shut at once
            with GenericEnvClient(base_url=url).sync() as client:
                client.reset(seed=1)
    finally:
        proc.terminate()
        proc.wait(120)
    # sessions that end (a client leaving first, a refused one) leave no traceback in the server's log
    assert "Traceback" not in log.read_text()


def test_quiet_disconnect_swallows_only_a_websocket_session_s_disconnect() -> None:
    import asyncio

    from starlette.websockets import WebSocketDisconnect

    from distillgym.envs.interop.openenv import QuietDisconnect

    async def raising(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise scope["error"]

    async def run(kind: str, error: Exception) -> None:
        await QuietDisconnect(raising)({"type": kind, "error": error}, None, None)

    asyncio.run(run("websocket", WebSocketDisconnect(1006)))  # the client left first: ends quietly
    for kind, error in (("websocket", RuntimeError("boom")), ("http", WebSocketDisconnect(1006))):
        with pytest.raises(type(error)):
            asyncio.run(run(kind, error))


def test_distillgym_evaluates_and_trains_grpo_against_an_openenv_server(sokoban: str, tiny_dir: str,
                                                                        tmp_path: Path) -> None:
    runner = CliRunner()
    env = f"openenv:{sokoban}"
    res = runner.invoke(app, ["eval", "-a", "random", "-e", env, "--episodes", "3", "--out", str(tmp_path / "eval")])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "eval" / "result.json").read_text())["metrics"]
    assert metrics[0]["episodes"] == 3 and metrics[0]["invalid_action_rate"] == 0.0  # admissible moves came through
    grpo_iteration_through_cli(env, tiny_dir, tmp_path / "grpo")
    # across the wire there is no expert: algorithms that need one are refused by name
    res = runner.invoke(app, ["train", "algo=sft", f"env={env}", f"model={tiny_dir}", f"out_dir={tmp_path / 's'}"])
    assert res.exit_code != 0 and "expert" in res.output


def test_load_benchmark_measures_both_servers(tmp_path: Path) -> None:
    from distillgym.eval.bench import openenv_load

    out = tmp_path / "load.json"
    openenv_load.main(["--sessions", "4", "--steps", "3", "--out", str(out), "--plot", str(tmp_path / "load.png")])
    assert (tmp_path / "load.png").stat().st_size > 1000
    results = json.loads(out.read_text())["results"]
    assert [r["server"] for r in results] == ["distillgym Sokoban-6x6-1-v0", "openenv-echo"]
    for r in results:  # every session reset and stepped (a finished episode adds a reset)
        assert r["errors"] == 0 and r["requests"] >= 4 * 4 and r["p99_ms"] >= r["p50_ms"] > 0
