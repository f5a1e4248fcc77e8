"""Jobs stop themselves before ARQ's timeout (which fails a job for good, without a word to its
run): a per-user sync that gets no answer retries, a step fails its run and frees the tenant,
and the watchdog fails a run that made no progress (issue 11, point 4)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.service import steps
from app.service import sync_user as job
from app.service.context import TenantContext, TenantContexts
from app.service.jobs import enqueue_user_syncs
from app.service.reconcile_sync import RunOptions
from app.service.resources import Resources
from app.service.results import Defer, Done, own_deadline
from app.service.watchdog import fail_stalled_runs
from app.store import keys, queue
from app.store.run_model import RunMode, RunState, Trigger, TriggerKind, draft_run
from tests.conftest import make_settings
from tests.factories import LUCCA_ID, TENANT
from tests.fakes import Upstreams

API = Trigger(TriggerKind.API)


def with_timeouts(res: Resources, **env: object) -> Resources:
    return replace(res, settings=make_settings(LUCCA_BUDGET_OVERRIDE=100000, **env))


async def new_run(res: Resources, mode: RunMode = RunMode.FULL) -> str:
    return await res.runs.create(TENANT, draft_run(mode=mode, trigger=API))


async def run_fields(res: Resources, run_id: str) -> dict[str, str]:
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    return dict(report.fields)


def test_a_job_stops_itself_before_arqs_timeout() -> None:
    assert own_deadline(30) == 25
    assert own_deadline(60) == 55
    assert own_deadline(2) == 1.5  # short settings keep a quarter for the recording


# -- a per-user sync ----------------------------------------------------------------------


@pytest.fixture
async def stalling(res: Resources, upstreams: Upstreams) -> AsyncIterator[Resources]:
    """The service with an Elevo that never answers a creation (the others pass)."""

    async def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and "/Users" in request.url.path:
            await asyncio.sleep(30)
        return upstreams(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    contexts = TenantContexts(res.tenants, res.releases, res.settings, http, res.clock)
    yield with_timeouts(replace(res, contexts=contexts), SYNC_JOB_TIMEOUT_SECONDS=0.8)
    await http.aclose()


async def test_a_sync_without_an_answer_retries_before_arq_would_fail_it(
    stalling: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    await enqueue_user_syncs(stalling.redis, TENANT, [LUCCA_ID])
    generation = await queue.latest_generation(stalling.redis, TENANT, LUCCA_ID)
    assert generation is not None
    started = time.monotonic()
    result = await job.sync_user(stalling, TENANT, LUCCA_ID, generation)
    assert time.monotonic() - started < 0.8  # ARQ's timeout never came
    assert isinstance(result, Defer)  # retried, with backoff
    assert await stalling.redis.get(keys.failures(TENANT, LUCCA_ID)) == b"1"
    # The user is free for the retry at once, and the creation's answer is known lost.
    assert not await stalling.redis.exists(keys.busy(TENANT, LUCCA_ID))
    assert await stalling.redis.zscore(keys.unsure_creates(TENANT), LUCCA_ID) is not None


# -- a step of a run ----------------------------------------------------------------------


async def test_a_step_that_times_out_fails_its_run_and_frees_the_tenant(res: Resources) -> None:
    short = with_timeouts(res, STEP_JOB_TIMEOUT_SECONDS=0.8)
    run_id = await new_run(short)
    assert await short.full_run_lock.claim(TENANT, run_id) is None

    async def stuck(_: Resources, tenant_ctx: TenantContext, options: RunOptions) -> str:
        await asyncio.sleep(30)
        return "never"

    started = time.monotonic()
    assert await steps.run_step(short, TENANT, run_id, stuck) == Done("failed")
    assert time.monotonic() - started < 0.8
    fields = await run_fields(short, run_id)
    assert fields["state"] == RunState.FAILED.value
    assert fields["error"] == "a step of the run took longer than 0.6 s"
    assert await short.full_run_lock.holder(TENANT) is None
    # A step of the failed run queued before the failure goes no further.
    assert await steps.run_step(short, TENANT, run_id, stuck) == Done("run failed")


async def test_a_step_done_notes_the_runs_progress(res: Resources) -> None:
    run_id = await new_run(res)

    async def step(_: Resources, tenant_ctx: TenantContext, options: RunOptions) -> str:
        return "ok"

    assert await steps.run_step(res, TENANT, run_id, step) == Done("ok")
    assert "progress_at" in await run_fields(res, run_id)


# -- the watchdog -------------------------------------------------------------------------


def later(res: Resources, seconds: float) -> Resources:
    """The service's clock `seconds` from now."""
    return replace(res, clock=lambda: datetime.now(UTC) + timedelta(seconds=seconds))


