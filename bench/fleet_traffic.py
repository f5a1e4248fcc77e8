"""The fleet's traffic: registering it, its full runs, its HR changes and their webhooks."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bench.common import ADMIN_TOKEN, SCIM_TOKEN, Tenant, add_tenant, post_event
from bench.scenario import Service
from stack.lucca_control import LuccaControl
from stack.service_api import ServiceApi


@dataclass
class Employee:
    tenant: Tenant
    user_id: str
    scim_id: str


async def gathered(calls: Sequence[Callable[[], Awaitable[Any]]], width: int) -> list[Any]:
    """Run the calls `width` at a time; their results in order."""
    gate = asyncio.Semaphore(width)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await call()

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def register(service: Service, tenants: int, size: int) -> list[Tenant]:
    """`tenants` generated Lucca companies of `size` and the service's tenants reading them."""

    def one(i: int) -> Callable[[], Awaitable[Tenant]]:
        async def call() -> Tenant:
            return await add_tenant(
                service.http,
                name=f"f{i:04d}",
                web_url=service.web_url,
                lucca_url=service.lucca.url,
                scim_base=service.scim_base,
                size=size,
                seed=i,
            )

        return call

    made: list[Tenant] = await gathered([one(i) for i in range(tenants)], 4)
    service.tenants.update({t.name: t for t in made})
    return made


async def start_full(http: httpx.AsyncClient, tenant: Tenant) -> tuple[str, str]:
    """POST /sync/{tenant} {"mode": "full"}; (tenant, run id)."""
    api = ServiceApi(http, tenant.web_url, ADMIN_TOKEN)
    return tenant.name, await api.start_run(tenant.name, {"mode": "full"})


async def onboard(
    http: httpx.AsyncClient,
    tenants: Sequence[Tenant],
    width: int,
    ended: Callable[[str, str], Awaitable[bool]],
) -> list[tuple[str, str]]:
    """Each tenant's first full run, `width` at a time (customers are onboarded over days,
    not all in one minute: first runs at once on one worker overrun the step timeout)."""
    gate = asyncio.Semaphore(width)

    async def one(tenant: Tenant) -> tuple[str, str]:
        async with gate:
            run = await start_full(http, tenant)
            while True:
                if await ended(*run):
                    return run
                await asyncio.sleep(0.5)

    return list(await asyncio.gather(*(one(t) for t in tenants)))


async def staggered_runs(
    http: httpx.AsyncClient, tenants: Sequence[Tenant], night_s: float
) -> list[tuple[str, str]]:
    """Each tenant's nightly run at its own time: tenant i at i/N of the compressed night (as
    if nightly_at were spread over the night), started through the API."""
    started = time.perf_counter()
    runs: list[tuple[str, str]] = []
    for i, tenant in enumerate(tenants):
        delay = started + i * night_s / len(tenants) - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        runs.append(await start_full(http, tenant))
    return runs


def pick(pool: list[Employee], count: int) -> list[Employee]:
    """`count` employees nobody changed yet, taken off the pool."""
    if count > len(pool):
        raise SystemExit(f"{count} changes need as many distinct employees; {len(pool)} left")
    chosen, pool[:] = pool[:count], pool[count:]
    return chosen


def shuffled_pool(linked: Sequence[tuple[Tenant, dict[str, str]]], seed: int) -> list[Employee]:
    pool = [Employee(t, uid, sid) for t, ids in linked for uid, sid in ids.items()]
    random.Random(seed).shuffle(pool)
    return pool


async def change_events(http: httpx.AsyncClient, who: Employee, value: str) -> list[Any]:
    """A new first name in the Lucca simulator; the webhook events Lucca would send."""
    control = LuccaControl(http, who.tenant.lucca_url, who.tenant.subdomain)
    return await control.mutate("update", user_id=int(who.user_id), firstName=value)


async def paced_changes(
    http: httpx.AsyncClient, employees: Sequence[Employee], seconds: float, stamp: str
) -> list[int]:
    """Each employee changed once, evenly over `seconds`: the change in Lucca, then its
    signed webhook(s); the status of each webhook."""
    rate = len(employees) / seconds if seconds > 0 else float("inf")
    statuses: list[int] = []

    async def one(i: int, who: Employee) -> None:
        for event in await change_events(http, who, f"{stamp}{i}"):
            statuses.append((await post_event(http, who.tenant, event))[1])

    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    for i, who in enumerate(employees):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, who)))
    await asyncio.gather(*tasks)
    return statuses


async def prepared_events(
    http: httpx.AsyncClient, employees: Sequence[Employee], stamp: str
) -> list[tuple[Tenant, Any]]:
    """Change every employee in Lucca first (not timed); the webhooks to send."""
    found = await gathered(
        [lambda i=i, w=w: change_events(http, w, f"{stamp}{i}") for i, w in enumerate(employees)],
        16,
    )
    return [(w.tenant, e) for w, events in zip(employees, found, strict=True) for e in events]


async def post_all(http: httpx.AsyncClient, events: Sequence[tuple[Tenant, Any]]) -> list[int]:
    """Every webhook, 32 at a time, as fast as the web process takes them."""
    answers = await gathered([lambda t=t, e=e: post_event(http, t, e) for t, e in events], 32)
    return [status for _, status, _ in answers]


async def landed(service: Service, sample: Sequence[Employee], stamp: str) -> int:
    """How many of these employees show a first name of this change in Elevo."""

    async def one(who: Employee) -> bool:
        response = await service.http.get(
            f"{who.tenant.scim_url}/Users/{who.scim_id}",
            headers={"Authorization": f"Bearer {SCIM_TOKEN}"},
        )
        given = (response.json().get("name") or {}).get("givenName", "")
        return response.status_code == 200 and str(given).startswith(stamp)

    return sum(await gathered([lambda w=w: one(w) for w in sample], 8))
