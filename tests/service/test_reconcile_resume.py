"""Work of several Lucca requests resumes, never restarts (issue 11, point 3), and one
employee's passing Elevo error stays that employee's (issue 11, point 5).

Each test spends the budget (or kills the step) halfway, runs the step again as ARQ would,
and reads the fake Lucca's request log: no page, and no user by id, is asked twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx
import pytest

from app.clients.errors import LuccaUnavailable
from app.core.tenant import GuardConfig
from app.service import reconcile, reconcile_sync, steps
from app.service.jobs import Job
from app.service.resources import Resources
from app.service.results import Defer, Done, JobResult
from app.service.runs import RunRequest, request_run
from app.store import keys
from app.store.budget import Priority
from app.store.run_model import RunMode, RunState, Trigger, TriggerKind, draft_run
from tests.factories import TENANT, make_tenant_config
from tests.fakes import Upstreams, queued

API = Trigger(TriggerKind.API)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconcile_sync, "EMPLOYEE_RETRY_SECONDS", 0.01)


def spend_budget_at(res: Resources, monkeypatch: pytest.MonkeyPatch, *calls: int) -> list[int]:
    """The budget refuses its `calls`-th takes (1-based, counted across every try): a
    stand-in for a tenant whose budget runs dry. Returns the running count."""
    taken = [0]
    real_take = res.budget.take

    async def take(host: str, per_window: int, *, priority: Priority, tenant: str = "") -> float:
        taken[0] += 1
        if taken[0] in calls:
            return 30.0
        return await real_take(host, per_window, priority=priority, tenant=tenant)

    monkeypatch.setattr(res.budget, "take", take)
    return taken


def add_people(upstreams: Upstreams, count: int, first: int = 1000, **item: object) -> list[str]:
    for user_id in range(first, first + count):
        upstreams.lucca.add(
            id=user_id, mail=f"u{user_id}@acme.example", login=f"u{user_id}", manager=None, **item
        )
    return [str(user_id) for user_id in range(first, first + count)]


def listing_offsets(upstreams: Upstreams) -> list[str]:
    return [r.url.params["paging"] for r in upstreams.lucca.requests if "paging" in r.url.params]


def ids_asked(upstreams: Upstreams) -> Counter[str]:
    asked: Counter[str] = Counter()
    for request in upstreams.lucca.requests:
        if "id" in request.url.params:
            asked.update(request.url.params["id"].split(","))
    return asked


async def new_run(res: Resources, mode: RunMode, *, dry_run: bool = False) -> str:
    return await res.runs.create(TENANT, draft_run(mode=mode, trigger=API, dry_run=dry_run))


async def run_until_done(
    step: Callable[[], Awaitable[JobResult]], tries: int = 5
) -> list[JobResult]:
    """Run a step again while it defers, as ARQ's Retry would; the results in order."""
    results = []
    for _ in range(tries):
        result = await step()
        results.append(result)
        if not isinstance(result, Defer):
            break
    return results


async def start_full_run(res: Resources) -> str:
    """A full run with its Elevo snapshot taken: its pages come next."""
    run_id = await request_run(res, TENANT, RunRequest(RunMode.FULL), operator="admin")
    tenant_ctx = await res.contexts.get(TENANT)
    assert tenant_ctx is not None
    start: int | None = 1
    while start is not None:
        start = await reconcile.snapshot_page(res, tenant_ctx, run_id, start)
    return run_id


# -- a department's members, a change poll --------------------------------------------------


