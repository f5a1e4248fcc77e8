"""The suite's stack: every piece on loopback, supervised; the tenant; waiting for quiet."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.clients.elevo import ElevoClient
from app.secret import Secret
from bench.chaos.options import (
    BROKEN_SIZE,
    CUSTOM_FIELDS,
    GARBLED,
    REFUSED,
    SKIP_FIELD,
    TENANT,
    ChaosOptions,
)
from stack.checks import ScimAccess
from stack.lucca_control import LuccaControl
from stack.ports import wait_until
from stack.processes import Child, Supervisor
from stack.service_api import ServiceApi
from stack.services import Credentials, Stack, redis_url, service_env

# An arq job id not counted as pending work: re-checks scheduled for a contract's end (days
# ahead), and the minute tick, whose in-progress key arq keeps 60 s after it ends.
_NOT_PENDING = (b"due:", b"cron:")
_IN_PROGRESS = "arq:in-progress:"


@dataclass
class ChaosStack:
    """The running pieces by name, the credentials that tie them, and clients to drive them."""

    http: httpx.AsyncClient
    workdir: Path
    stack: Stack
    creds: Credentials = field(default_factory=Credentials)
    pieces: dict[str, Child] = field(default_factory=dict)
    redis: aioredis.Redis | None = None

    @property
    def sup(self) -> Supervisor:
        return self.stack.sup

    def url(self, name: str) -> str:
        return self.pieces[name].url

    @property
    def api(self) -> ServiceApi:
        return ServiceApi(self.http, self.url("web"), self.creds.admin_token)

    def elevo(self) -> ElevoClient:
        """Elevo straight, not through the proxy: what the checks read."""
        return ElevoClient(self.http, self.scim_access().scim_url, Secret(self.creds.scim_token))

    def scim_access(self) -> ScimAccess:
        """The same, for reading the profiles raw (the consistency checker)."""
        return ScimAccess(self.http, f"{self.url('scim')}/{TENANT}/v2", self.creds.scim_token)

    def lucca(self) -> LuccaControl:
        return LuccaControl(self.http, self.url("lucca"), TENANT)

    async def wait(self, probe: Callable[[], Awaitable[bool]], what: str) -> None:
        await wait_until(probe, what, check=self.sup.check)

    async def wait_run(self, body: dict[str, Any], within: float) -> dict[str, Any]:
        """Start a run of the tenant and wait for its end; its record."""
        run_id = await self.api.start_run(TENANT, body)
        return await self.api.wait_run(TENANT, run_id, within=within, check=self.sup.check)

    def log(self, text: str) -> None:
        print(f"» {text}", flush=True)


def _start_simulators(chaos: ChaosStack, options: ChaosOptions) -> None:
    stack, creds = chaos.stack, chaos.creds
    chaos.pieces["redis"] = stack.redis(data_dir=chaos.workdir / "redis")
    companies = [f"{TENANT}:{options.employees}:{options.seed}:{creds.lucca_api_key}"]
    if options.broken_tenants:
        companies += [
            f"{name}:{BROKEN_SIZE}:{options.seed}:{creds.lucca_api_key}"
            for name in (GARBLED, REFUSED)
        ]
    chaos.pieces["lucca"] = stack.lucca(companies=companies, rate_limit=50)
    chaos.pieces["scim"] = stack.elevo("scim2", token=creds.scim_token, name="scim")
    chaos.pieces["proxy"] = stack.fault_proxy(
        chaos.url("scim"), seed=options.seed, hang_seconds=options.http_timeout * 3
    )


def _start_service(chaos: ChaosStack, options: ChaosOptions) -> None:
    """The web process and two workers, restarted whenever they exit (restart=always)."""
    overrides = {
        "HTTP_TIMEOUT_SECONDS": str(options.http_timeout),
        "WORKER_METRICS_PORT": "0",  # two workers: no metrics port to share
        "LOG_LEVEL": options.log_level,
        # Every event on its own path: the chaos run checks each one's effect.
        "WEBHOOK_EVENTS_PER_MINUTE": "100000000",
    }
    if options.lucca_budget:
        overrides["LUCCA_BUDGET_OVERRIDE"] = str(options.lucca_budget)
    env = service_env(
        redis_url=redis_url(chaos.pieces["redis"]),
        lucca_url=chaos.url("lucca"),
        admin_token=chaos.creds.admin_token,
        **overrides,
    )
    chaos.pieces["web"] = chaos.stack.web(env, restart=True)
    for n in (1, 2):
        chaos.pieces[f"worker-{n}"] = chaos.stack.worker(env, name=f"worker-{n}", restart=True)


async def start_stack(chaos: ChaosStack, options: ChaosOptions) -> None:
    _start_simulators(chaos, options)
    chaos.sup.watch()
    redis = aioredis.Redis.from_url(redis_url(chaos.pieces["redis"]))
    chaos.redis = redis
    await chaos.wait(lambda: _true(redis.ping()), "redis answers")
    _start_service(chaos, options)
    http, auth = chaos.http, {"Authorization": f"Bearer {chaos.creds.scim_token}"}
    probes: dict[str, Callable[[], Awaitable[bool]]] = {
        "lucca": lambda: _ok(http.get(chaos.lucca().base)),
        "scim": lambda: _ok(http.get(f"{chaos.url('scim')}/{TENANT}/v2/Users", headers=auth)),
        "proxy": lambda: _ok(http.get(f"{chaos.url('proxy')}/_proxy/counters")),
        "web": lambda: _ok(http.get(f"{chaos.url('web')}/readyz")),
        "workers": lambda: _true(redis.exists("arq:queue:health-check")),
    }  # fmt: skip
    for name, probe in probes.items():
        await chaos.wait(probe, f"{name} answers")
    ports = {name: child.port for name, child in chaos.pieces.items()}
    chaos.log(f"stack up: ports {ports}, logs in {chaos.sup.log_dir}")


async def _ok(request: Awaitable[httpx.Response]) -> bool:
    return (await request).status_code == 200


async def _true(value: Awaitable[Any]) -> bool:
    return bool(await value)


def tenant_body(chaos: ChaosStack, name: str) -> dict[str, Any]:
    """A tenant of that name, its Elevo SCIM URL through the fault proxy."""
    creds = chaos.creds
    return {
        "lucca": {
            "subdomain": name,
            "api_key": creds.lucca_api_key,
            "webhook_secret": creds.webhook_secret,
        },
        "elevo": {"scim_url": f"{chaos.url('proxy')}/{name}/v2", "token": creds.scim_token},
        "skip_field": SKIP_FIELD,
        "custom_fields": CUSTOM_FIELDS,
    }


async def register_tenant(chaos: ChaosStack, options: ChaosOptions) -> None:
    """The healthy tenant, polled by the minute tick if `poll_interval` says so."""
    body = tenant_body(chaos, TENANT)
    if options.poll_interval:
        body["poll_interval_seconds"] = options.poll_interval
    await chaos.api.put_tenant(TENANT, body)


# -- quiescence -----------------------------------------------------------------------------------


async def pending_work(redis: aioredis.Redis) -> tuple[int, int]:
    """(jobs queued, jobs in progress), leaving out contract-end re-checks and the tick."""
    queued = await redis.zrange("arq:queue", 0, -1)
    waiting = sum(1 for job in queued if not job.startswith(_NOT_PENDING))
    running = 0
    async for key in redis.scan_iter(match=f"{_IN_PROGRESS}*", count=1000):
        if not key[len(_IN_PROGRESS) :].startswith(_NOT_PENDING):
            running += 1
    return waiting, running


async def _deferred(redis: aioredis.Redis) -> str:
    """How many queued jobs are deferred (a retry's backoff), and till when at the latest."""
    try:
        scored = await redis.zrange("arq:queue", 0, -1, withscores=True)
        now_ms = time.time() * 1000
    except RedisError:
        return "?"
    ahead = [score - now_ms for job, score in scored if not job.startswith(_NOT_PENDING)]
    later = [ms for ms in ahead if ms > 0]
    if not later:
        return "all due"
    return f"{len(later)} deferred, the last {max(later) / 1000:.0f}s ahead"


async def settle(chaos: ChaosStack, within: float) -> tuple[bool, float]:
    """Wait until nothing is queued nor in progress for a second; (quiet?, seconds waited)."""
    assert chaos.redis is not None
    started = last_report = time.monotonic()
    idle_since: float | None = None
    while True:
        chaos.sup.check()
        now = time.monotonic()
        try:
            waiting, running = await pending_work(chaos.redis)
        except RedisError:
            waiting, running = -1, -1
        if waiting == 0 and running == 0:
            idle_since = idle_since or now
            if now - idle_since >= 1.0:
                return True, now - started
        else:
            idle_since = None
        if now - started > within:
            return False, now - started
        if now - last_report >= 15:
            last_report = now
            later = await _deferred(chaos.redis)
            chaos.log(f"waiting for quiescence: {waiting} queued ({later}), {running} in progress")
        await asyncio.sleep(0.25)
