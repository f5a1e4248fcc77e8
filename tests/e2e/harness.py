"""The real components of an end-to-end test, started over loopback.

- Elevo: the real `scim2-server` in a subprocess (one per test session; a tenant per test).
- Lucca: the project's simulator under uvicorn in a thread (one per session), so that tests
  change its companies directly.
- The service: its web app under uvicorn and an ARQ worker, in the test's event loop (the
  tests move its injected clock), against the real Redis; fresh for every test.

Ports, the scim2-server process and the threaded server come from `stack/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from arq.worker import Worker

from app.clients.elevo import ElevoClient
from app.core.profile import ElevoProfile
from app.core.tenant import GuardConfig, TenantConfig
from app.main import create_app
from app.secret import Secret
from app.service.context import Clock
from app.service.resources import Resources
from app.service.runs import run_document
from app.settings import Settings
from app.store import keys
from simulators.consistency import Report, check
from simulators.lucca.company import Company, Registry
from simulators.lucca.webhooks import Event, WebhookSender
from stack.checks import all_profiles, raw_users
from stack.ports import free_port
from stack.services import Stack
from workers.closing import close_worker
from workers.worker import worker_options

SCIM_TOKEN = "elevo-test-token"


class ScimServer:
    """The contract's scim2-server, supervised by the stack; one per test session."""

    def __init__(self, log_dir: Path) -> None:
        self._stack = Stack(log_dir)
        child = self._stack.elevo("scim2", token=SCIM_TOKEN, name="scim2-server")
        self.port = child.port
        self.base = child.url

    def stop(self) -> None:
        self._stack.sup.stop_all()


@dataclass
class Service:
    """The web app and one worker, running, plus handles to drive and observe them."""

    settings: Settings
    resources: Resources
    url: str
    scim_base: str
    registry: Registry
    http: httpx.AsyncClient
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    worker_tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    servers: list[uvicorn.Server] = field(default_factory=list)

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.admin_token.reveal()}"}

    # -- tenants --------------------------------------------------------------------------

    async def add_tenant(
        self,
        company: Company,
        *,
        name: str | None = None,
        skip_field: str = "e_skip_elevo_sync",
        custom_fields: dict[str, str] | None = None,
        guard: GuardConfig | None = None,
        per_minute: int = 50,
    ) -> Tenant:
        tenant = name or f"t{secrets.token_hex(4)}"
        secret = f"whsec-{secrets.token_hex(8)}"
        config = TenantConfig(
            tenant=tenant,
            lucca_subdomain=company.subdomain,
            lucca_api_key=Secret(company.api_key),
            elevo_scim_url=f"{self.scim_base}/{tenant}/v2",
            elevo_token=Secret(SCIM_TOKEN),
            webhook_secrets=(Secret(secret),),
            skip_field=skip_field,
            custom_fields=custom_fields or {},
            guard=guard or GuardConfig(),
            lucca_requests_per_minute=per_minute,
        )
        await self.resources.tenants.put(config)
        elevo = ElevoClient(self.http, config.elevo_scim_url, Secret(SCIM_TOKEN))
        sender = WebhookSender(
            self.http, f"{self.url}/webhooks/lucca/{tenant}", secret, retry_delays=()
        )
        return Tenant(self, config, company, elevo, sender)

    # -- lifecycle ------------------------------------------------------------------------

    async def start_worker(self, **overrides: Any) -> Worker:
        options = worker_options(self.settings) | {"poll_delay": 0.01} | overrides
        worker = Worker(
            **options,
            ctx={"resources": self.resources, "owns_resources": False},
            handle_signals=False,
        )
        self.workers.append(worker)
        self.worker_tasks.append(asyncio.create_task(worker.async_run()))
        return worker

    def every_worker(self) -> list[Worker]:
        """The workers started, and the runs' queue each serves beside its live queue."""
        found = list(self.workers)
        for worker in self.workers:
            standby = worker.ctx.get("runs_standby")
            if standby is not None:
                found.append(standby.worker)
        return found

    async def stop(self) -> None:
        for server in self.servers:
            server.should_exit = True
        for task in self.worker_tasks:
            task.cancel()
        for task in [*self.worker_tasks, *self.tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)
        for worker in self.workers:
            with contextlib.suppress(Exception):
                await close_worker(worker)
        await self.http.aclose()
        await self.resources.aclose()


