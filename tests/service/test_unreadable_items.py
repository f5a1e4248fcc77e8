"""A Lucca item without a usable id names nobody: the tenant's status records it, and it never
breaks the fetch of other employees nor stays in any set (issue 10, point 7)."""

from __future__ import annotations

import httpx
import orjson

from app.service import steps
from app.service.listing import UNATTRIBUTED
from app.service.resources import Resources
from app.service.results import Done
from app.service.runs import RunRequest, request_run, status_document
from app.service.sync_user import sync_user
from app.store import keys
from app.store.budget import Priority
from app.store.run_model import RunState
from tests.factories import LUCCA_ID, TENANT, make_lucca_item
from tests.fakes import Upstreams, queued


def lucca_with_a_nameless_item(upstreams: Upstreams) -> None:
    upstreams.lucca.add(manager=None)
    upstreams.lucca.add(id=417, mail="bob@acme.example", manager=None)
    upstreams.lucca.add(id=None, mail="ghost@acme.example")  # listed, but names nobody


async def drive_full(res: Resources) -> str:
    run_id = await request_run(res, TENANT, RunRequest.of_mode("full"), operator="admin")
    assert await steps.reconcile_snapshot_step(res, TENANT, run_id) == Done("ok")
    assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")
    assert await steps.reconcile_finish_step(res, TENANT, run_id) == Done("done")
    return run_id


async def test_a_full_run_records_the_item_in_the_status_and_syncs_everyone_else(
    res: Resources, upstreams: Upstreams
) -> None:
    lucca_with_a_nameless_item(upstreams)
    run_id = await drive_full(res)
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert report.counts == {"create": 2}
    assert report.fields["lucca_unreadable"] == "1"
    unreadable = (await status_document(res, TENANT))["lucca_unreadable"]
    assert unreadable["count"] == 1
    assert unreadable["run"] == run_id
    assert any("no valid id" in reason for reason in unreadable["reasons"])
    assert await res.records.user_errors(TENANT) == {}
    stray = [key async for key in res.redis.scan_iter(match=f"*{TENANT}*#*")]
    assert stray == []

    del upstreams.lucca.items["None"]  # fixed in Lucca: the next full run clears the note
    await drive_full(res)
    assert (await status_document(res, TENANT))["lucca_unreadable"] is None


async def test_a_poll_queues_only_users_and_records_the_item(
    res: Resources, upstreams: Upstreams
) -> None:
    lucca_with_a_nameless_item(upstreams)
    run_id = await request_run(res, TENANT, RunRequest.of_mode("changes"), operator="admin")
    assert await steps.poll_changes_step(res, TENANT, run_id) == Done("2 changed")
    sync_jobs = {job for job in await queued(res) if job.startswith("sync:")}
    assert sync_jobs == {keys.sync_job_id(TENANT, uid, 1) for uid in (LUCCA_ID, "417")}
    run = await res.runs.get(TENANT, run_id)
    assert run is not None
    assert (run.state, run.expected) == (RunState.RUNNING, 2)
    assert (await status_document(res, TENANT))["lucca_unreadable"]["count"] == 1


async def test_a_position_is_never_fetched_and_leaves_the_wanted_set(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    tenant_ctx = await res.contexts.get(TENANT)
    assert tenant_ctx is not None
    # An older version left a position among the users waiting for the budget.
    await res.redis.zadd(keys.lucca_wanted(TENANT), {"#2": 0})
    lonely = await res.batcher.fetch(TENANT, tenant_ctx.lucca, 100, "#3", priority=Priority.LIVE)
    assert lonely.invalid == {"#3": "not a Lucca user id"}
    batch = await res.batcher.fetch(TENANT, tenant_ctx.lucca, 100, LUCCA_ID, priority=Priority.LIVE)
    assert set(batch.users) == {LUCCA_ID}
    assert [r.url.params["id"] for r in upstreams.lucca.requests] == [LUCCA_ID]
    assert await res.redis.zcard(keys.lucca_wanted(TENANT)) == 0


async def test_a_queued_sync_of_a_position_ends_its_run_and_records_nobody(
    res: Resources, upstreams: Upstreams
) -> None:
    run_id = await request_run(res, TENANT, RunRequest.of_users(["1"]), operator="admin")
    assert await sync_user(res, TENANT, "#1", 1, run_id) == Done("not a user id")
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert report.run.state is RunState.DONE
    assert await res.records.history(TENANT, "#1") == []
    assert upstreams.lucca.requests == []


async def test_user_lists_count_each_user_once_so_the_run_ends(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    request = RunRequest.of_users([LUCCA_ID, LUCCA_ID], dry_run=True)
    run_id = await request_run(res, TENANT, request, operator="admin")
    assert await steps.plan_users(res, TENANT, run_id, [LUCCA_ID, LUCCA_ID]) == Done("planned")
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert (report.run.state, report.run.expected, report.processed) == (RunState.DONE, 1, 1)


async def test_a_fetch_answered_with_a_nameless_item_takes_nobody_for_gone(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    nameless = make_lucca_item(id="n/a", mail="bob@acme.example")
    upstreams.lucca.script("GET", lambda request: lucca_answer([nameless]))
    tenant_ctx = await res.contexts.get(TENANT)
    assert tenant_ctx is not None
    batch = await res.batcher.fetch(TENANT, tenant_ctx.lucca, 100, "417", priority=Priority.LIVE)
    assert batch.invalid["417"] == UNATTRIBUTED
    assert "417" not in batch.users


def lucca_answer(items: list[dict[str, object]]) -> httpx.Response:
    return httpx.Response(200, content=orjson.dumps({"data": {"items": items}}))
