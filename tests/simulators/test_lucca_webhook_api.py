"""The simulator's Lucca webhook API (issue 15): OAuth, endpoints, events, deliveries, with
every request and answer checked against Lucca's own OpenAPI document."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from simulators.lucca import Company, ManualClock, Registry
from simulators.lucca import company as company_module
from tests.simulators.conftest import START
from tests.simulators.openapi_shapes import operation_schema, problems

API = "/tiny/lucca-api"
TOPICS = ["employee.created", "employee.updated", "job-position.updated"]


def checked(value: Any, path: str, method: str, part: str) -> Any:
    assert problems(value, operation_schema(path, method, part)) == []
    return value


@pytest.fixture
def hub(registry: Registry) -> Any:
    registry.hub.add_client("tiny", "sync-client", "sync-secret")

    async def activate(url: str) -> bool:
        return url.endswith("/ok")

    registry.hub.activator = activate
    return registry.hub


@pytest.fixture
async def headers(client: httpx.AsyncClient, hub: Any) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": "sync-client",
        "client_secret": "sync-secret",
        "scope": "webhook-endpoints.readwrite events.readonly",
    }
    answer = await client.post("/connect/token", data=form)
    assert answer.status_code == 200
    assert answer.json()["expires_in"] == 1800
    return {"Authorization": f"Bearer {answer.json()['access_token']}", "Api-Version": "2024-11-01"}


async def create(client: httpx.AsyncClient, headers: dict[str, str], url: str) -> dict[str, Any]:
    body = {"name": "Elevo sync", "webhookUrl": url, "apiVersion": "2024-11-01", "topics": TOPICS}
    checked(body, "/lucca-api/webhook-endpoints", "post", "request")
    answer = await client.post(f"{API}/webhook-endpoints", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    assert answer.headers["api-version"] == "2024-11-01"
    created: dict[str, Any] = checked(answer.json(), "/lucca-api/webhook-endpoints", "post", "201")
    return created


async def test_wrong_client_credentials_get_no_token(client: httpx.AsyncClient, hub: Any) -> None:
    form = {"grant_type": "client_credentials", "client_id": "sync-client", "client_secret": "x"}
    answer = await client.post("/connect/token", data=form)
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_client"}


async def test_calls_need_a_token_of_the_tenant_and_the_version(
    client: httpx.AsyncClient, headers: dict[str, str], registry: Registry
) -> None:
    assert (await client.get(f"{API}/webhook-endpoints")).status_code == 401
    versionless = {"Authorization": headers["Authorization"]}
    assert (await client.get(f"{API}/webhook-endpoints", headers=versionless)).status_code == 400
    other = await client.get("/acme/lucca-api/webhook-endpoints", headers=headers)
    assert other.status_code == 401


async def test_an_endpoint_is_created_activated_listed_and_read(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    created = await create(client, headers, "https://sync.test/ok")
    assert created["status"] == "active"
    assert created["secret"]
    listed = await client.get(f"{API}/webhook-endpoints", headers=headers)
    page = checked(listed.json(), "/lucca-api/webhook-endpoints", "get", "200")
    assert [item["id"] for item in page["items"]] == [created["id"]]
    assert "secret" not in page["items"][0]
    one = await client.get(f"{API}/webhook-endpoints/{created['id']}", headers=headers)
    checked(one.json(), "/lucca-api/webhook-endpoints/{id}", "get", "200")
    missing = await client.get(f"{API}/webhook-endpoints/999999", headers=headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_a_failed_activation_leaves_the_endpoint_inactive(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    assert (await create(client, headers, "https://sync.test/broken"))["status"] == "inactive"


async def test_an_unknown_topic_is_refused_by_index(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    body = {
        "name": "x",
        "webhookUrl": "https://sync.test/ok",
        "apiVersion": "2024-11-01",
        "topics": ["employee.updated", "department.updated"],
    }
    answer = await client.post(f"{API}/webhook-endpoints", json=body, headers=headers)
    assert answer.status_code == 400
    assert list(answer.json()["errors"]) == ["topics[1]"]


async def test_events_are_listed_newest_first_and_paged(
    client: httpx.AsyncClient, headers: dict[str, str], tiny: Company
) -> None:
    for name in ("A", "B", "C"):
        tiny.update(416, lastName=name)
    first = await client.get(f"{API}/events", params={"limit": 2}, headers=headers)
    page = checked(first.json(), "/lucca-api/events", "get", "200")
    assert [e["data"]["id"] for e in page["items"]] == ["416", "416"]
    assert page["items"][0]["id"] == tiny.emitted[-1]["id"]
    seen = list(page["items"])
    while page["links"]["next"] is not None:
        href = page["links"]["next"]["href"].removeprefix("http://lucca.test")
        answer = await client.get(href, headers=headers)
        page = checked(answer.json(), "/lucca-api/events", "get", "200")
        seen += page["items"]
    assert [e["id"] for e in seen] == [e["id"] for e in reversed(tiny.emitted)]


class Receiver:
    """The receiving side: answers `status` to every POST."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.posts = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.posts += 1
        return httpx.Response(self.status)


