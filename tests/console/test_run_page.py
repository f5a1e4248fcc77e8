"""The run page over ASGI: a page of 100 rows at a time, filters, search and downloads."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from arq.connections import ArqRedis

from app.main import create_app
from app.service.resources import Resources
from app.store.run_model import RunMode, Trigger, TriggerKind, draft_run
from tests.asgi import asgi_client
from tests.conftest import TEST_ADMIN_TOKEN, make_settings
from tests.console.conftest import SESSION_KEY
from tests.factories import make_tenant_config

USERS = 250


@pytest.fixture
async def signed_in(redis: ArqRedis) -> AsyncIterator[tuple[httpx.AsyncClient, Resources, str]]:
    settings = make_settings(SESSION_KEY=SESSION_KEY)
    res = await Resources.create(settings)
    config = make_tenant_config()
    await res.tenants.put(config)
    async with asgi_client(create_app(settings, resources=res)) as client:
        await client.post("/console/sign-in", data={"token": TEST_ADMIN_TOKEN})
        yield client, res, config.tenant
    await res.aclose()


async def _dry_run(res: Resources, tenant: str) -> str:
    new = draft_run(mode=RunMode.FULL, trigger=Trigger(TriggerKind.API), dry_run=True)
    run_id = await res.runs.create(tenant, new)
    for n in range(1, USERS + 1):
        action = "update" if n % 5 == 0 else "unchanged"
        diff = {"title": {"old": "Engineer", "new": "=HYPERLINK(1)"}} if n == 5 else {}
        entry = {"user": str(n), "action": action, "reason": f"reason {n}", "diff": diff}
        await res.runs.count(tenant, run_id, str(n), action, entry)
    return run_id


async def test_a_plan_comes_a_hundred_rows_at_a_time_filtered_and_searched(
    signed_in: tuple[httpx.AsyncClient, Resources, str],
) -> None:
    client, res, tenant = signed_in
    run_id = await _dry_run(res, tenant)
    url = f"/console/t/{tenant}/runs/{run_id}"

    first = await client.get(url)
    assert first.status_code == 200
    assert (
        first.text.count('class="count unchanged"') + first.text.count('class="count update"')
        == 100 + 2
    )  # the rows, and the two filter links
    assert "Page 1 of 3" in first.text
    last = await client.get(url, params={"page": "3"})
    assert len(re.findall(r"<tr>\s*<td><a href", last.text)) == 50

    updates = await client.get(url, params={"action": "update"})
    assert len(re.findall(r"<tr>\s*<td><a href", updates.text)) == USERS // 5
    found = await client.get(url, params={"q": "reason 125"})
    assert len(re.findall(r"<tr>\s*<td><a href", found.text)) == 1


async def test_downloads_hold_every_row_and_no_spreadsheet_formula(
    signed_in: tuple[httpx.AsyncClient, Resources, str],
) -> None:
    client, res, tenant = signed_in
    run_id = await _dry_run(res, tenant)
    url = f"/console/t/{tenant}/runs/{run_id}"

    as_json = await client.get(url, params={"format": "json"})
    assert len(as_json.json()["rows"]) == USERS
    assert "attachment" in as_json.headers["content-disposition"]
    as_csv = await client.get(url, params={"format": "csv", "action": "update"})
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == USERS // 5
    assert rows[0]["new"] == "'=HYPERLINK(1)"  # quoted: a spreadsheet shows it, runs nothing
    assert rows[0]["old"] == "Engineer"


async def test_an_unknown_run_is_a_404(
    signed_in: tuple[httpx.AsyncClient, Resources, str],
) -> None:
    client, _, tenant = signed_in
    assert (await client.get(f"/console/t/{tenant}/runs/20260101T000000-abcdef")).status_code == 404
    assert (await client.get(f"/console/t/{tenant}/runs/nope")).status_code == 404
    assert (await client.get("/console/t/nobody")).status_code == 404
