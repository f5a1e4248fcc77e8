"""An Elevo that stalls on one employee, and one that applies a creation after the client gave
up: scim2-server behind the fault proxy (simulators/faultproxy.py), the service in-process
with short job timeouts (issue 11, points 4 and 9)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from arq.connections import ArqRedis

from app.core import scim
from app.service.runs import status_document
from simulators.faultproxy import FaultProxy, Hold
from simulators.lucca.company import Registry
from stack.inprocess import ThreadedServer
from tests.conftest import make_settings
from tests.e2e.conftest import FakeClock, service_defaults
from tests.e2e.harness import ScimServer, Service, Tenant, eventually, start_service
from tests.e2e.stories import hire, small_company

pytestmark = pytest.mark.e2e

NEW_HIRE = 7
STALL = 8.0  # Elevo's stall on the new hire: several job timeouts, with room for a busy machine


@pytest.fixture
def proxy(scim_server: ScimServer) -> Any:
    """A fault proxy in front of the session's scim2-server, holding nothing yet."""
    proxy = FaultProxy(scim_server.base)
    server = ThreadedServer(proxy.app())
    yield proxy, server.url
    server.stop()


StartBehind = Callable[..., Awaitable[Service]]


@pytest.fixture
async def behind_proxy(
    redis: ArqRedis,  # emptied first: no job of an earlier test runs here
    proxy: tuple[FaultProxy, str],
    lucca_server: ThreadedServer,
    lucca_registry: Registry,
    clock: FakeClock,
) -> AsyncIterator[StartBehind]:
    """Start the service with Elevo reached through the proxy, with these settings."""
    started: list[Service] = []

    async def start(**env: str) -> Service:
        settings = make_settings(**(service_defaults(lucca_server) | env))
        service = await start_service(settings, proxy[1], lucca_registry, clock)
        await service.start_worker()
        started.append(service)
        return service

    yield start
    for service in started:
        await service.stop()


async def synced_company(service: Service) -> Tenant:
    tenant = await service.add_tenant(service.registry.add(small_company()))
    run = await tenant.full_sync()
    assert run["state"] == "done", run
    return tenant


async def test_an_employee_elevo_answers_late_is_retried_and_the_others_land(
    behind_proxy: StartBehind, proxy: tuple[FaultProxy, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.service.sync_user")
    # ARQ's timeout 2 s (the job stops itself at 1.5 s); Elevo answers the hire after 8 s.
    service = await behind_proxy(SYNC_JOB_TIMEOUT_SECONDS="2")
    tenant = await synced_company(service)
    faults = proxy[0]
    faults.holds = [Hold(str(NEW_HIRE), seconds=STALL, forward="before")]

    started = time.monotonic()
    events = hire(tenant.company, NEW_HIRE, "Eve", "Moreau", manager=1)
    events += tenant.company.update(2, lastName="Martin-Leroy")
    events += tenant.company.update(3, lastName="Durand-Roy")
    assert set(await tenant.send(events)) == {202}

    async def others_landed() -> bool:
        names = {p.external_id: p.attributes[scim.FAMILY_NAME] for p in await tenant.profiles()}
        return names.get("2") == "Martin-Leroy" and names.get("3") == "Durand-Roy"

    await eventually(others_landed, timeout=20)
    # The others did not wait for the stalled employee.
    assert time.monotonic() - started < STALL
    # The hire's creation is held (on a busy machine it may be sent after the others landed).
    await eventually(lambda: _true(faults.counters.held >= 1), timeout=20)
    assert faults.counters.held == 1

    await tenant.settle(within=60)
    # The job gave up before ARQ's timeout (the HTTP timeout is 10 s), and was tried again.
    assert f"user={NEW_HIRE} retry 1: no answer within 1.5 s" in caplog.text
    # Retried, never dropped, never created twice: the retry found what the late answer made.
    hired = [p for p in await tenant.profiles() if p.external_id == str(NEW_HIRE)]
    assert len(hired) == 1
    assert hired[0].active
    # The retry found the profile as it should be: unchanged, counted, not recorded (and no
    # error kept for the employee).
    history = await service.resources.records.history(tenant.name, str(NEW_HIRE))
    assert not any(entry.get("error") for entry in history)
    assert str(NEW_HIRE) not in (await tenant.status())["failing_users"]
    assert (await tenant.consistency()).mismatches == []


async def test_a_creation_applied_after_the_client_gave_up_leaves_one_profile(
    behind_proxy: StartBehind, proxy: tuple[FaultProxy, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.service.sync_user")
    # The client gives up after 1 s; Elevo applies the first creation 8 s after it was sent,
    # after the retry created the profile under the employee's new email.
    service = await behind_proxy(HTTP_TIMEOUT_SECONDS="1")
    tenant = await synced_company(service)
    faults = proxy[0]
    faults.holds = [Hold(str(NEW_HIRE), seconds=STALL, forward="after")]

    assert set(await tenant.send(hire(tenant.company, NEW_HIRE, "Eve", "Moreau"))) == {202}
    await eventually(lambda: _true(faults.counters.held == 1), timeout=20)
    new_mail = f"eve.moreau-durand@{tenant.company.subdomain}.test"
    changed = tenant.company.update(NEW_HIRE, mail=new_mail)
    assert set(await tenant.send(changed)) == {202}

    async def both_landed() -> bool:
        return faults.counters.forwarded >= 1 and not faults.holds and len(await mine()) >= 2

    async def mine() -> list[Any]:
        raw = await tenant.profiles()
        return [p for p in raw if p.attributes[scim.GIVEN_NAME] == "Eve"]

    # Elevo now holds two profiles for the employee, the late one under the old email.
    await eventually(both_landed, timeout=30)
    assert f"user={NEW_HIRE} retry 1: Elevo POST" in caplog.text  # the answer was lost
    await tenant.settle(within=60)
    # The next sync of the employee finds both, keeps the older, retires the later one.
    renamed = tenant.company.update(NEW_HIRE, lastName="Moreau-Durand")
    assert set(await tenant.send(renamed)) == {202}
    await tenant.settle(within=60)

    profiles = await mine()
    linked = [p for p in profiles if p.external_id == str(NEW_HIRE)]
    retired = [p for p in profiles if p.external_id is None]
    assert len(linked) == 1
    assert linked[0].user_name == new_mail
    assert linked[0].active
    assert linked[0].attributes[scim.FAMILY_NAME] == "Moreau-Durand"
    assert len(retired) == 1
    assert not retired[0].active
    assert retired[0].sync_source is None
    history = await service.resources.records.history(tenant.name, str(NEW_HIRE))
    [entry] = [e for e in history if e.get("retired_profile")]
    assert entry["retired_profile"] == retired[0].id
    assert entry["kept_profile"] == linked[0].id
    assert entry["action"] == "suspend"
    status = await status_document(service.resources, tenant.name)
    assert status["duplicate_profiles"][0] == {
        "user": str(NEW_HIRE),
        "kept": linked[0].id,
        "suspended": retired[0].id,
        "at": entry["at"],
    }
    # The retirement is no suspension of an employee: no run holds it, the guard never saw it.
    assert not status["safety_guard"]["holding"]


async def _true(value: bool) -> bool:
    return value