async def test_the_watchdog_fails_a_stalled_run_and_frees_the_tenant(res: Resources) -> None:
    stalled = await new_run(res)
    assert await res.full_run_lock.claim(TENANT, stalled) is None
    await res.runs.set_state(TENANT, stalled, RunState.RUNNING)

    assert await fail_stalled_runs(later(res, 599)) == 0  # RUN_STALL_SECONDS: 600
    assert await fail_stalled_runs(later(res, 601)) == 1
    fields = await run_fields(res, stalled)
    assert fields["state"] == RunState.FAILED.value
    assert fields["error"] == "no progress for 600 s"
    assert await res.full_run_lock.holder(TENANT) is None


async def test_progress_and_a_shown_wait_keep_a_run_alive(res: Resources) -> None:
    waiting = await new_run(res)
    await res.runs.set_state(TENANT, waiting, RunState.RUNNING, waiting="the Lucca budget")
    ended = await new_run(res)
    await res.runs.set_state(TENANT, ended, RunState.DONE)
    progressed = await new_run(res, RunMode.USERS)
    await res.runs.count(TENANT, progressed, LUCCA_ID, "update")

    assert await fail_stalled_runs(later(res, 300)) == 0
    # Its last progress is now 601 s old; the wait counts as progress at each look.
    assert await fail_stalled_runs(later(res, 601)) == 1
    assert (await run_fields(res, progressed))["state"] == RunState.FAILED.value
    assert (await run_fields(res, waiting))["state"] == RunState.RUNNING.value
    assert (await run_fields(res, ended))["state"] == RunState.DONE.value
    assert "progress_at" in await run_fields(res, waiting)


async def test_a_cancelled_sync_gives_way_at_once_and_frees_its_user(
    stalling: Resources, upstreams: Upstreams
) -> None:
    # What ARQ does on a shutdown (SIGTERM) or past its timeout: cancel the job's task.
    upstreams.lucca.add(manager=None)
    await enqueue_user_syncs(stalling.redis, TENANT, [LUCCA_ID])
    generation = await queue.latest_generation(stalling.redis, TENANT, LUCCA_ID)
    assert generation is not None
    task = asyncio.create_task(job.sync_user(stalling, TENANT, LUCCA_ID, generation))
    await asyncio.sleep(0.2)  # the creation is on its way
    assert await stalling.redis.exists(keys.busy(TENANT, LUCCA_ID))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1.0)

    async def released() -> bool:
        # Held for the job's timeout + 10 s until released; then for the cooldown at most.
        left: int = await stalling.redis.pttl(keys.busy(TENANT, LUCCA_ID))
        return 0 < left <= 2000

    for _ in range(50):  # the release, shielded, ends on its own
        if await released():
            break
        await asyncio.sleep(0.02)
    assert await released()


async def test_a_sync_waiting_for_the_budget_keeps_its_run_alive(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    run_id = await new_run(res, RunMode.USERS)
    await enqueue_user_syncs(res.redis, TENANT, [LUCCA_ID], run_id=run_id)
    generation = await queue.latest_generation(res.redis, TENANT, LUCCA_ID)
    assert generation is not None
    tenant_ctx = await res.contexts.get(TENANT)
    assert tenant_ctx is not None
    # The tenant's Lucca host waits (a 429's Retry-After): no stall of the run.
    await res.budget.pause(tenant_ctx.lucca.base_url, 5.0)
    result = await job.sync_user(res, TENANT, LUCCA_ID, generation, run_id)
    assert isinstance(result, Defer)
    assert "progress_at" in await run_fields(res, run_id)
