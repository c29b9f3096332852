"""A remote cascade as a distillgym agent: `RemoteCascade("http://host:8000")` plays any env through a running
`distillgym serve` (`POST /v1/act`), one server session per episode, the batch's steps sent concurrently. Each
answer keeps the server's accounting in `ActResult.info["cascade"]`, so `agents.cascade.cascade_costs` reads remote
episodes as it reads local ones. `distillgym eval -a http://host:8000` uses it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from distillgym.agents.http_backend import BackendConnectionError, BackendRequestError, _server_message
from distillgym.agents.policies import ActRequest, ActResult


class RemoteCascade:
    """An Agent whose every step is answered by a cascade server (see agents/serve.py); `token` defaults to the
    DISTILLGYM_TOKEN environment variable (as `distillgym serve` reads it)."""

    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = 120.0, name: str = "") -> None:
        self.url = url.rstrip("/")
        token = token if token is not None else os.environ.get("DISTILLGYM_TOKEN")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout_s = timeout_s
        self.name = name or f"remote({self.url})"
        self._sessions: dict[int, str] = {}  # episode index -> server session

    async def _post(self, client: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        try:
            r = await client.post(self.url + path, json=body, headers=self.headers)
        except httpx.TransportError as e:
            raise BackendConnectionError(f"cannot reach the cascade server at {self.url}: {e}", url=self.url,
                                         attempts=1) from e
        if r.status_code >= 400:
            raise BackendRequestError(f"{path} answered {r.status_code}: {_server_message(r)}", url=self.url,
                                      status=r.status_code, server_message=_server_message(r))
        data: dict[str, Any] = r.json()
        return data

    async def _one(self, client: Any, req: ActRequest) -> ActResult:
        if req.step == 0 or req.episode not in self._sessions:
            old = self._sessions.pop(req.episode, None)
            if old is not None:
                await client.delete(f"{self.url}/v1/sessions/{old}", headers=self.headers)
            self._sessions[req.episode] = (await self._post(client, "/v1/sessions", {"task": req.task}))["session_id"]
        body: dict[str, Any] = {"session_id": self._sessions[req.episode], "observation": req.observation}
        if req.info.get("admissible_actions"):
            body["admissible_actions"] = list(req.info["admissible_actions"])
        out = await self._post(client, "/v1/act", body)
        info = {"cascade": {"acted": out["acted_by"], "agree": out.get("agree"), "tokens": out["tokens"],
                            "cost": out["cost"], "samples": []}}
        return ActResult(action=out["action"], reply=out["reply"], info=info)

    async def _act(self, requests: Sequence[ActRequest]) -> list[ActResult]:
        import httpx

        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            return list(await asyncio.gather(*(self._one(client, r) for r in requests)))

    def act(self, requests: Sequence[ActRequest], seed: int) -> list[ActResult]:
        return asyncio.run(self._act(requests)) if requests else []

    def close(self) -> None:
        """Close this agent's open sessions on the server."""
        import httpx

        with httpx.Client(timeout=self.timeout_s) as client:
            for sid in self._sessions.values():
                client.delete(f"{self.url}/v1/sessions/{sid}", headers=self.headers)
        self._sessions.clear()