@pytest.mark.parametrize("status", [404, 410])
async def test_a_404_or_410_suspends_at_once(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    registry: Registry,
    tiny: Company,
    clock: ManualClock,
    status: int,
) -> None:
    created = await create(client, headers, "https://sync.test/ok")
    tiny.update(416, lastName="Gone")
    tiny.update(383, lastName="Also")
    receiver = Receiver(status)
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
        await registry.hub.hooks(tiny).deliver(http, tiny, clock())
    assert receiver.posts == 1
    one = await client.get(f"{API}/webhook-endpoints/{created['id']}", headers=headers)
    assert one.json()["status"] == "suspended"


async def test_repeated_failures_suspend_and_undelivered_events_stay_listed(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    registry: Registry,
    tiny: Company,
    clock: ManualClock,
) -> None:
    created = await create(client, headers, "https://sync.test/ok")
    tiny.update(416, lastName="Outage")
    receiver = Receiver(503)
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
        for _ in range(10):  # ten minutes of 503
            await registry.hub.hooks(tiny).deliver(http, tiny, clock())
            clock.advance(timedelta(minutes=1).total_seconds())
    assert receiver.posts == registry.hub.suspend_after
    one = await client.get(f"{API}/webhook-endpoints/{created['id']}", headers=headers)
    assert one.json()["status"] == "suspended"
    deliveries = await client.get(f"{API}/webhook-deliveries", headers=headers)
    page = checked(deliveries.json(), "/lucca-api/webhook-deliveries", "get", "200")
    assert [d["status"] for d in page["items"]] == ["failed"]
    scheduled = await client.get(f"{API}/events", params={"status": "failed"}, headers=headers)
    assert [e["id"] for e in scheduled.json()["items"]] == [tiny.emitted[-1]["id"]]


async def test_the_control_api_adds_a_client_and_runs_a_delivery_round(
    client: httpx.AsyncClient, registry: Registry
) -> None:
    answer = await client.put(
        "/_control/acme/oauth", json={"client_id": "acme-sync", "client_secret": "s3cret"}
    )
    assert answer.status_code == 204
    assert registry.hub.issue_token("acme-sync", "s3cret", START) is not None
    assert (await client.post("/_control/acme/deliveries")).json() == {"attempted": 0}
    refused = await client.put("/_control/acme/oauth", json={"client_id": "x"})
    assert refused.status_code == 400


def test_a_long_run_keeps_the_newest_events_only(
    tiny: Company, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(company_module, "MAX_KEPT_EVENTS", 4)
    hooks = registry.hub.hooks(tiny)
    endpoint = hooks.create(tiny, "x", "https://sync.test/ok", ["employee.updated"], "2024-11-01")
    endpoint.status = "active"
    for index in range(9):
        tiny.update(416, lastName=f"N{index}")
        hooks.fan_out(tiny)
    assert len(tiny.emitted) <= 4
    assert len(hooks.deliveries) == 9  # each fanned out before it was let go
