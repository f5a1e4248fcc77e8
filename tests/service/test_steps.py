"""The short jobs of a run: the retry policy every step shares, then each step's effects
(a reconciliation driven step by step, a plan, a department, a poll, a contract's end)."""

from __future__ import annotations

import httpx
import pytest

from app.clients.errors import ElevoAuthError, ElevoRejected, LuccaUnavailable
from app.core import scim
from app.service import blocks, steps
from app.service.batcher import LuccaThrottled
from app.service.context import TenantContext
from app.service.jobs import Job
from app.service.reconcile_sync import RunOptions
from app.service.resources import Resources
from app.service.results import Defer, Done
from app.service.runs import RunRequest, request_run
from app.service.waiting import Reason
from app.store import keys
from app.store.run_model import RunMode, RunState, Trigger, TriggerKind, draft_run
from tests.factories import LUCCA_ID, PROFILE_ID, TENANT
from tests.fakes import RoundTrips, Upstreams, queued, queued_job

API = Trigger(TriggerKind.API)


async def new_run(res: Resources, mode: RunMode = RunMode.FULL) -> str:
    return await res.runs.create(TENANT, draft_run(mode=mode, trigger=API))


async def state_of(res: Resources, run_id: str) -> RunState:
    run = await res.runs.get(TENANT, run_id)
    assert run is not None
    return run.state


# -- the retry policy ---------------------------------------------------------------------


async def test_a_step_done_clears_the_failures_and_keeps_the_full_run_lock(
    res: Resources,
) -> None:
    run_id = await new_run(res)
    await res.full_run_lock.claim(TENANT, run_id)
    await res.redis.expire(keys.active_full_run(TENANT), 5)
    await res.redis.set(keys.run_failures(TENANT, run_id), 3)
    seen: list[RunOptions] = []

    async def step(_: Resources, tenant_ctx: TenantContext, options: RunOptions) -> str:
        seen.append(options)
        return "ok"

    assert await steps.run_step(res, TENANT, run_id, step) == Done("ok")
    assert seen == [RunOptions(run_id=run_id, dry_run=False)]
    assert not await res.redis.exists(keys.run_failures(TENANT, run_id))
    assert await res.redis.ttl(keys.active_full_run(TENANT)) > 60


async def test_a_spent_budget_defers_the_step_and_never_fails_the_run(res: Resources) -> None:
    run_id = await new_run(res)

    async def step(*_: object) -> str:
        raise LuccaThrottled(TENANT, 7.0)

    result = await steps.run_step(res, TENANT, run_id, step)
    assert isinstance(result, Defer)
    assert 7.0 <= result.seconds <= 8.0
    assert not await res.redis.exists(keys.run_failures(TENANT, run_id))
    assert await state_of(res, run_id) is RunState.QUEUED


async def test_a_passing_failure_defers_with_backoff_until_too_many(res: Resources) -> None:
    run_id = await new_run(res)
    await res.full_run_lock.claim(TENANT, run_id)

    async def step(*_: object) -> str:
        raise LuccaUnavailable("Lucca answered 503", status=503)

    first = await steps.run_step(res, TENANT, run_id, step)
    assert isinstance(first, Defer)
    assert 0.5 <= first.seconds <= 1.5
    assert await res.redis.get(keys.run_failures(TENANT, run_id)) == b"1"
    await res.redis.set(keys.run_failures(TENANT, run_id), steps.MAX_STEP_FAILURES)
    assert await steps.run_step(res, TENANT, run_id, step) == Done("failed")
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert report.run.state is RunState.FAILED
    assert report.fields["error"] == "Lucca answered 503"
    assert not await res.redis.exists(keys.active_full_run(TENANT))  # the tenant is free


async def test_a_permanent_failure_fails_the_run_at_once(res: Resources) -> None:
    run_id = await new_run(res)

    async def step(*_: object) -> str:
        raise ElevoRejected("Elevo answered 400", status=400)

    assert await steps.run_step(res, TENANT, run_id, step) == Done("failed")
    assert await state_of(res, run_id) is RunState.FAILED


async def test_a_refused_credential_holds_the_run_until_it_works_again(res: Resources) -> None:
    run_id = await new_run(res)
    await res.full_run_lock.claim(TENANT, run_id)

    async def step(*_: object) -> str:
        raise ElevoAuthError("Elevo refused the token", status=401)

    assert await steps.run_step(res, TENANT, run_id, step) == Done("waiting")
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert report.run.state is RunState.HELD
    assert report.fields["waiting"].startswith("waiting: Elevo refuses the tenant's token")
    assert not await res.redis.exists(keys.active_full_run(TENANT))  # the tenant is free
    assert (await res.records.notes(TENANT))["elevo_token_error"]
    await blocks.credential_works(res, TENANT, Reason.ELEVO_TOKEN)  # e.g. the probe's success
    restarted = [r for r in await res.runs.recent(TENANT) if r.run.id != run_id]
    assert [(r.run.mode, str(r.run.trigger)) for r in restarted] == [(RunMode.FULL, "unblocked")]


