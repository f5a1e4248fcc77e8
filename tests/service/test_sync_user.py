"""The per-user sync job's body, branch by branch: superseded, busy, throttled, retried, given
up, handed over, unknown tenant, follow-ups and contract ends (Lucca and Elevo fakes, real
Redis, ARQ's queue read back from Redis)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from arq.jobs import Job as ArqJob
from arq.jobs import JobStatus

from app.clients.lucca import LuccaBatch
from app.core.decision import Action
from app.metrics import WEBHOOK_TO_ELEVO
from app.serialization import job_deserializer
from app.service import sync_user as job
from app.service.jobs import Job, enqueue_user_syncs
from app.service.resources import Resources
from app.service.results import Defer, Done
from app.store import keys, queue
from app.store.locks import UserLock
from app.store.read_cache import LuccaReadCache
from app.store.run_model import RunMode, Trigger, TriggerKind, draft_run
from tests.factories import LUCCA_ID, MANAGER_LUCCA_ID, TENANT
from tests.fakes import RoundTrips, Upstreams, queued, queued_job

PARIS = ZoneInfo("Europe/Paris")  # the tenant's zone


async def notice(res: Resources, user_id: str = LUCCA_ID) -> int:
    """A change notice for the user, as the web app queues it: the job's generation."""
    await enqueue_user_syncs(res.redis, TENANT, [user_id])
    generation = await queue.latest_generation(res.redis, TENANT, user_id)
    assert generation is not None
    return generation


API = Trigger(TriggerKind.API)


async def new_run(res: Resources, trigger: Trigger = API) -> str:
    return await res.runs.create(TENANT, draft_run(mode=RunMode.USERS, trigger=trigger))


async def run_counts(res: Resources, run_id: str) -> dict[str, int]:
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    return dict(report.counts)


async def test_a_synced_user_is_done_with_its_action(res: Resources, upstreams: Upstreams) -> None:
    upstreams.lucca.add(manager=None)
    generation = await notice(res)
    run_id = await new_run(res)
    result = await job.sync_user(res, TENANT, LUCCA_ID, generation, run_id)
    assert result == Done(Action.CREATE.value)
    assert len(upstreams.elevo.bodies("POST")) == 1
    assert await run_counts(res, run_id) == {"create": 1}
    # Held for the cooldown: notices in the next moments collapse into one trailing sync.
    assert await res.redis.pttl(keys.busy(TENANT, LUCCA_ID)) > 0


async def test_an_older_generation_stands_down_and_counts_superseded(
    res: Resources, upstreams: Upstreams
) -> None:
    older = await notice(res)
    await notice(res)
    run_id = await new_run(res)
    result = await job.sync_user(res, TENANT, LUCCA_ID, older, run_id)
    assert result == Done("superseded")
    assert await run_counts(res, run_id) == {"superseded": 1}
    assert upstreams.lucca.requests == []
    assert upstreams.elevo.requests == []
    assert not await res.redis.exists(keys.busy(TENANT, LUCCA_ID))


async def test_a_busy_user_is_looked_at_again_soon(res: Resources, upstreams: Upstreams) -> None:
    generation = await notice(res)
    holder = UserLock(res.redis, TENANT, LUCCA_ID)
    assert await holder.acquire(40) == 0
    result = await job.sync_user(res, TENANT, LUCCA_ID, generation)
    assert isinstance(result, Defer)
    # Not the holder's whole 40 s: the cooldown and a little jitter at most.
    assert 0.05 <= result.seconds <= res.settings.user_cooldown_seconds + 0.25
    assert upstreams.lucca.requests == []
    assert await res.redis.pttl(keys.busy(TENANT, LUCCA_ID)) > 30_000  # still the holder's