@dataclass
class Tenant:
    service: Service
    config: TenantConfig
    company: Company
    elevo: ElevoClient
    sender: WebhookSender

    @property
    def name(self) -> str:
        return self.config.tenant

    async def send(self, events: list[Event]) -> list[int | None]:
        """Deliver events as Lucca would; the statuses the service answered."""
        statuses = []
        for event in events:
            delivery = await self.sender.send(event)
            statuses.append(delivery.attempts[-1].status)
        return statuses

    async def profiles(self) -> list[ElevoProfile]:
        return await all_profiles(self.elevo)

    async def profile(self, user_id: int | str) -> ElevoProfile | None:
        return await self.elevo.find_by_external_id(str(user_id))

    async def consistency(self) -> Report:
        items = self.company.users()
        scim_users = await raw_users(self.service.http, self.config.elevo_scim_url, SCIM_TOKEN)
        return check(
            items,
            scim_users,
            skip_field=self.config.skip_field,
            custom_fields=self.config.custom_fields,
            today=self.company.today(),
        )

    async def full_sync(self, **body: Any) -> dict[str, Any]:
        """POST /sync/{tenant} and wait for the run to end; its record."""
        response = await self.service.http.post(
            f"{self.service.url}/sync/{self.name}",
            json={"mode": "full", **body},
            headers=self.service.admin_headers,
        )
        assert response.status_code == 202, response.text
        return await self.wait_run(response.json()["run"])

    async def wait_run(self, run_id: str, within: float = 60.0) -> dict[str, Any]:
        async def ended() -> dict[str, Any] | None:
            run = await run_document(self.service.resources, self.name, run_id)
            return run if run and run["state"] in {"done", "failed", "held"} else None

        return await eventually(ended, timeout=within)

    async def settle(self, within: float = 30.0) -> None:
        """Wait until the queue is empty and no job runs."""
        await settle(self.service, timeout=within)

    async def status(self) -> dict[str, Any]:
        """`GET /sync/{tenant}`, as an operator reads it."""
        response = await self.service.http.get(
            f"{self.service.url}/sync/{self.name}", headers=self.service.admin_headers
        )
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body


T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 20.0, interval: float = 0.05
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def settle(service: Service, timeout: float = 30.0) -> None:
    redis = service.resources.redis
    left: list[str] = []

    async def idle() -> bool:
        # Re-checks scheduled for a contract's end are not pending work; retries are.
        queued = [
            f"{job.decode()} due in {score / 1000 - time.time():.1f}s"
            for name in keys.queues()
            for job, score in await redis.zrange(name, 0, -1, withscores=True)
            if not job.startswith(b"due:")
        ]
        running = [job_id for w in service.every_worker() for job_id in w.tasks]
        left[:] = queued + [f"running {name}" for name in running]
        return not left

    # Two idle readings in a row: a job that just ended may have queued another.
    try:
        await eventually(idle, timeout=timeout)
        await asyncio.sleep(0.1)
        await eventually(idle, timeout=timeout)
    except AssertionError as timed_out:
        raise AssertionError(f"not settled within {timeout}s; still there: {left}") from timed_out


async def start_service(
    settings: Settings, scim_base: str, registry: Registry, clock: Clock
) -> Service:
    resources = await Resources.create(settings, clock=clock)
    port = free_port()
    app = create_app(settings, resources=resources)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    service = Service(
        settings=settings,
        resources=resources,
        url=f"http://127.0.0.1:{port}",
        scim_base=scim_base,
        registry=registry,
        http=httpx.AsyncClient(timeout=30.0),
    )
    service.servers.append(server)
    service.tasks.append(asyncio.create_task(server.serve()))
    while not server.started:
        await asyncio.sleep(0.01)
    return service
