"""The service's admin API as the demo, the chaos suite and the benchmarks drive it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from stack.ports import StackError

ENDED = frozenset({"done", "failed", "held"})


class ServiceApi:
    """`PUT /tenants/{name}`, `POST /sync/{name}`, and waiting for a run to end."""

    def __init__(self, http: httpx.AsyncClient, web_url: str, admin_token: str) -> None:
        self.http = http
        self.web_url = web_url
        self.admin = {"Authorization": f"Bearer {admin_token}"}

    async def put_tenant(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Register (or replace) a tenant; its stored config, secrets redacted."""
        url = f"{self.web_url}/tenants/{name}"
        response = await self.http.put(url, json=dict(body), headers=self.admin)
        if response.status_code not in (200, 201):
            raise StackError(
                f"PUT /tenants/{name} answered {response.status_code}: {response.text}"
            )
        stored: dict[str, Any] = response.json()
        return stored

    async def start_run(self, tenant: str, body: Mapping[str, Any]) -> str:
        """POST /sync/{tenant}; the run's id."""
        url = f"{self.web_url}/sync/{tenant}"
        response = await self.http.post(url, json=dict(body), headers=self.admin)
        if response.status_code != 202:
            raise StackError(
                f"POST /sync/{tenant} answered {response.status_code}: {response.text}"
            )
        run_id: str = response.json()["run"]
        return run_id

    async def wait_run(
        self,
        tenant: str,
        run_id: str,
        *,
        within: float,
        strict: bool = True,
        poll: float = 0.25,
        check: Callable[[], None] | None = None,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll the run until it has ended; its record.

        After `within` seconds: StackError, or the record as it stands when not `strict`.
        `check` raises when a piece of the stack died meanwhile.
        """
        url = f"{self.web_url}/sync/{tenant}/runs/{run_id}"
        deadline = time.monotonic() + within
        run: dict[str, Any] = {}
        while True:
            # A web process restarting (the chaos suite's) is no reason to give up.
            with contextlib.suppress(httpx.HTTPError):
                response = await self.http.get(url, headers=self.admin)
                if response.status_code == 200:
                    run = response.json()
                    if run.get("state") in ENDED:
                        return run
            if time.monotonic() > deadline:
                if strict:
                    raise StackError(f"run {run_id} still {run.get('state')} after {within:.0f}s")
                return run
            if check is not None:
                check()
            if progress is not None:
                progress(run)
            await asyncio.sleep(poll)

    async def status(self, tenant: str) -> dict[str, Any]:
        response = await self.http.get(f"{self.web_url}/sync/{tenant}", headers=self.admin)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    async def user(self, tenant: str, user_id: str) -> dict[str, Any]:
        """GET /sync/{tenant}/users/{id}: the user's sync history and notes."""
        url = f"{self.web_url}/sync/{tenant}/users/{user_id}"
        response = await self.http.get(url, headers=self.admin)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body
