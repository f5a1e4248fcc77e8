"""Nothing a signed sender does grows Redis without bound, and no signed event is refused
(issue 12, points 5 and 7).

Beyond the tenant's ingest rate (WEBHOOK_EVENTS_PER_MINUTE) an event is coalesced: its
employees join one capped set, an unreadable one raises one poll flag; every key an event
writes expires; an event id that is missing, not a string or integer, or over 128 characters
is deduplicated by the SHA-256 of the raw body and never stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from arq.connections import ArqRedis

from app.service.coalesced import drain_coalesced
from app.store import ingest, keys
from tests.conftest import make_settings
from tests.e2e.conftest import ServiceFactory
from tests.e2e.stories import small_company
from tests.security.conftest import register_tenants
from tests.security.support import ACME_WEBHOOK, ADMIN, Served, serve, signed_headers

RATE = 40


@pytest.fixture
async def limited(redis: ArqRedis) -> AsyncIterator[Served]:
    settings = make_settings(ALLOW_HTTP_ELEVO="false", WEBHOOK_EVENTS_PER_MINUTE=str(RATE))
    async with serve(settings) as app:
        await register_tenants(app)
        yield app


async def post(served: Served, event: object, offset: float = 0.0) -> dict[str, object]:
    body = orjson.dumps(event)
    headers = signed_headers(ACME_WEBHOOK, body, offset_seconds=offset)
    response = await served.client.post("/webhooks/lucca/acme", content=body, headers=headers)
    assert response.status_code == 202, response.text  # a signed event is never refused
    answer: dict[str, object] = response.json()
    return answer


def employee_event(event_id: object, user: str) -> dict[str, object]:
    return {"id": event_id, "topic": "employee.updated", "data": {"id": user}}


# -- point 7: every event is deduplicated ---------------------------------------------------

UNUSABLE_IDS = [None, {"a": 1}, [1], True, 1.5, "", "x" * 129, "y" * 200_000, "a\nb"]


@pytest.mark.parametrize("event_id", [*UNUSABLE_IDS, "absent"], ids=repr)
async def test_an_event_without_a_usable_id_is_deduplicated_by_its_body(
    served: Served, event_id: object
) -> None:
    event = employee_event(event_id, "416")
    if event_id == "absent":
        del event["id"]
    body = orjson.dumps(event)
    first = await post(served, event)
    assert first["status"] == "users"
    # Lucca's retry: the same body under a fresh timestamp and signature.
    assert await post(served, event, offset=-30) == {"status": "duplicate"}
    redis = served.resources.redis
    mark = keys.event_body("acme", hashlib.sha256(body).hexdigest())
    assert 0 < await redis.ttl(mark) <= 7 * 24 * 3600
    assert not [key async for key in redis.scan_iter(match="t:acme:event:*")]
    assert await redis.zcard(keys.queue()) == 1
    # Another body with the same unusable id is another event.
    other = employee_event(event_id, "417")
    if event_id == "absent":
        del other["id"]
    assert (await post(served, other))["status"] == "users"


async def test_an_id_of_128_characters_is_the_event_id(served: Served) -> None:
    event_id = "e" * 128
    await post(served, employee_event(event_id, "416"))
    assert await post(served, employee_event(event_id, "417")) == {"status": "duplicate"}
    assert await served.resources.redis.exists(keys.event("acme", event_id))


# -- point 5: Redis grows with employees, never with events -------------------------------

# Tenant-level keys that hold no per-event or per-user data of their own, kept without expiry.
PERMANENT = {
    b"arq:queue:runs",  # ARQ's queue of the steps of runs, like its own default queue
    b"tenants",
    b"tenant:acme:config",
    b"tenant:beta:config",
    b"t:acme:status",
    b"t:beta:status",
    b"t:acme:skip-field:excluded",  # a set of employees
    b"t:beta:skip-field:excluded",
    # One counter per tenant: a reconciliation compares notice numbers with it (fresher.py).
    b"t:acme:notices",
    b"t:beta:notices",
    b"arq:queue",
}


def made_up_event(number: int) -> dict[str, object]:
    user = str(random.randrange(10**8, 10**12))
    kind = number % 10
    if kind == 0:  # an unreadable event
        return {"id": f"evt-{number}", "topic": "employee.updated", "data": []}
    if kind == 1:  # a department
        return {"id": f"evt-{number}", "topic": "department.updated", "data": {"id": user}}
    if kind == 2:  # an id over 128 characters
        return employee_event("z" * 5_000 + str(number), user)
    return employee_event(f"evt-{number}", user)


async def test_thousands_of_made_up_events_leave_a_bounded_redis(limited: Served) -> None:
    redis = limited.resources.redis
    before = await redis.dbsize()
    first_minute = int(time.time() // 60)
    statuses: dict[str, int] = {}
    for number in range(3_000):
        status = str((await post(limited, made_up_event(number)))["status"])
        statuses[status] = statuses.get(status, 0) + 1
    # One window per minute the posting spanned (two, or more on a slow machine) was handled
    # one by one; the rest was coalesced.
    windows = int(time.time() // 60) - first_minute + 1
    assert statuses.get("coalesced", 0) >= 3_000 - windows * RATE
    found = [key async for key in redis.scan_iter(count=1000)]
    # Per event handled: its dedupe mark, run and job, its user's generation and notice number.
    assert len(found) - before <= windows * RATE * 5 + 10
    for key in found:
        if key not in PERMANENT:
            assert await redis.ttl(key) != -1, key  # -1: no expiry
    assert max(len(key) for key in found) < 200  # no event id of 5,000 characters kept
    used = sum([await redis.memory_usage(key) or 0 for key in found])
    assert used < 1024 * 1024, used
    # The coalesced employees are one set, synced by the next tick in one run.
    coalesced = await redis.scard(keys.webhook_coalesced_users("acme"))
    assert 0 < coalesced <= statuses["coalesced"]
    assert await drain_coalesced(limited.resources, "acme") >= 3  # users, departments, poll
    assert await redis.scard(keys.webhook_coalesced_users("acme")) == 0
    runs = await limited.client.get("/sync/acme", headers=ADMIN)
    triggers = {run["trigger"] for run in runs.json()["runs"]}
    assert "webhook-coalesced" in triggers


async def test_past_the_cap_one_poll_stands_for_the_rest(
    limited: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "COALESCED_CAP", 10)
    redis = limited.resources.redis
    for number in range(RATE * 2 + 50):
        await post(limited, employee_event(f"evt-{number}", str(1000 + number)))
    assert await redis.scard(keys.webhook_coalesced_users("acme")) <= 10
    assert await redis.exists(keys.webhook_coalesced_poll("acme"))


async def test_the_runs_index_is_trimmed_to_the_retention(redis: ArqRedis) -> None:
    # A webhook's run is kept at most the runs' retention (here 1 s: its own default, 3 days,
    # is longer), in an index of its own.
    settings = make_settings(ALLOW_HTTP_ELEVO="false", RUN_RETENTION_SECONDS="1")
    async with serve(settings) as app:
        await register_tenants(app)
        await post(app, employee_event("first", "416"))
        await asyncio.sleep(1.1)
        answer = await post(app, employee_event("second", "417"))
        index = keys.webhook_runs("acme")
        assert await redis.zrange(index, 0, -1) == [str(answer["run"]).encode()]
        assert 0 < await redis.ttl(index) <= 1
        assert 0 < await redis.ttl(keys.run("acme", str(answer["run"]))) <= 1
        assert await redis.ttl(keys.gen("acme", "417")) > 0


async def test_the_worker_leaves_only_expiring_keys_for_made_up_users(
    service_factory: ServiceFactory,
) -> None:
    """Made-up ids through the whole sync (web, worker, the Lucca simulator, scim2-server):
    whatever the worker writes about a user nobody has expires."""
    service = await service_factory()
    tenant = await service.add_tenant(service.registry.add(small_company(rate_limit=None)))
    url = f"{service.url}/webhooks/lucca/{tenant.name}"
    for number in range(60):
        body = orjson.dumps(employee_event(f"evt-{number}", str(10**9 + number)))
        headers = signed_headers(tenant.sender.secret, body)
        response = await service.http.post(url, content=body, headers=headers)
        assert response.status_code == 202, response.text
    await tenant.settle()
    redis = service.resources.redis
    lasting = []
    async for key in redis.scan_iter(match=f"t:{tenant.name}:*", count=1000):
        if await redis.ttl(key) == -1:  # -2: expired since the scan
            lasting.append(key.decode())
    # Tenant-level records only: none is per user or per event.
    prefix = f"t:{tenant.name}:"
    assert {key.removeprefix(prefix) for key in lasting} <= {"status", "errors", "idmap", "notices"}
    assert await redis.hlen(keys.user_errors(tenant.name)) <= 60  # and each expires with a fix


async def test_coalesced_events_are_synced_by_their_drain_without_waiting_for_the_tick(
    service_factory: ServiceFactory,
) -> None:
    service = await service_factory(WEBHOOK_EVENTS_PER_MINUTE="1")
    company = service.registry.add(small_company(rate_limit=None))
    tenant = await service.add_tenant(company)
    await tenant.full_sync()
    events = [
        event
        for user_id in (1, 2, 3, 4)
        for event in company.update(user_id, lastName=f"Coalesced{user_id}")
    ]
    assert await tenant.send(events) == [202] * len(events)
    await tenant.settle()
    assert (await tenant.consistency()).mismatches == []
    runs = (await tenant.status())["runs"]
    assert "webhook-coalesced" in {run["trigger"] for run in runs}
