"""The whole service on loopback, for the benchmarks that need a worker.

redis-server (own port), the Lucca simulator (`python -m simulators.lucca`, no rate limit), an
Elevo SCIM server (scim2-server or simulators/fastscim.py), the web line and one worker line,
each its own process as in the Procfile.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.common import (
    SCIM_TOKEN,
    Tenant,
    add_tenant,
    bench_env,
    iso_seconds,
    log,
    mutate,
    post_event,
    redis_client,
)
from bench.metrics import Metrics, scrape
from stack.checks import raw_users
from stack.ports import free_port
from stack.processes import Child
from stack.services import Stack

LIFTED = "1000000"  # LUCCA_BUDGET_OVERRIDE: requests per minute, i.e. no budget at all


@dataclass
class Change:
    """One HR change: the user, the new first name, when its webhook was sent, the answer."""

    user_id: str
    value: str
    sent: float = 0.0
    status: int = 0
    run: str | None = None
    visible: float | None = None  # meta.lastModified of the profile after the change
    polled: float | None = None  # first time a poll saw the change (cross-check sample)


@dataclass
class Service:
    stack: Stack
    scim_kind: str
    redis: Child
    lucca: Child
    scim: Child
    web: Child
    env: dict[str, str]
    http: httpx.AsyncClient
    worker: Child | None = None
    runs_worker: Child | None = None
    tenants: dict[str, Tenant] = field(default_factory=dict)

    @classmethod
    async def start(
        cls, stack: Stack, scim_kind: str, http: httpx.AsyncClient, **env: str
    ) -> Service:
        redis = stack.redis()
        lucca = stack.lucca()
        scim = stack.elevo(scim_kind, token=SCIM_TOKEN)
        full_env = bench_env(redis, lucca, **env)
        web = stack.web(full_env)
        return cls(stack, scim_kind, redis, lucca, scim, web, full_env, http)

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}"

    @property
    def scim_base(self) -> str:
        return self.scim.url

    def start_worker(self, **env: str) -> Child:
        if self.worker is not None:
            self.stack.stop(self.worker)
        self.env.update(env)
        self.worker = self.stack.worker(self.env)
        return self.worker

    def start_runs_worker(self) -> Child:
        """The Procfile's `worker-runs:` line beside the worker (its own metrics port)."""
        env = self.env | {"WORKER_METRICS_PORT": str(free_port())}
        self.runs_worker = self.stack.worker(env, name="worker-runs", line="worker-runs")
        return self.runs_worker

    async def add_tenant(self, name: str, size: int, seed: int = 1) -> Tenant:
        log(f"generating Lucca company {name} of {size:,} employees")
        tenant = await add_tenant(
            self.http,
            name=name,
            web_url=self.web_url,
            lucca_url=self.lucca.url,
            scim_base=self.scim_base,
            size=size,
            seed=seed,
        )
        self.tenants[name] = tenant
        return tenant

    async def metrics(self) -> Metrics:
        assert self.worker is not None
        return await scrape(self.http, int(self.env["WORKER_METRICS_PORT"]))

    # -- Elevo -----------------------------------------------------------------------------

    async def profiles(self, tenant: Tenant) -> list[dict[str, Any]]:
        """Every SCIM User of the tenant, raw."""
        return await raw_users(self.http, tenant.scim_url, SCIM_TOKEN)

    async def active_managed(self, tenant: Tenant) -> dict[str, str]:
        """Lucca id -> SCIM id of every active profile the sync manages."""
        elevo = "urn:ietf:params:scim:schemas:extension:elevo:2.0:User"
        return {
            p["externalId"]: p["id"]
            for p in await self.profiles(tenant)
            if p.get("externalId")
            and p.get("active", True)
            and (p.get(elevo) or {}).get("syncSource") == "lucca"
        }

    async def get_profile(self, tenant: Tenant, scim_id: str) -> dict[str, Any]:
        response = await self.http.get(
            f"{tenant.scim_url}/Users/{scim_id}",
            headers={"Authorization": f"Bearer {SCIM_TOKEN}"},
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    # -- changes ---------------------------------------------------------------------------

    async def change(self, tenant: Tenant, change: Change) -> None:
        """Change a first name in Lucca, then deliver its webhook(s) as Lucca would."""
        events = await mutate(
            self.http, tenant, op="update", user_id=int(change.user_id), firstName=change.value
        )
        for event in events:
            change.sent, change.status, change.run = await post_event(self.http, tenant, event)

    async def paced(
        self,
        tenant: Tenant,
        users: list[str],
        rate: float,
        duration: float,
        *,
        poll_every: int = 0,
        scim_ids: dict[str, str] | None = None,
    ) -> list[Change]:
        """`rate` changes per second for `duration` s, each to a user of its own.

        Every `poll_every`-th change is also polled on SCIM (every 20 ms) until it shows.
        """
        count = int(rate * duration)
        if count > len(users):
            raise SystemExit(f"{count} changes need {count} distinct users; have {len(users)}")
        stamp = int(time.time())
        changes = [Change(uid, f"B{stamp}x{i}") for i, uid in enumerate(users[:count])]
        del users[:count]
        tasks: list[asyncio.Task[None]] = []
        start = time.perf_counter()
        for i, change in enumerate(changes):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            poll = bool(poll_every) and i % poll_every == 0 and scim_ids is not None
            tasks.append(asyncio.create_task(self._one(tenant, change, poll, scim_ids or {})))
        await asyncio.gather(*tasks)
        return changes

    async def _one(
        self, tenant: Tenant, change: Change, poll: bool, scim_ids: dict[str, str]
    ) -> None:
        await self.change(tenant, change)
        if not poll:
            return
        deadline = time.time() + 60
        while time.time() < deadline:
            profile = await self.get_profile(tenant, scim_ids[change.user_id])
            if (profile.get("name") or {}).get("givenName") == change.value:
                change.polled = time.time()
                return
            await asyncio.sleep(0.02)

    async def wait_visible(
        self,
        tenant: Tenant,
        changes: list[Change],
        scim_ids: dict[str, str],
        within: float,
        *,
        webhooks: bool = True,
    ) -> None:
        """Wait until every change shows in Elevo; note each profile's lastModified.

        With `webhooks`, only the changes whose webhook was accepted are waited for.
        """
        pending = [c for c in changes if c.status == 202 or not webhooks]
        deadline = time.time() + within
        gate = asyncio.Semaphore(8)

        async def look(change: Change) -> None:
            async with gate:
                profile = await self.get_profile(tenant, scim_ids[change.user_id])
            if (profile.get("name") or {}).get("givenName") == change.value:
                change.visible = iso_seconds(profile["meta"]["lastModified"])

        while pending and time.time() < deadline:
            await asyncio.gather(*(look(c) for c in pending))
            pending = [c for c in pending if c.visible is None]
            if pending:
                await asyncio.sleep(0.5)
        if pending:
            log(f"{len(pending)} changes still not visible after {within}s")

    async def run_times(self, tenant: Tenant, changes: list[Change]) -> dict[str, float]:
        """run id -> finished_at (the service's own record of the Elevo write), seconds."""
        client = redis_client(self.env["REDIS_URL"])
        found: dict[str, float] = {}
        try:
            pipe = client.pipeline(transaction=False)
            runs = [c.run for c in changes if c.run]
            for run in runs:
                pipe.hget(f"t:{tenant.name}:run:{run}", "finished_at")
            for run, value in zip(runs, await pipe.execute(), strict=True):
                finished = iso_seconds(value)
                if finished is not None:
                    found[run] = finished
        finally:
            await client.aclose()
        return found


def shuffled(ids: dict[str, str], seed: int = 7) -> list[str]:
    users = sorted(ids, key=int)
    random.Random(seed).shuffle(users)
    return users