async def test_a_crashing_step_fails_the_run_and_frees_the_tenant(res: Resources) -> None:
    run_id = await new_run(res)
    await res.full_run_lock.claim(TENANT, run_id)

    async def step(*_: object) -> str:
        raise KeyError("a bug")

    assert await steps.run_step(res, TENANT, run_id, step) == Done("failed")
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert report.fields["error"] == "internal error: KeyError"
    assert not await res.redis.exists(keys.active_full_run(TENANT))


@pytest.mark.parametrize(("tenant", "known_run"), [("ghost", True), (TENANT, False)])
async def test_a_step_of_an_unknown_tenant_or_run_does_nothing(
    res: Resources, tenant: str, known_run: bool
) -> None:
    run_id = await new_run(res) if known_run else "no-such-run"

    async def step(*_: object) -> str:
        raise AssertionError("not run")

    assert await steps.run_step(res, tenant, run_id, step) == Done("unknown tenant or run")


async def test_an_elevo_listing_that_times_out_is_asked_again_in_smaller_pages(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.elevo.add(id="p-1", externalId="1", userName="one@acme.example")

    def no_answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    run_id = await new_run(res)
    counts = []
    for _ in range(5):
        upstreams.elevo.script("GET", no_answer)
        assert isinstance(await steps.reconcile_snapshot_step(res, TENANT, run_id), Defer)
        counts.append(int(upstreams.elevo.requests[-1].url.params["count"]))
    assert counts == [500, 250, 125, 62, 62]  # an Elevo too slow for 500 still serves the run
    assert await steps.reconcile_snapshot_step(res, TENANT, run_id) == Done("ok")
    assert upstreams.elevo.requests[-1].url.params["count"] == "62"
    assert await state_of(res, run_id) is RunState.RUNNING


# -- the steps ----------------------------------------------------------------------------


async def test_a_full_reconciliation_step_by_step(res: Resources, upstreams: Upstreams) -> None:
    upstreams.lucca.add(manager=None)  # 416: new
    upstreams.lucca.add(id=417, mail="bob@acme.example", manager={"id": int(LUCCA_ID)})
    upstreams.elevo.add(id="p-gone", externalId="9", userName="gone@acme.example")
    run_id = await request_run(res, TENANT, RunRequest(RunMode.FULL), operator="admin")
    snapshot_job = keys.step_job_id(Job.RECONCILE_SNAPSHOT.value, TENANT, run_id, 1)
    assert snapshot_job in await queued(res)

    assert await steps.reconcile_snapshot_step(res, TENANT, run_id) == Done("ok")
    assert await state_of(res, run_id) is RunState.RUNNING
    page_job = keys.step_job_id(Job.RECONCILE_PAGE.value, TENANT, run_id, 0)
    assert await queued_job(res, page_job) == (Job.RECONCILE_PAGE.value, (TENANT, run_id, 0))

    assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")
    finish_job = keys.step_job_id(Job.RECONCILE_FINISH.value, TENANT, run_id, 0)
    assert finish_job in await queued(res)

    assert await steps.reconcile_finish_step(res, TENANT, run_id) == Done("done")
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert report.run.state is RunState.DONE
    assert report.counts == {"create": 2, "suspend": 1}
    bob = next(b for b in upstreams.elevo.bodies("POST") if b["externalId"] == "417")
    camille = upstreams.elevo.profiles[bob[scim.ENTERPRISE]["manager"]["value"]]
    assert camille["externalId"] == LUCCA_ID  # managers first within a page
    assert upstreams.elevo.profiles["p-gone"]["active"] is False
    assert not await res.redis.exists(keys.active_full_run(TENANT))
    assert (await res.records.notes(TENANT))["last_full_run"]


async def test_a_planned_user_list_writes_nothing(res: Resources, upstreams: Upstreams) -> None:
    upstreams.lucca.add(manager=None, jobTitle="CTO")
    upstreams.elevo.add(enterprise={"manager": None})
    run_id = await request_run(
        res, TENANT, RunRequest.of_users([LUCCA_ID], dry_run=True), operator="admin"
    )
    assert await steps.plan_users(res, TENANT, run_id, [LUCCA_ID]) == Done("planned")
    assert upstreams.elevo.writes() == []
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert report.run.state is RunState.DONE  # one user expected, one planned
    assert report.plan is not None
    [entry] = report.plan
    assert (entry["action"], entry["diff"]) == (
        "update",
        {"title": {"old": "Développeuse", "new": "CTO"}},
    )
    assert PROFILE_ID in upstreams.elevo.profiles


async def test_a_renamed_department_queues_a_sync_of_each_member(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add()
    upstreams.lucca.add(id=417, mail="bob@acme.example")
    upstreams.lucca.add(id=418, mail="eve@acme.example", department={"id": 8, "name": "Sales"})
    run_id = await new_run(res, RunMode.DEPARTMENT)
    assert await steps.sync_department(res, TENANT, "7", run_id) == Done("2 members")
    assert [r.url.params["departmentId"] for r in upstreams.lucca.requests] == ["7"]
    assert set(await queued(res)) == {
        keys.sync_job_id(TENANT, LUCCA_ID, 1),
        keys.sync_job_id(TENANT, "417", 1),
    }
    _, args = await queued_job(res, keys.sync_job_id(TENANT, "417", 1))
    assert args == (TENANT, "417", 1, run_id)
    run = await res.runs.get(TENANT, run_id)
    assert run is not None
    assert (run.state, run.expected) == (RunState.RUNNING, 2)


async def test_an_empty_department_ends_its_run(res: Resources, upstreams: Upstreams) -> None:
    run_id = await new_run(res, RunMode.DEPARTMENT)
    assert await steps.sync_department(res, TENANT, "99", run_id) == Done("0 members")
    assert await queued(res) == {}
    assert await state_of(res, run_id) is RunState.DONE


async def test_a_poll_queues_what_changed_and_moves_the_watermark(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add()
    run_id = await new_run(res, RunMode.CHANGES)
    assert await steps.poll_changes_step(res, TENANT, run_id) == Done("1 changed")
    assert "modifiedAt" in upstreams.lucca.requests[0].url.params
    assert set(await queued(res)) == {keys.sync_job_id(TENANT, LUCCA_ID, 1)}
    assert await res.redis.exists(keys.watermark(TENANT))


async def test_a_dry_poll_plans_what_changed_and_moves_nothing(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add()
    run_id = await res.runs.create(
        TENANT, draft_run(mode=RunMode.CHANGES, trigger=API, dry_run=True)
    )
    assert await steps.poll_changes_step(res, TENANT, run_id) == Done("1 changed")
    [job_id] = await queued(res)
    function, args = await queued_job(res, job_id)
    assert (function, args) == (Job.PLAN_USERS.value, (TENANT, run_id, [LUCCA_ID]))
    assert not await res.redis.exists(keys.watermark(TENANT))
    assert "last_poll" not in await res.records.notes(TENANT)
    assert await steps.plan_users(res, TENANT, run_id, [LUCCA_ID]) == Done("planned")
    assert upstreams.elevo.writes() == []
    assert await state_of(res, run_id) is RunState.DONE


async def test_a_contract_end_due_queues_a_sync(res: Resources) -> None:
    assert await steps.sync_user_due(res, TENANT, LUCCA_ID) == "queued"
    assert set(await queued(res)) == {keys.sync_job_id(TENANT, LUCCA_ID, 1)}


async def second_run_page_round_trips(
    res: Resources, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, int]:
    """Two full runs of the tenant's one page; the second run, and the Redis round trips of
    its page step."""
    round_trips = RoundTrips()
    for _ in range(2):
        run_id = await request_run(res, TENANT, RunRequest(RunMode.FULL), operator="admin")
        assert await steps.reconcile_snapshot_step(res, TENANT, run_id) == Done("ok")
        with round_trips.counting(monkeypatch):
            assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")
        assert await steps.reconcile_finish_step(res, TENANT, run_id) == Done("done")
    return run_id, round_trips.sent


async def test_an_unchanged_page_is_counted_in_a_few_round_trips_and_recorded_nowhere(
    res: Resources, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sync-rules.md: `unchanged` is counted per run, not recorded per employee; a page's
    records go in one pipeline, whatever its size (issue 14, point 3)."""
    upstreams.lucca.add(manager=None)
    for n in range(1, 30):
        upstreams.lucca.add(id=int(LUCCA_ID) + n, mail=f"e{n}@acme.example", manager=None)
    run_id, sent = await second_run_page_round_trips(res, monkeypatch)
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert report.counts == {"unchanged": 30}
    assert sent < 30
    created = await res.records.history(TENANT, LUCCA_ID)
    assert [entry["action"] for entry in created] == ["create"]


async def test_reports_of_managers_without_a_profile_cost_the_page_no_round_trip_each(
    res: Resources, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reports of a manager who left (in the page, no profile) wait for its profile, and
    reports of a manager Lucca does not list are the run's follow-ups: either way the page
    asks Redis nothing per report (the id map is read once for the page's managers)."""
    boss, unknown = int(LUCCA_ID) + 100, int(LUCCA_ID) + 200
    upstreams.lucca.add(id=boss, mail="boss@acme.example", manager=None, dtContractEnd="2024-12-31")
    for n in range(30):
        manager = {"id": boss if n % 2 else unknown}
        upstreams.lucca.add(id=int(LUCCA_ID) + n, mail=f"e{n}@acme.example", manager=manager)
    run_id, sent = await second_run_page_round_trips(res, monkeypatch)
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert report.counts == {"unchanged": 30, "skipped": 1}
    assert sent < 30
    waiting = await res.redis.smembers(keys.awaiting_manager(TENANT, str(boss)))
    assert len(waiting) == 15
    assert not await res.redis.exists(keys.awaiting_manager(TENANT, str(unknown)))