async def test_a_department_listing_resumes_at_its_cursor(
    res: Resources, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = add_people(upstreams, 2391, department={"id": 7, "name": "R&D"})
    run_id = await new_run(res, RunMode.DEPARTMENT)
    spend_budget_at(res, monkeypatch, 2, 4)  # before page 2, then once more before page 3
    results = await run_until_done(lambda: steps.sync_department(res, TENANT, "7", run_id))
    assert [type(r) for r in results] == [Defer, Defer, Done]
    assert results[-1] == Done("2391 members")
    assert listing_offsets(upstreams) == ["0,1000", "1000,1000", "2000,1000"]  # each once
    run = await res.runs.report(TENANT, run_id)
    assert run is not None
    assert (run.run.expected, run.document()["cursor"]) == (2391, -1)
    assert len(await queued(res)) == len(members)


async def test_a_change_poll_resumes_at_its_cursor_with_its_first_start(
    res: Resources, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_people(upstreams, 1500)
    run_id = await new_run(res, RunMode.CHANGES)
    spend_budget_at(res, monkeypatch, 2)
    results = await run_until_done(lambda: steps.poll_changes_step(res, TENANT, run_id))
    assert results[-1] == Done("1500 changed")
    assert listing_offsets(upstreams) == ["0,1000", "1000,1000"]
    since = {r.url.params["modifiedAt"] for r in upstreams.lucca.requests}
    assert len(since) == 1  # the resumed page asks what the first one asked
    assert len(await queued(res)) == 1500


# -- a dry run over a list of users ---------------------------------------------------------


async def test_a_plan_resumes_without_planning_or_reading_anyone_twice(
    res: Resources, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = add_people(upstreams, 750)
    run_id = await request_run(
        res, TENANT, RunRequest.of_users(users, dry_run=True), operator="admin"
    )
    spend_budget_at(res, monkeypatch, 2)  # spent before the second 500
    results = await run_until_done(lambda: steps.plan_users(res, TENANT, run_id, users))
    assert [type(r) for r in results] == [Defer, Done]
    asked = ids_asked(upstreams)
    assert set(asked) == set(users)
    assert max(asked.values()) == 1
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert (report.run.state, report.processed, report.counts) == (
        RunState.DONE,
        750,
        {"create": 750},
    )
    assert upstreams.elevo.writes() == []


# -- a full run: its pages and its final check ---------------------------------------------


def snapshot_asks(requests: list[httpx.Request]) -> list[tuple[int, int]]:
    """(startIndex, count) of these listing requests to Elevo, in index order."""
    asked = [r.url.params for r in requests if "startIndex" in r.url.params]
    return sorted((int(p["startIndex"]), int(p["count"])) for p in asked)


async def test_the_snapshot_reads_its_pages_at_once_and_resumes_with_those_it_lacks(
    res: Resources, upstreams: Upstreams
) -> None:
    """A wave of pages is read concurrently (the first alone: it tells the total); a page
    that fails leaves the others stored and counted, and the retry asks only for it, smaller."""
    for n in range(2300):
        upstreams.elevo.add(id=f"p-{n}", externalId=str(5000 + n), userName=f"e{n}@acme.example")
    run_id = await request_run(res, TENANT, RunRequest(RunMode.FULL), operator="admin")

    def third_page_fails(request: httpx.Request) -> httpx.Response:
        if request.url.params["startIndex"] == "1001":
            return httpx.Response(503)
        return upstreams.elevo._list(request)  # the fake's own answer

    for _ in range(5):  # the first page, then the four others of 2,300 at once
        upstreams.elevo.script("GET", third_page_fails)
    assert isinstance(await steps.reconcile_snapshot_step(res, TENANT, run_id), Defer)
    first_try = list(upstreams.elevo.requests)
    assert first_try[0].url.params["startIndex"] == "1"  # alone: it tells the total
    assert snapshot_asks(first_try) == [(1, 500), (501, 500), (1001, 500), (1501, 500), (2001, 500)]

    assert await steps.reconcile_snapshot_step(res, TENANT, run_id) == Done("ok")
    retry = upstreams.elevo.requests[len(first_try) :]
    assert snapshot_asks(retry) == [(1001, 250), (1251, 250)]  # the missing page, in halves
    run = await res.runs.get(TENANT, run_id)
    assert run is not None
    assert run.active_managed == 2300  # each page counted once
    assert await res.redis.hlen(keys.run_part(TENANT, run_id, "elevo")) == 2300
    page_job = keys.step_job_id(Job.RECONCILE_PAGE.value, TENANT, run_id, 0)
    assert page_job in await queued(res)


async def test_a_page_cut_short_reads_lucca_once_and_counts_once(
    res: Resources, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_people(upstreams, 20)
    run_id = await start_full_run(res)
    real_sync_page = reconcile._sync_page
    calls = [0]

    async def killed_once(*args: object, **kwargs: object) -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise asyncio.CancelledError  # the worker stops the job after the page was read
        await real_sync_page(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reconcile, "_sync_page", killed_once)
    with pytest.raises(asyncio.CancelledError):
        await steps.reconcile_page_step(res, TENANT, run_id, 0)
    assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")
    assert listing_offsets(upstreams) == ["0,1000"]
    run = await res.runs.get(TENANT, run_id)
    assert run is not None
    assert run.lucca_users == 20  # counted once
    assert len(upstreams.elevo.bodies("POST")) == 20
    assert not await res.redis.exists(keys.run_part(TENANT, run_id, "pages"))  # page done


@pytest.fixture
def pages_of_ten(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lucca pages of 10 users: several pages without thousands of users."""
    monkeypatch.setattr(reconcile, "PAGE_SIZE", 10)


def one_page_per_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps, "PAGES_SLICE_SECONDS", 0.0)  # a slice does one page at least


async def test_a_page_reads_the_next_one_ahead_under_its_own_budget(
    res: Resources, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch, pages_of_ten: None
) -> None:
    """While a full page syncs, the next is read (a budget taken for it) and kept: the next
    job asks Lucca nothing. A read ahead the budget refuses is left to the next job, which
    waits for the budget itself; no page is read twice."""
    add_people(upstreams, 25)
    run_id = await start_full_run(res)
    one_page_per_job(monkeypatch)
    taken = spend_budget_at(res, monkeypatch, 3)  # page 0, page 10 ahead, then refused
    assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")
    assert listing_offsets(upstreams) == ["0,10", "10,10"]
    assert await steps.reconcile_page_step(res, TENANT, run_id, 10) == Done("ok")
    assert listing_offsets(upstreams) == ["0,10", "10,10"]  # kept: not asked again
    assert taken[0] == 3  # its read ahead of page 20 was refused, and not sent
    assert await steps.reconcile_page_step(res, TENANT, run_id, 20) == Done("ok")
    assert listing_offsets(upstreams) == ["0,10", "10,10", "20,10"]
    assert taken[0] == 4  # one take per page read, none for a page kept
    finish_job = keys.step_job_id(Job.RECONCILE_FINISH.value, TENANT, run_id, 0)
    assert finish_job in await queued(res)
    run = await res.runs.get(TENANT, run_id)
    assert run is not None
    assert run.lucca_users == 25
    assert not await res.redis.exists(keys.run_part(TENANT, run_id, "pages"))


async def test_a_page_job_goes_on_page_after_page_and_resumes_after_the_last_done(
    res: Resources, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch, pages_of_ten: None
) -> None:
    """Within its time slice a page job syncs page after page, each read once (the next one
    read ahead); killed midway, it runs again from the first page not done."""
    add_people(upstreams, 35)
    run_id = await start_full_run(res)
    real_sync_page = reconcile._sync_page
    synced: list[int] = []

    async def killed_at_the_third_page(*args: object, **kwargs: object) -> None:
        batch = args[3]
        first = min(int(uid) for uid in batch.users)  # type: ignore[attr-defined]
        if first == 1020 and 1020 not in synced:
            synced.append(first)
            raise asyncio.CancelledError  # the worker stops the job
        synced.append(first)
        await real_sync_page(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reconcile, "_sync_page", killed_at_the_third_page)
    with pytest.raises(asyncio.CancelledError):
        await steps.reconcile_page_step(res, TENANT, run_id, 0)
    assert synced == [1000, 1010, 1020]
    assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")  # run again
    assert synced == [1000, 1010, 1020, 1020, 1030]  # the pages done are not synced again
    assert listing_offsets(upstreams) == ["0,10", "10,10", "20,10", "30,10"]  # each once
    finish_job = keys.step_job_id(Job.RECONCILE_FINISH.value, TENANT, run_id, 0)
    assert finish_job in await queued(res)
    run = await res.runs.get(TENANT, run_id)
    assert run is not None
    assert run.lucca_users == 35  # each page counted once
    assert len(upstreams.elevo.bodies("POST")) == 35


async def test_a_page_that_fails_keeps_what_it_read_ahead_for_its_retry(
    res: Resources, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch, pages_of_ten: None
) -> None:
    add_people(upstreams, 15)
    run_id = await start_full_run(res)
    real_sync_page = reconcile._sync_page
    calls = [0]

    async def fails_once(*args: object, **kwargs: object) -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise LuccaUnavailable("a passing failure midway")
        await real_sync_page(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reconcile, "_sync_page", fails_once)
    assert isinstance(await steps.reconcile_page_step(res, TENANT, run_id, 0), Defer)
    assert listing_offsets(upstreams) == ["0,10", "10,10"]  # the next page read meanwhile
    assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")
    assert listing_offsets(upstreams) == ["0,10", "10,10"]  # each page once
    assert len(upstreams.elevo.bodies("POST")) == 15


async def test_the_final_check_resumes_where_the_budget_stopped_it(
    res: Resources, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_people(upstreams, 10)  # still in Lucca
    for user_id in range(5000, 5700):  # 700 profiles whose employees Lucca no longer lists
        upstreams.elevo.add(
            id=f"p-{user_id}", externalId=str(user_id), userName=f"g{user_id}@acme.example"
        )
    run_id = await start_full_run(res)
    assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")
    taken = spend_budget_at(res, monkeypatch, 2)  # after the first 500 vanished are checked
    results = await run_until_done(lambda: steps.reconcile_finish_step(res, TENANT, run_id))
    assert [type(r) for r in results] == [Defer, Done]
    assert taken[0] == 3  # 500, refused, then only the 200 left
    asked = ids_asked(upstreams)
    assert len(asked) == 700
    assert max(asked.values()) == 1
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert report.run.state is RunState.HELD  # 700 of 700 active profiles: the guard holds
    assert report.counts.get("held") == 700


async def test_a_long_finish_hands_over_to_its_next_job_chunk_by_chunk(
    res: Resources, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = GuardConfig(max_suspend_ratio=1.0, max_suspend_count=0)  # never holds
    await res.tenants.put(make_tenant_config(guard=guard))
    add_people(upstreams, 10)
    for user_id in range(5000, 5700):
        upstreams.elevo.add(
            id=f"p-{user_id}", externalId=str(user_id), userName=f"g{user_id}@acme.example"
        )
    run_id = await start_full_run(res)
    assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")
    monkeypatch.setattr(steps, "FINISH_SLICE_SECONDS", 0.0)  # one chunk of 500 per job
    results = [await steps.reconcile_finish_step(res, TENANT, run_id, part) for part in range(4)]
    # check 500, check 200, suspend 500, suspend 200
    assert results == [Done("continued")] * 3 + [Done("done")]
    for part in (1, 2, 3):
        assert keys.step_job_id(Job.RECONCILE_FINISH.value, TENANT, run_id, part) in await queued(
            res
        )
    assert max(ids_asked(upstreams).values()) == 1  # the suspensions reuse the check's reads
    suspended = [p for p in upstreams.elevo.profiles.values() if p.get("active") is False]
    assert len(suspended) == 700
    assert len(upstreams.elevo.bodies("PATCH")) == 700  # each once
    assert not await res.redis.exists(keys.active_full_run(TENANT))


async def test_a_held_finish_decides_again_chunk_by_chunk_across_its_jobs(
    res: Resources, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_people(upstreams, 10)
    for user_id in range(5000, 5700):
        upstreams.elevo.add(
            id=f"p-{user_id}", externalId=str(user_id), userName=f"g{user_id}@acme.example"
        )
    run_id = await start_full_run(res)
    assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")
    monkeypatch.setattr(steps, "FINISH_SLICE_SECONDS", 0.0)
    results = [await steps.reconcile_finish_step(res, TENANT, run_id, part) for part in range(4)]
    # check 500, check 200, decide 500 again, decide 200 again and hold
    assert results == [Done("continued")] * 3 + [Done("held")]
    assert max(ids_asked(upstreams).values()) == 1
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert len(report.document()["held"]) == 700
    assert upstreams.elevo.bodies("PATCH") == []  # nobody suspended


# -- one employee's passing Elevo error ------------------------------------------------------


def fail_for(upstreams: Upstreams, external_id: str, times: int) -> list[int]:
    """Elevo answers 503 to the writes of one employee `times` times; the count of failures."""
    failed = [0]
    elevo = upstreams.elevo

    def answer(request: httpx.Request) -> httpx.Response:
        body = request.content.decode()
        if f'"{external_id}"' in body and failed[0] < times:
            failed[0] += 1
            return httpx.Response(503, json={})
        return FakeAnswer.of(elevo, request)

    for _ in range(100):  # every creation of these tests goes through `answer`
        elevo.script("POST", answer)
    return failed


class FakeAnswer:
    @staticmethod
    def of(elevo: object, request: httpx.Request) -> httpx.Response:
        """The fake's own answer, bypassing its script (already consumed for this request)."""
        return elevo._create(request)  # type: ignore[attr-defined,no-any-return]


async def test_a_passing_elevo_error_is_retried_for_that_employee_only(
    res: Resources, upstreams: Upstreams
) -> None:
    add_people(upstreams, 30)
    failed = fail_for(upstreams, "1007", times=2)
    run_id = await start_full_run(res)
    assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")
    assert failed[0] == 2
    assert listing_offsets(upstreams) == ["0,1000"]  # the page never restarted
    posts = Counter(body["externalId"] for body in upstreams.elevo.bodies("POST"))
    assert posts["1007"] == 3
    assert {n for uid, n in posts.items() if uid != "1007"} == {1}
    assert not await res.redis.exists(keys.run_part(TENANT, run_id, "retry"))


async def test_an_employee_still_failing_is_left_for_the_finish_then_recorded(
    res: Resources, upstreams: Upstreams
) -> None:
    add_people(upstreams, 5)
    failed = fail_for(upstreams, "1002", times=reconcile_sync.EMPLOYEE_TRIES * 2)
    run_id = await start_full_run(res)
    assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")
    assert ids_asked(upstreams) == Counter()
    assert await res.redis.smembers(keys.run_part(TENANT, run_id, "retry")) == {b"1002"}
    assert await steps.reconcile_finish_step(res, TENANT, run_id) == Done("done")
    assert failed[0] == reconcile_sync.EMPLOYEE_TRIES * 2  # the page's tries, the finish's
    assert ids_asked(upstreams) == Counter({"1002": 1})  # read again once, by id
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert report.run.state is RunState.DONE
    assert report.counts == {"create": 4, "error": 1}
    assert "left for the next run after 3 tries" in report.errors["1002"]