async def test_a_spent_budget_defers_by_its_wait_and_counts_no_failure(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    generation = await notice(res)
    tenant_ctx = await res.contexts.get(TENANT)
    assert tenant_ctx is not None
    await res.budget.pause(tenant_ctx.lucca.base_url, 5.0)  # as after a 429: none for 5 s
    result = await job.sync_user(res, TENANT, LUCCA_ID, generation)
    assert isinstance(result, Defer)
    assert 4.0 <= result.seconds <= 6.0
    assert upstreams.lucca.requests == []
    assert not await res.redis.exists(keys.failures(TENANT, LUCCA_ID))
    # Nothing was done: the lock goes at once, without a cooldown.
    assert not await res.redis.exists(keys.busy(TENANT, LUCCA_ID))


@pytest.mark.parametrize("side", ["lucca", "elevo"])
async def test_a_passing_upstream_error_defers_with_backoff_and_counts_a_failure(
    res: Resources, upstreams: Upstreams, side: str
) -> None:
    upstreams.lucca.add(manager=None)
    if side == "lucca":
        upstreams.lucca.fail_next("GET", 503)
    else:
        upstreams.elevo.fail_next("GET", 503)
    generation = await notice(res)
    await res.redis.set(keys.failures(TENANT, LUCCA_ID), 2)  # two failed tries before this one
    result = await job.sync_user(res, TENANT, LUCCA_ID, generation)
    assert isinstance(result, Defer)
    assert 2.0 <= result.seconds <= 6.0  # backoff of the third failure: 4 s, jittered
    assert await res.redis.get(keys.failures(TENANT, LUCCA_ID)) == b"3"
    assert await res.records.history(TENANT, LUCCA_ID) == []
    assert not await res.redis.exists(keys.busy(TENANT, LUCCA_ID))


async def test_a_429_with_retry_after_defers_by_that_much(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    upstreams.elevo.script("GET", lambda _: _too_many(12))
    generation = await notice(res)
    result = await job.sync_user(res, TENANT, LUCCA_ID, generation)
    assert isinstance(result, Defer)
    assert 12.0 <= result.seconds <= 2 * 12.0 + 1  # at least as asked, spread among the jobs
    # Waiting as asked is no failure; every writer of the tenant now waits as long.
    assert not await res.redis.exists(keys.failures(TENANT, LUCCA_ID))
    assert 11_000 < await res.redis.pttl(keys.elevo_pause(TENANT)) <= 12_000


def _too_many(retry_after: int) -> httpx.Response:
    return httpx.Response(429, json={}, headers={"Retry-After": str(retry_after)})


async def test_a_sync_after_failures_clears_their_count(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    await res.redis.set(keys.failures(TENANT, LUCCA_ID), 4)
    generation = await notice(res)
    assert await job.sync_user(res, TENANT, LUCCA_ID, generation) == Done("create")
    assert not await res.redis.exists(keys.failures(TENANT, LUCCA_ID))


async def test_after_too_many_failures_the_job_gives_up_and_records_why(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.fail_next("GET", 503)
    generation = await notice(res)
    run_id = await new_run(res)
    await res.redis.set(keys.failures(TENANT, LUCCA_ID), job.MAX_UPSTREAM_FAILURES)
    result = await job.sync_user(res, TENANT, LUCCA_ID, generation, run_id)
    assert result == Done("gave up")
    [entry] = await res.records.history(TENANT, LUCCA_ID)
    assert entry["action"] == "error"
    assert entry["written"] is False
    reason = f"gave up after {job.MAX_UPSTREAM_FAILURES} failed tries: Lucca GET"
    assert entry["error"].startswith(reason)
    errors = await res.records.user_errors(TENANT)
    assert errors[LUCCA_ID]["error"] == entry["error"]
    assert await run_counts(res, run_id) == {"error": 1}
    # The next try starts afresh (the nightly reconciliation, a new notice).
    assert not await res.redis.exists(keys.failures(TENANT, LUCCA_ID))


async def test_a_job_out_of_tries_hands_over_to_a_fresh_one(
    res: Resources, upstreams: Upstreams
) -> None:
    generation = await notice(res)
    run_id = await new_run(res)
    holder = UserLock(res.redis, TENANT, LUCCA_ID)
    await holder.acquire(40)
    last_try = job.SYNC_USER_MAX_TRIES - 1
    before_ms = datetime.now(UTC).timestamp() * 1000
    result = await job.sync_user(res, TENANT, LUCCA_ID, generation, run_id, job_try=last_try)
    assert result == Done("handed over")
    newer = await queue.latest_generation(res.redis, TENANT, LUCCA_ID)
    assert newer == generation + 1
    fresh = keys.sync_job_id(TENANT, LUCCA_ID, generation + 1)
    assert await queued_job(res, fresh) == (Job.SYNC_USER.value, (TENANT, LUCCA_ID, newer, run_id))
    # Deferred as the busy user asked, not started at once.
    assert (await queued(res))[fresh] >= before_ms + 50
    # The job before the last try still defers: ARQ retries it itself.
    assert isinstance(
        await job.sync_user(res, TENANT, LUCCA_ID, newer, job_try=last_try - 1), Defer
    )


async def test_a_job_out_of_tries_after_a_failure_hands_over_too(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.fail_next("GET", 503)
    generation = await notice(res)
    result = await job.sync_user(res, TENANT, LUCCA_ID, generation, job_try=job.SYNC_USER_MAX_TRIES)
    assert result == Done("handed over")
    fresh = keys.sync_job_id(TENANT, LUCCA_ID, generation + 1)
    assert fresh in await queued(res)


async def test_a_job_of_an_unknown_tenant_does_nothing(
    res: Resources, upstreams: Upstreams
) -> None:
    result = await job.sync_user(res, "ghost", LUCCA_ID, 1)
    assert result == Done("unknown tenant")
    assert upstreams.lucca.requests == []
    assert upstreams.elevo.requests == []
    assert await res.records.history("ghost", LUCCA_ID) == []


async def test_follow_ups_are_queued_as_fresh_syncs(res: Resources, upstreams: Upstreams) -> None:
    upstreams.lucca.add()  # 416, managed by 12 ...
    upstreams.lucca.add(  # ... who is managed by 416: a cycle
        id=int(MANAGER_LUCCA_ID), mail="helene@acme.example", manager={"id": int(LUCCA_ID)}
    )
    generation = await notice(res)
    assert await job.sync_user(res, TENANT, LUCCA_ID, generation) == Done("create")
    # 12 was created without its manager: it comes back now that 416 has a profile.
    manager_generation = await queue.latest_generation(res.redis, TENANT, MANAGER_LUCCA_ID)
    assert manager_generation == 1
    follow_up = keys.sync_job_id(TENANT, MANAGER_LUCCA_ID, 1)
    assert await queued_job(res, follow_up) == (
        Job.SYNC_USER.value,
        (TENANT, MANAGER_LUCCA_ID, 1, None),
    )
    # Not itself again.
    assert set(await queued(res)) == {keys.sync_job_id(TENANT, LUCCA_ID, generation), follow_up}


async def test_a_future_contract_end_is_rechecked_at_midnight_after_the_last_day(
    res: Resources, upstreams: Upstreams
) -> None:
    # A last day ahead of the wall clock too: ARQ dates its job records by the wall clock.
    last_day = (datetime.now(UTC) + timedelta(days=90)).date()
    upstreams.lucca.add(manager=None, dtContractEnd=f"{last_day.isoformat()}T00:00:00")
    generation = await notice(res)
    assert await job.sync_user(res, TENANT, LUCCA_ID, generation) == Done("create")
    due = keys.due_job_id(TENANT, LUCCA_ID, last_day)
    midnight = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=PARIS)
    assert (await queued(res))[due] == midnight.timestamp() * 1000
    assert await queued_job(res, due) == (Job.SYNC_USER_DUE.value, (TENANT, LUCCA_ID))
    status = await ArqJob(due, res.redis, _deserializer=job_deserializer).status()
    assert status is JobStatus.deferred
    # Synced again, the same last day is not scheduled twice.
    await res.redis.delete(keys.busy(TENANT, LUCCA_ID))
    assert await job.sync_user(res, TENANT, LUCCA_ID, await notice(res)) == Done("unchanged")
    assert [j for j in await queued(res) if j.startswith("due:")] == [due]


async def test_a_write_for_a_webhook_observes_its_lag(res: Resources, upstreams: Upstreams) -> None:
    upstreams.lucca.add(manager=None)
    generation = await notice(res)
    run_id = await new_run(res, Trigger.webhook("employee.updated"))
    observed = _histogram_count()
    assert await job.sync_user(res, TENANT, LUCCA_ID, generation, run_id) == Done("create")
    assert _histogram_count() == observed + 1
    # Nothing written: nothing observed.
    await res.redis.delete(keys.busy(TENANT, LUCCA_ID))
    await job.sync_user(res, TENANT, LUCCA_ID, await notice(res), run_id)
    assert _histogram_count() == observed + 1


async def test_no_lag_is_observed_for_an_api_run(res: Resources) -> None:
    observed = _histogram_count()
    await job.observe_webhook_lag(res, TENANT, await new_run(res))
    await job.observe_webhook_lag(res, TENANT, "no-such-run")
    assert _histogram_count() == observed


def _histogram_count() -> float:
    for metric in WEBHOOK_TO_ELEVO.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count"):
                return sample.value
    return 0.0


async def test_a_change_costs_one_elevo_request_and_six_redis_round_trips(
    res: Resources, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: a changed employee whose profile the sync wrote before is written from the
    kept copy (a PATCH with If-Match, no GET), and the job's Redis work is grouped."""
    item = upstreams.lucca.add(manager=None)
    assert await job.sync_user(res, TENANT, LUCCA_ID, await notice(res)) == Done("create")
    await res.redis.delete(keys.busy(TENANT, LUCCA_ID))
    item["firstName"] = "Camilla"
    generation = await notice(res)
    run_id = await new_run(res)
    upstreams.elevo.requests.clear()
    round_trips = RoundTrips()
    with round_trips.counting(monkeypatch):
        assert await job.sync_user(res, TENANT, LUCCA_ID, generation, run_id) == Done("update")
    assert [r.method for r in upstreams.elevo.requests] == ["PATCH"]
    assert round_trips.sent <= 6


async def test_a_read_another_job_shared_is_used_and_a_stale_one_is_not(
    res: Resources, upstreams: Upstreams
) -> None:
    """The shared read cache is looked at in the job's first round trip: a read that began
    after the user's notice serves the job with no Lucca request; one older than the notice
    does not."""
    item = upstreams.lucca.add(manager=None)
    generation = await notice(res)
    shared = await upstreams_read(res, generation)
    upstreams.lucca.requests.clear()
    assert await job.sync_user(res, TENANT, LUCCA_ID, generation) == Done("create")
    assert shared.users[LUCCA_ID].first_name == item["firstName"]
    assert upstreams.lucca.requests == []  # the cached read served it

    await res.redis.delete(keys.busy(TENANT, LUCCA_ID))
    item["firstName"] = "Camilla"
    newer = await notice(res)  # the cached read predates this notice: Lucca is read again
    assert await job.sync_user(res, TENANT, LUCCA_ID, newer) == Done("update")
    assert len(upstreams.lucca.requests) == 1


async def upstreams_read(res: Resources, generation: int) -> LuccaBatch:
    """What another job's request read of the user after its notice, kept in the cache."""
    tenant_ctx = await res.contexts.get(TENANT)
    assert tenant_ctx is not None
    batch = await tenant_ctx.lucca.fetch_by_ids([LUCCA_ID])
    cache = LuccaReadCache(res.redis)
    await cache.store(TENANT, [LUCCA_ID], [generation], batch)
    return batch
