"""The console's read pages over ASGI: trouble first on the overview, webhook syncs grouped
by hour, a held run's review, an employee's timeline."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from arq.connections import ArqRedis

from app.main import create_app
from app.service.resources import Resources
from app.store.run_model import RunMode, RunState, Trigger, TriggerKind, draft_run
from tests.asgi import asgi_client
from tests.conftest import TEST_ADMIN_TOKEN, make_settings
from tests.console.conftest import SESSION_KEY
from tests.factories import make_tenant_config


@pytest.fixture
async def console(redis: ArqRedis) -> AsyncIterator[tuple[httpx.AsyncClient, Resources]]:
    settings = make_settings(SESSION_KEY=SESSION_KEY)
    res = await Resources.create(settings)
    async with asgi_client(create_app(settings, resources=res)) as client:
        await client.post("/console/sign-in", data={"token": TEST_ADMIN_TOKEN})
        yield client, res
    await res.aclose()


async def test_tenants_in_trouble_come_first(
    console: tuple[httpx.AsyncClient, Resources],
) -> None:
    client, res = console
    for name in ("alpha", "beta", "gamma"):
        await res.tenants.put(make_tenant_config(tenant=name))
    await res.records.note("gamma", lucca_key_error="401 from Lucca")
    page = (await client.get("/console/")).text
    assert page.index("/console/t/gamma") < page.index("/console/t/alpha")
    assert "Lucca refused the API key" in page
    assert "401 from Lucca" not in page  # Lucca's words show on the tenant's own page
    assert "401 from Lucca" in (await client.get("/console/t/gamma")).text


async def test_webhook_syncs_are_added_up_per_hour(
    console: tuple[httpx.AsyncClient, Resources],
) -> None:
    client, res = console
    await res.tenants.put(make_tenant_config())
    for user in ("1", "2", "3"):
        new = draft_run(mode=RunMode.USERS, trigger=Trigger.webhook("employee.updated"), expected=1)
        run_id = await res.runs.create("acme", new)
        await res.runs.count("acme", run_id, user, "update")
    full = await res.runs.create(
        "acme", draft_run(mode=RunMode.FULL, trigger=Trigger(TriggerKind.API))
    )
    page = (await client.get("/console/t/acme")).text
    assert "3 syncs" in page
    assert re.search(r"Webhook → Elevo \(median\)</dt><dd>\d+ ms", page)
    assert "update 3" in page
    assert f"/console/t/acme/runs/{full}" in page


async def test_a_held_run_lists_its_people_and_a_run_not_held_has_no_review(
    console: tuple[httpx.AsyncClient, Resources],
) -> None:
    client, res = console
    await res.tenants.put(make_tenant_config())
    held = await res.runs.create(
        "acme", draft_run(mode=RunMode.FULL, trigger=Trigger(TriggerKind.NIGHTLY))
    )
    await res.runs.set_state("acme", held, RunState.HELD, held=["7", "8"])
    await res.records.note("acme", held_run=held, held_users=orjson.dumps(["7", "8"]).decode())
    seen = {"action": "unchanged", "reason": "", "at": "2026-11-30T02:00:00Z"}
    await res.records.add("acme", "7", seen, failing=False)
    gone = {"action": "held", "reason": "not in Lucca any more", "at": "2026-12-01T02:00:00Z"}
    await res.records.add("acme", "7", gone, failing=False)
    page = await client.get(f"/console/t/acme/held/{held}")
    assert page.status_code == 200
    assert "Suspend these 2" in page.text
    # Last seen in Lucca: 7's newest decision that read them active; 8 has no history.
    assert "<td>2026-11-30 02:00:00</td><td>2026-12-01 02:00:00</td>" in page.text
    assert "<td>—</td><td>—</td></tr>" in page.text
    done = await res.runs.create(
        "acme", draft_run(mode=RunMode.FULL, trigger=Trigger(TriggerKind.API))
    )
    assert (await client.get(f"/console/t/acme/held/{done}")).status_code == 404
    overview = (await client.get("/console/")).text
    assert "Held run · 2 to review" in overview


async def test_an_employee_page_shows_the_history_newest_first(
    console: tuple[httpx.AsyncClient, Resources],
) -> None:
    client, res = console
    await res.tenants.put(make_tenant_config())
    await res.records.add(
        "acme",
        "42",
        {"action": "create", "reason": "new in Lucca", "at": "2026-01-01T00:00:00Z"},
        failing=False,
    )
    await res.records.add(
        "acme",
        "42",
        {"action": "suspend", "reason": "contract ended", "at": "2026-02-01T00:00:00Z"},
        failing=False,
    )
    page = (await client.get("/console/t/acme/employees/0042")).text
    assert page.index("contract ended") < page.index("new in Lucca")
    assert (await client.get("/console/t/acme/employees/x")).status_code == 404


async def test_dismissing_a_held_run_records_who_and_clears_the_banner(
    console: tuple[httpx.AsyncClient, Resources],
) -> None:
    client, res = console
    await res.tenants.put(make_tenant_config())
    held = await res.runs.create(
        "acme", draft_run(mode=RunMode.FULL, trigger=Trigger(TriggerKind.NIGHTLY))
    )
    await res.runs.set_state("acme", held, RunState.HELD, held=["7"])
    await res.records.note("acme", held_run=held, held_users=orjson.dumps(["7"]).decode())
    review = (await client.get(f"/console/t/acme/held/{held}")).text
    csrf = review.split('name="csrf" value="')[1].split('"')[0]
    answer = await client.post(
        f"/console/t/acme/held/{held}", data={"csrf": csrf, "decision": "dismiss"}
    )
    assert answer.status_code == 303
    after = " ".join((await client.get(f"/console/t/acme/held/{held}")).text.split())
    assert "Dismissed by <strong>admin</strong>" in after
    assert "Suspend these" not in after
    assert "Suspensions held" not in (await client.get("/console/t/acme")).text
    again = await client.post(
        f"/console/t/acme/held/{held}", data={"csrf": csrf, "decision": "dismiss"}
    )
    assert again.status_code == 409  # resolved once
