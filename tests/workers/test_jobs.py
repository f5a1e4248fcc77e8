"""The ARQ adapters: a Defer becomes ARQ's Retry with that delay, a Done its word; ARQ's
`job_try` reaches the service; each registered name runs its own adapter.

(That every Job value is registered is tests/workers/test_worker.py's.)
"""

from __future__ import annotations

from typing import Any

import pytest
from arq import Retry
from redis.exceptions import ConnectionError as RedisConnectionError

from app.service.jobs import Job, enqueue_user_syncs
from app.service.outcomes import DecisionBatch
from app.service.resources import Resources
from app.service.sync_user import SYNC_USER_MAX_TRIES
from app.store import keys
from app.store.locks import UserLock
from app.store.run_model import RunMode, Trigger, TriggerKind, draft_run
from tests.conftest import make_settings
from tests.factories import LUCCA_ID, TENANT
from tests.fakes import Upstreams
from workers import jobs
from workers.worker import cron_jobs, functions


def ctx_for(res: Resources, job_try: int = 1) -> dict[str, Any]:
    """ARQ's ctx as a worker started by a test hands it to a job."""
    return {"resources": res, "owns_resources": False, "job_try": job_try}


async def generation(res: Resources) -> int:
    await enqueue_user_syncs(res.redis, TENANT, [LUCCA_ID])
    return int(await res.redis.get(keys.gen(TENANT, LUCCA_ID)))


async def test_a_done_sync_returns_its_action(res: Resources, upstreams: Upstreams) -> None:
    upstreams.lucca.add(manager=None)
    result = await jobs.sync_user({"resources": res}, TENANT, LUCCA_ID, await generation(res))
    assert result == "create"


async def test_a_deferred_sync_raises_retry_with_that_delay(
    res: Resources, upstreams: Upstreams
) -> None:
    gen = await generation(res)
    await UserLock(res.redis, TENANT, LUCCA_ID).acquire(40)
    with pytest.raises(Retry) as retry:
        await jobs.sync_user(ctx_for(res), TENANT, LUCCA_ID, gen)
    assert retry.value.defer_score is not None
    assert 50 <= retry.value.defer_score <= (res.settings.user_cooldown_seconds + 0.25) * 1000
    assert upstreams.lucca.requests == []


async def test_arqs_try_reaches_the_service(res: Resources) -> None:
    gen = await generation(res)
    await UserLock(res.redis, TENANT, LUCCA_ID).acquire(40)
    ctx = ctx_for(res, job_try=SYNC_USER_MAX_TRIES - 1)
    assert await jobs.sync_user(ctx, TENANT, LUCCA_ID, gen) == "handed over"
    assert int(await res.redis.get(keys.gen(TENANT, LUCCA_ID))) == gen + 1


async def test_a_throttled_step_raises_retry(res: Resources, upstreams: Upstreams) -> None:
    run_id = await res.runs.create(
        TENANT, draft_run(mode=RunMode.FULL, trigger=Trigger(TriggerKind.API))
    )
    tenant_ctx = await res.contexts.get(TENANT)
    assert tenant_ctx is not None
    await res.budget.pause(tenant_ctx.lucca.base_url, 9.0)
    with pytest.raises(Retry) as retry:
        await jobs.reconcile_page(ctx_for(res), TENANT, run_id, 0)
    assert retry.value.defer_score is not None
    assert 8_000 <= retry.value.defer_score <= 10_000
    assert upstreams.lucca.requests == []


@pytest.mark.parametrize(
    ("adapter", "args"),
    [
        (jobs.reconcile_snapshot, ("run",)),
        (jobs.reconcile_page, ("run", 0)),
        (jobs.reconcile_finish, ("run", 0)),
        (jobs.poll_changes, ("run",)),
        (jobs.sync_department, ("7", "run")),
        (jobs.plan_users, ("run", [LUCCA_ID])),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
async def test_a_step_of_an_unknown_run_is_done(res: Resources, adapter: Any, args: Any) -> None:
    assert await adapter(ctx_for(res), TENANT, *args) == "unknown tenant or run"


async def test_a_release_page_of_no_release_and_an_alert_of_no_notice_are_done(
    res: Resources,
) -> None:
    assert await jobs.release_page(ctx_for(res), TENANT, "run", 1, 1) == "not this tenant's release"
    assert await jobs.send_alert(ctx_for(res), TENANT, "notice") == "nothing to send"
    assert await jobs.alerts_tick(ctx_for(res)) == 0  # no tenant has an alerts_url


async def test_a_due_contract_end_and_the_tick(res: Resources) -> None:
    assert await jobs.sync_user_due(ctx_for(res), TENANT, LUCCA_ID) == "queued"
    assert await res.redis.exists(keys.job(keys.sync_job_id(TENANT, LUCCA_ID, 1)))
    # 10:00 in Paris, no polls configured: nothing is due.
    assert await jobs.tick(ctx_for(res)) == 0


def test_each_registered_name_runs_the_adapter_of_that_name() -> None:
    registered = {f.name: f.coroutine for f in functions(make_settings())}
    for name, coroutine in registered.items():
        assert coroutine is getattr(jobs, Job(name).value)
    crons = {c.name: c.coroutine for c in cron_jobs()}
    assert crons == {Job.TICK.value: jobs.tick, Job.ALERTS_TICK.value: jobs.alerts_tick}


def test_arq_gives_a_sync_the_tries_its_hand_over_counts_on() -> None:
    [sync] = [f for f in functions(make_settings()) if f.name == Job.SYNC_USER.value]
    assert sync.max_tries == SYNC_USER_MAX_TRIES


def test_a_misspelt_job_name_fails_where_it_is_written() -> None:
    with pytest.raises(AttributeError):
        _ = Job.SYNC_USERS  # type: ignore[attr-defined]  # mypy refuses it too


async def test_a_job_that_loses_redis_midway_runs_again(
    res: Resources, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstreams.lucca.add(manager=None)
    gen = await generation(res)

    async def redis_gone(*args: Any, **kwargs: Any) -> None:
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379")

    monkeypatch.setattr(DecisionBatch, "flush", redis_gone)  # Redis goes away mid-job
    with pytest.raises(Retry) as retry:  # ARQ would otherwise fail it for good
        await jobs.sync_user(ctx_for(res), TENANT, LUCCA_ID, gen)
    assert retry.value.defer_score is not None
    assert 0 < retry.value.defer_score <= 2 * jobs.REDIS_RETRY_SECONDS * 1000
    monkeypatch.undo()
    await res.redis.delete(keys.busy(TENANT, LUCCA_ID))  # the user's cooldown has passed
    assert await jobs.sync_user(ctx_for(res), TENANT, LUCCA_ID, gen) == "unchanged"


async def test_a_step_that_loses_redis_midway_runs_again_and_its_run_goes_on(
    res: Resources, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = await res.runs.create(
        TENANT, draft_run(mode=RunMode.FULL, trigger=Trigger(TriggerKind.API))
    )

    async def redis_gone(*args: Any, **kwargs: Any) -> None:
        raise RedisConnectionError("Connection reset by peer")

    monkeypatch.setattr(res.runs, "set_state", redis_gone)
    with pytest.raises(Retry):
        await jobs.reconcile_snapshot(ctx_for(res), TENANT, run_id)
    run = await res.runs.get(TENANT, run_id)
    assert run is not None
    assert run.state.value != "failed"  # not failed as an internal error
