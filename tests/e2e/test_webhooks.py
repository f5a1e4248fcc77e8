"""The webhook route over real HTTP: activation, signatures, dedupe, and what gets queued."""

from __future__ import annotations

import secrets
from datetime import timedelta

import orjson
import pytest

from app.service.runs import recent_run_documents
from simulators.lucca.webhooks import (
    leave_created_event,
    lucca_timestamp,
    ping_event,
    sign,
    utc_now,
)
from tests.e2e.harness import Service, Tenant
from tests.e2e.stories import small_company

pytestmark = pytest.mark.e2e


@pytest.fixture
async def acme(service: Service) -> Tenant:
    company = service.registry.add(small_company(rate_limit=None))
    return await service.add_tenant(company)


async def runs_of(tenant: Tenant) -> list[dict[str, object]]:
    return await recent_run_documents(tenant.service.resources, tenant.name)


@pytest.mark.parametrize("param", ["echo", "challenge"])
async def test_activation_echoes_the_value(acme: Tenant, param: str) -> None:
    assert await acme.sender.activate("tok-123", param=param)


async def test_a_signed_event_is_queued_and_answered_202(acme: Tenant) -> None:
    statuses = await acme.send(acme.company.update(2, lastName="Signed"))
    assert statuses == [202]
    runs = await runs_of(acme)
    assert [r["trigger"] for r in runs] == ["webhook:employee.updated"]


@pytest.mark.parametrize(
    ("case", "kwargs"),
    [
        ("wrong secret", {"secret": "not-the-secret"}),
        ("stale", {"skew": timedelta(minutes=-6)}),
        ("from the future", {"skew": timedelta(minutes=6)}),
    ],
)
async def test_a_bad_signature_is_401_and_queues_nothing(
    acme: Tenant, case: str, kwargs: dict[str, object]
) -> None:
    event = acme.company.update(2, lastName="Forged")[0]
    delivery = await acme.sender.send(event, **kwargs)  # type: ignore[arg-type]
    assert delivery.attempts[-1].status == 401, case
    assert await runs_of(acme) == []


async def test_another_tenants_secret_is_refused(service: Service, acme: Tenant) -> None:
    other = await service.add_tenant(service.registry.add(small_company(rate_limit=None)))
    event = acme.company.update(2, lastName="Cross")[0]
    delivery = await acme.sender.send(event, secret=other.sender.secret)
    assert delivery.attempts[-1].status == 401
    assert await runs_of(acme) == []
    assert await runs_of(other) == []


async def test_missing_signature_headers_are_401(acme: Tenant) -> None:
    body = orjson.dumps(acme.company.update(2, lastName="Bare")[0])
    response = await acme.service.http.post(
        acme.sender.url, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401
    assert await runs_of(acme) == []


async def test_an_unknown_tenant_is_404(service: Service) -> None:
    body = b'{"id": "1", "topic": "employee.updated", "data": {"id": "2"}}'
    timestamp = lucca_timestamp(utc_now())
    response = await service.http.post(
        f"{service.url}/webhooks/lucca/nobody-here",
        content=body,
        headers={
            "Content-Type": "application/json",
            "Lucca-Timestamp": timestamp,
            "Lucca-Signature": sign("whatever", timestamp, body),
        },
    )
    assert response.status_code == 404


async def test_ignored_and_activation_topics_are_acknowledged_without_work(acme: Tenant) -> None:
    subdomain = acme.company.subdomain
    statuses = await acme.send(
        [leave_created_event(subdomain, employee_id=2), ping_event(subdomain)]
    )
    assert statuses == [202, 202]
    assert await runs_of(acme) == []


async def test_a_duplicate_event_is_acknowledged_once(acme: Tenant) -> None:
    event = acme.company.update(2, lastName="Twice")[0]
    first = await acme.sender.send(event)
    second = await acme.sender.send(event)  # Lucca re-signs a retry with a fresh timestamp
    assert first.attempts[-1].status == second.attempts[-1].status == 202
    assert len(await runs_of(acme)) == 1


async def test_signed_but_not_json_is_400(acme: Tenant) -> None:
    body = b"{not json"
    timestamp = lucca_timestamp(utc_now())
    response = await acme.service.http.post(
        acme.sender.url,
        content=body,
        headers={
            "Content-Type": "application/json",
            "Lucca-Timestamp": timestamp,
            "Lucca-Signature": sign(acme.sender.secret, timestamp, body),
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "bad_json"


async def test_a_malformed_event_is_recorded_and_polls_lucca(acme: Tenant) -> None:
    event = {
        "id": secrets.token_hex(4),
        "type": "event",
        "topic": "employee.updated",
        "data": {"id": None},
    }
    assert await acme.send([event]) == [202]
    runs = await runs_of(acme)
    assert runs[0]["mode"] == "changes"
    assert runs[0]["trigger"] == "webhook:malformed:employee.updated"
    run = await acme.wait_run(str(runs[0]["id"]))
    assert run["state"] == "done"


async def test_the_echo_is_plain_text_never_sniffed_and_bounded(acme: Tenant) -> None:
    url = acme.sender.url
    echoed = await acme.service.http.get(url, params={"echo": "<b>x</b>"})
    assert echoed.text == "<b>x</b>"
    assert echoed.headers["content-type"].startswith("text/plain")
    assert echoed.headers["x-content-type-options"] == "nosniff"
    too_long = await acme.service.http.get(url, params={"challenge": "x" * 1025})
    assert too_long.status_code == 400
