"""The webhook endpoint use cases (issue 15) over fakes: the replay recognises duplicates and
leaves no mark when it cannot queue; every call to Lucca's API takes from the tenant's budget;
a spent budget defers the job; old endpoints the customer deleted take their secrets along."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from app.core.tenant import LuccaOAuth
from app.secret import Secret
from app.service import replay as replay_module
from app.service.lucca_webhook import watch, webhook_job
from app.service.notices import accept_notice
from app.service.replay import replay_events, replay_start
from app.service.resources import Resources
from app.service.results import Defer
from app.store import keys, lucca_endpoint
from app.store.budget import LuccaBudget, Priority
from app.store.lucca_endpoint import EndpointState, OldEndpoint
from tests.conftest import Handler
from tests.factories import TENANT
from tests.fakes import queued, queued_job

OAUTH = LuccaOAuth("acme-sync", Secret("acme-oauth-secret"))


def event(ident: str, topic: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": ident, "type": "event", "topic": topic, "data": data}


def employee_ref(user_id: str) -> dict[str, Any]:
    return {"employee": {"id": user_id, "type": "employee"}}


EVENTS = [
    event("e1", "employee.updated", {"id": "416", "type": "employee"}),
    event("e2", "job-position.updated", employee_ref("416")),
    event("e3", "employment.updated", employee_ref("12")),
    event("e4", "department.updated", {"id": "7", "type": "department", "name": "R&D"}),
    event("e5", "leave.created", employee_ref("416")),
    event("e6", "ping", {"id": "1", "type": "webhook-endpoint"}),
]


async def test_a_replay_queues_each_employee_once_and_recognises_duplicates(
    res: Resources,
) -> None:
    await accept_notice(res, TENANT, EVENTS[0], orjson.dumps(EVENTS[0]))  # before the outage
    first = await replay_events(res, TENANT, EVENTS)
    assert (first.events, first.duplicates) == (3, 1)
    assert sorted(set(first.user_ids)) == ["12", "416"]
    assert first.departments == {"7"}
    jobs = await queued(res)
    # 416 once for the notice received before, once for the replay (both its events); 12 once.
    assert sorted(j.rsplit(":", 1)[0] for j in jobs if j.startswith("sync:")) == [
        f"sync:{TENANT}:12",
        f"sync:{TENANT}:416",
        f"sync:{TENANT}:416",
    ]
    functions = [(await queued_job(res, job_id))[0] for job_id in jobs]
    assert functions.count("sync_department") == 1
    again = await replay_events(res, TENANT, EVENTS)
    assert (again.events, again.duplicates) == (0, 4)
    assert await queued(res) == jobs  # nothing more queued


async def test_a_replay_that_cannot_queue_leaves_no_mark(
    res: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise ConnectionError("redis went away")

    monkeypatch.setattr(replay_module, "enqueue_user_syncs", broken)
    with pytest.raises(ConnectionError):
        await replay_events(res, TENANT, EVENTS[:3])
    assert not await res.redis.exists(*(keys.event(TENANT, e["id"]) for e in EVENTS[:3]))


class CountingBudget(LuccaBudget):
    def __init__(self, res: Resources, wait: float = 0.0) -> None:
        super().__init__(res.redis, override=100000)
        self.taken = 0
        self.wait = wait

    async def take(
        self, host: str, per_window: int, *, priority: Priority, tenant: str = ""
    ) -> float:
        self.taken += 1
        return self.wait


def lucca_api(endpoints: dict[str, str | None]) -> Handler:
    """Lucca's token route and `GET /webhook-endpoints/{id}`: id -> status (None: deleted)."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/connect/token":
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 1800})
        ident = request.url.path.rsplit("/", 1)[-1]
        status = endpoints.get(ident)
        if status is None:
            return httpx.Response(404, json={"title": "Not Found", "status": 404})
        document = {
            "id": ident,
            "webhookUrl": "https://sync.test/x",
            "topics": [],
            "status": status,
        }
        return httpx.Response(200, json=document)

    return answer


async def managed(
    res: Resources, http_for: Callable[[Handler], httpx.AsyncClient], handler: Handler
) -> Resources:
    settings = replace(
        res.settings,
        public_url="https://sync.test",
        lucca_token_url="http://127.0.0.1/connect/token",
    )
    config = await res.tenants.get(TENANT)
    assert config is not None
    secrets = (Secret("new-endpoint-secret"), Secret("old-endpoint-secret"))
    await res.tenants.put(replace(config, lucca_oauth=OAUTH, webhook_secrets=secrets))
    return replace(res, settings=settings, http=http_for(handler))


async def test_a_watch_takes_from_the_budget_and_drops_deleted_endpoints_secrets(
    res: Resources, http_for: Callable[[Handler], httpx.AsyncClient]
) -> None:
    res = await managed(res, http_for, lucca_api({"2": "active"}))
    budget = CountingBudget(res)
    res = replace(res, budget=budget)
    old = OldEndpoint(id="1", suspended_at="x", missing_since="x", delete_at="https://x")
    await lucca_endpoint.save(
        res.redis, TENANT, EndpointState(endpoint_id="2", status="active", old_endpoints=[old])
    )
    assert await watch(res, TENANT) == "active"
    assert budget.taken == 2  # the current endpoint, the old one: not the token request
    config = await res.tenants.get(TENANT)
    assert config is not None
    assert config.webhook_secrets == (Secret("new-endpoint-secret"),)
    state = await lucca_endpoint.load(res.redis, TENANT)
    assert state is not None
    assert state.old_endpoints == []


async def test_a_spent_budget_defers_the_watch(
    res: Resources, http_for: Callable[[Handler], httpx.AsyncClient]
) -> None:
    res = await managed(res, http_for, lucca_api({"2": "active"}))
    res = replace(res, budget=CountingBudget(res, wait=30.0))
    await lucca_endpoint.save(res.redis, TENANT, EndpointState(endpoint_id="2", status="active"))
    assert await webhook_job(res, TENANT, "watch") == Defer(30.0)


def test_a_replay_starts_ten_minutes_before_the_checkpoint_or_a_day_back_without_it() -> None:
    now = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    lost = EndpointState(missing_since=None)
    assert replay_start(lost, now) == now - timedelta(hours=24)
    seen = EndpointState(missing_since="2025-03-14T08:00:00Z")
    assert replay_start(seen, now) == datetime(2025, 3, 14, 7, 50, tzinfo=UTC)
