"""What every benchmark shares: its stack, tenants and companies, webhooks, and the log line.

Every benchmark starts its own redis-server on a free port (the shared Redis on 6379 belongs
to others), its own simulators and the service's processes exactly as the Procfile runs them
(see `stack/`), and stops all of them on exit. Results go to bench/results/ (gitignored) as
JSON; each run's process logs to bench/results/logs/<run>-<date>/.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import redis.asyncio as aioredis

from app.store import keys
from bench.results import LOGS
from simulators.lucca.webhooks import lucca_timestamp, sign
from stack.lucca_control import LuccaControl
from stack.processes import Child
from stack.service_api import ServiceApi
from stack.services import Stack, redis_url, service_env

ADMIN_TOKEN = "bench-admin-token"  # noqa: S105 - local processes only
SCIM_TOKEN = "bench-scim-token"  # noqa: S105
WEBHOOK_SECRET = "whsec-bench-0123456789abcdef"  # noqa: S105


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def bench_stack(run_name: str) -> Stack:
    """A stack whose process logs go to bench/results/logs/<run_name>-<date>/."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Stack(LOGS / f"{run_name}-{stamp}")


def bench_env(redis: Child, lucca: Child, **overrides: str) -> dict[str, str]:
    """The service's environment against this Redis and Lucca: INFO logs, the tenant's own
    Lucca budget unless overridden, and no ingest rate: the benchmarks measure the path of one
    event, not its coalescing (tests/security/test_ingest_bounds.py)."""
    defaults = {
        "LOG_LEVEL": "INFO",
        "LUCCA_BUDGET_OVERRIDE": "0",
        "WEBHOOK_EVENTS_PER_MINUTE": "100000000",
    }
    return service_env(
        redis_url=redis_url(redis),
        lucca_url=lucca.url,
        admin_token=ADMIN_TOKEN,
        **(defaults | overrides),
    )


def redis_client(url: str) -> aioredis.Redis:
    return aioredis.Redis(connection_pool=aioredis.ConnectionPool.from_url(url))


async def fresh_lucca_budget(url: str) -> None:
    """Empty every Lucca host's window: a phase starts with its whole budget."""
    client = redis_client(url)
    async for key in client.scan_iter(match=keys.lucca_requests("*")):
        await client.delete(key)
    await client.aclose()


# -- tenants and companies -----------------------------------------------------------------


def far_nightly() -> str:
    """A nightly time 12 h away, so that no nightly run starts during a benchmark."""
    later = datetime.now(ZoneInfo("Europe/Paris")) + timedelta(hours=12)
    return later.strftime("%H:%M")


@dataclass
class Tenant:
    name: str
    subdomain: str
    api_key: str
    scim_base: str
    web_url: str
    lucca_url: str
    secret: str = WEBHOOK_SECRET
    per_minute: int = 40

    @property
    def scim_url(self) -> str:
        return f"{self.scim_base}/{self.name}/v2"

    @property
    def webhook_url(self) -> str:
        return f"{self.web_url}/webhooks/lucca/{self.name}"

    def lucca(self, http: httpx.AsyncClient) -> LuccaControl:
        return LuccaControl(http, self.lucca_url, self.subdomain)


async def add_tenant(
    http: httpx.AsyncClient,
    *,
    name: str,
    web_url: str,
    lucca_url: str,
    scim_base: str,
    size: int,
    seed: int = 1,
    per_minute: int = 40,
) -> Tenant:
    """A generated Lucca company and the service's tenant reading it, writing to SCIM."""
    api_key = f"key-{secrets.token_hex(6)}"
    tenant = Tenant(name, name, api_key, scim_base, web_url, lucca_url, per_minute=per_minute)
    await tenant.lucca(http).create(api_key, size, seed)
    body = {
        "lucca": {"subdomain": name, "api_key": api_key, "webhook_secret": tenant.secret},
        "elevo": {"scim_url": tenant.scim_url, "token": SCIM_TOKEN},
        "nightly_at": far_nightly(),
        "lucca_requests_per_minute": per_minute,
    }
    await ServiceApi(http, web_url, ADMIN_TOKEN).put_tenant(name, body)
    return tenant


async def lucca_counters(
    http: httpx.AsyncClient, tenant: Tenant, reset: bool = False
) -> dict[str, Any]:
    return await tenant.lucca(http).counters(reset=reset)


async def full_sync(
    http: httpx.AsyncClient, tenant: Tenant, within: float = 1800.0, poll: float = 0.2
) -> dict[str, Any]:
    """POST /sync/{tenant} {"mode": "full"} and wait for its end; the run and the wall time."""
    api = ServiceApi(http, tenant.web_url, ADMIN_TOKEN)
    started = time.perf_counter()
    run_id = await api.start_run(tenant.name, {"mode": "full"})
    run = await api.wait_run(tenant.name, run_id, within=within, strict=False, poll=poll)
    run["wall_seconds"] = time.perf_counter() - started
    if run.get("state") not in {"done", "failed", "held"}:
        # A run stuck in "running" (a step that died without failing the run) ends here.
        log(f"run {run_id} not done within {within:.0f} s: still {run.get('state')}")
        run["state"] = f"not done within {within:.0f} s ({run.get('state')})"
    return run


# -- webhooks ---------------------------------------------------------------------------------


def signed_headers(secret: str, body: bytes, now: datetime | None = None) -> dict[str, str]:
    timestamp = lucca_timestamp(now or datetime.now(UTC))
    return {
        "Content-Type": "application/json",
        "Lucca-Timestamp": timestamp,
        "Lucca-Signature": sign(secret, timestamp, body),
    }


async def mutate(http: httpx.AsyncClient, tenant: Tenant, **op: Any) -> list[dict[str, Any]]:
    """Apply one HR change in the Lucca simulator; the webhook events Lucca would send."""
    kind = op.pop("op")
    events: list[dict[str, Any]] = await tenant.lucca(http).mutate(kind, **op)
    return events


async def post_event(
    http: httpx.AsyncClient, tenant: Tenant, event: Mapping[str, Any]
) -> tuple[float, int, str | None]:
    """Sign and POST one event; (wall-clock send time, status, run id)."""
    body = orjson.dumps(event)
    headers = signed_headers(tenant.secret, body)
    sent = time.time()
    response = await http.post(tenant.webhook_url, content=body, headers=headers)
    run = None
    if response.status_code == 202:
        run = response.json().get("run")
    return sent, response.status_code, run


def iso_seconds(value: bytes | str | None) -> float | None:
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
