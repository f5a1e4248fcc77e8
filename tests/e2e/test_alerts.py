"""Alerts end to end: a held run sends one signed notice to the tenant's alerts_url, its
dismissal one more, and nothing in between; a receiver that fails gets the same notice again.
The receiver is a tiny Starlette app on loopback (tests/e2e/receiver.py); the worker is the
real one."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from app.core.tenant import GuardConfig
from app.secret import Secret
from app.service.alerts import check_alerts
from tests.e2e.harness import SCIM_TOKEN, Service, Tenant, eventually, settle
from tests.e2e.receiver import Receiver, receiving
from tests.e2e.stories import small_company

pytestmark = pytest.mark.e2e

ALERTS_SECRET = "alerts-secret-e2e-5f6g"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


async def alerted_tenant(service: Service, url: str) -> Tenant:
    company = service.registry.add(small_company(rate_limit=None))
    tenant = await service.add_tenant(company, guard=GuardConfig(max_suspend_count=100))
    tenant.config = replace(
        tenant.config, alerts_url=url, alerts_secret=Secret(ALERTS_SECRET), alerts_failed_runs=3
    )
    await service.resources.tenants.put(tenant.config)
    service.resources.contexts.forget(tenant.name)
    return tenant


def verifies(headers: dict[str, str], body: bytes) -> bool:
    """The receiver's check, written from docs/alerts.md (not with the service's code)."""
    timestamp = headers["elevo-sync-timestamp"]
    expected = hmac.new(
        ALERTS_SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    fresh = abs(time.time() - int(timestamp)) < 300
    return fresh and hmac.compare_digest(headers["elevo-sync-signature"], f"v1={expected}")


async def test_a_held_run_sends_one_signed_notice_and_its_dismissal_one_more(
    service: Service, receiver: Receiver
) -> None:
    got = receiver
    tenant = await alerted_tenant(service, got.url)
    res = service.resources
    await tenant.full_sync()
    await check_alerts(res, tenant.name)
    await settle(service)
    assert got.received == []  # all is well: nothing to say
    for user in list(tenant.company.users()):
        tenant.company.delete(user["id"])
    held = await tenant.full_sync()
    assert held["state"] == "held"

    # The worker's own alerts_tick may check too, at second 30: notices, not return values,
    # say what was sent (tests/service/test_alerts.py counts transitions without a worker).
    await check_alerts(res, tenant.name)
    await eventually(lambda: _count(got, 1))
    await check_alerts(res, tenant.name)  # still held: no second notice
    await settle(service)
    [raised] = got.notices()
    assert raised["tenant"] == tenant.name
    assert (raised["kind"], raised["state"]) == ("held_run", "raised")
    assert raised["facts"] == {"run": held["id"], "users": 4}

    dismissed = await service.http.post(
        f"{service.url}/sync/{tenant.name}",
        json={"dismiss": held["id"]},
        headers=service.admin_headers,
    )
    assert dismissed.status_code == 202, dismissed.text
    await check_alerts(res, tenant.name)
    await eventually(lambda: _count(got, 2))
    await check_alerts(res, tenant.name)
    await settle(service)
    assert [(n["kind"], n["state"]) for n in got.notices()] == [
        ("held_run", "raised"),
        ("held_run", "cleared"),
    ]
    secrets = (ALERTS_SECRET, SCIM_TOKEN, tenant.company.api_key, *_webhook_secrets(tenant))
    for headers, body in got.received:
        assert verifies(headers, body)
        assert not any(secret in body.decode() or secret in str(headers) for secret in secrets)
    assert not verifies(got.received[0][0], got.received[0][1] + b" ")  # the body is signed


async def test_a_failing_endpoint_gets_the_same_notice_again(
    service: Service, receiver: Receiver
) -> None:
    got = receiver
    got.fail_next = 1
    tenant = await alerted_tenant(service, got.url)
    await service.resources.records.note(tenant.name, lucca_key_error="refused")
    await check_alerts(service.resources, tenant.name)
    await eventually(lambda: _count(got, 2), timeout=30)
    await settle(service)
    first, second = got.notices()
    assert first == second  # one notice, delivered on the second try
    assert (first["kind"], first["state"]) == ("lucca_key_refused", "raised")
    assert await service.resources.alerts.pending(tenant.name) == []


async def _count(receiver: Receiver, expected: int) -> bool:
    assert len(receiver.received) <= expected, receiver.notices()
    return len(receiver.received) == expected


def _webhook_secrets(tenant: Tenant) -> list[str]:
    return [secret.reveal() for secret in tenant.config.webhook_secrets]
