"""An Elevo 429 pauses every writer of the tenant for its Retry-After (issue 11, point 2)."""

from __future__ import annotations

import httpx

from app.service import pacing, steps
from app.service import sync_user as job
from app.service.jobs import enqueue_user_syncs
from app.service.resources import Resources
from app.service.results import Defer, Done
from app.store import keys, queue
from app.store.run_model import RunMode, Trigger, TriggerKind, draft_run
from tests.factories import TENANT
from tests.fakes import Upstreams

API = Trigger(TriggerKind.API)


async def _notice(res: Resources, user_id: str) -> int:
    await enqueue_user_syncs(res.redis, TENANT, [user_id])
    generation = await queue.latest_generation(res.redis, TENANT, user_id)
    assert generation is not None
    return generation


async def test_an_elevo_429_holds_the_tenants_other_writers(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(id=416, manager=None)
    upstreams.lucca.add(id=417, manager=None, mail="other@acme.test", login="other")
    upstreams.elevo.script(
        "POST", lambda _: httpx.Response(429, json={}, headers={"Retry-After": "3"})
    )

    first = await job.sync_user(res, TENANT, "416", await _notice(res, "416"))
    assert isinstance(first, Defer)
    assert 3.0 <= first.seconds <= 2 * 3.0 + 1  # spread: the tenant's jobs do not wake at once

    # Another job (any process): it reads, decides, and does not write until the pause ends.
    second = await job.sync_user(res, TENANT, "417", await _notice(res, "417"))
    assert isinstance(second, Defer)
    assert 2.0 <= second.seconds <= 2 * 3.0 + 1
    assert len(upstreams.elevo.writes()) == 1  # the one that met the 429
    assert not await res.redis.exists(keys.failures(TENANT, "417"))
    assert not await res.redis.exists(keys.elevo_pause("globex"))

    await res.redis.delete(keys.elevo_pause(TENANT))  # Retry-After has passed...
    res.contexts.forget(TENANT)  # ...for this process's own hold too
    done = await job.sync_user(res, TENANT, "417", await _notice(res, "417"))
    assert done == Done("create")


async def test_a_flagged_key_fails_a_step_without_a_call_nor_a_longer_hold(
    res: Resources, upstreams: Upstreams
) -> None:
    await res.budget.flag_revoked(TENANT, "Lucca answered 401", 100)
    run_id = await res.runs.create(TENANT, draft_run(mode=RunMode.CHANGES, trigger=API))
    assert await steps.poll_changes_step(res, TENANT, run_id) == Done("waiting")
    assert upstreams.lucca.requests == []
    assert await res.budget.revoked(TENANT) == "Lucca answered 401"  # not "not calling..."
    assert await res.redis.ttl(keys.lucca_revoked(TENANT)) <= 100


async def test_a_stalled_elevo_pauses_the_tenants_calls_after_a_few_unanswered(
    res: Resources, upstreams: Upstreams
) -> None:
    users = [str(416 + n) for n in range(6)]
    for user_id in users:
        upstreams.lucca.add(id=int(user_id), manager=None, mail=f"{user_id}@acme.test")

    def no_answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    for _ in range(pacing.UNANSWERED_THRESHOLD):
        upstreams.elevo.script("GET", no_answer)
    for user_id in users[:-1]:  # each one's read hangs: retried later, with backoff
        assert isinstance(
            await job.sync_user(res, TENANT, user_id, await _notice(res, user_id)), Defer
        )
    failed = [u for u in users[:-1] if await res.redis.exists(keys.failures(TENANT, u))]
    # The read that made the count met the pause it opened: a wait, no failure of its own.
    assert failed == users[: pacing.UNANSWERED_THRESHOLD - 1]
    lucca_calls, elevo_calls = len(upstreams.lucca.requests), len(upstreams.elevo.requests)

    last = users[-1]
    deferred = await job.sync_user(res, TENANT, last, await _notice(res, last))
    assert isinstance(deferred, Defer)
    assert 0 < deferred.seconds <= 2 * res.settings.elevo_stall_pause_seconds + 1
    # Neither Elevo nor the Lucca budget is spent while the tenant's Elevo is paused...
    assert (len(upstreams.lucca.requests), len(upstreams.elevo.requests)) == (
        lucca_calls,
        elevo_calls,
    )
    assert not await res.redis.exists(keys.failures(TENANT, last))  # ...nor held against it
    assert not await res.redis.exists(keys.elevo_pause("globex"))

    await res.redis.delete(keys.elevo_pause(TENANT))  # the pause has passed; Elevo answers
    res.contexts.forget(TENANT)
    assert await job.sync_user(res, TENANT, last, await _notice(res, last)) == Done("create")


async def test_one_slow_employee_does_not_pause_the_tenant(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(id=416, manager=None)

    def no_answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    for _ in range(pacing.UNANSWERED_THRESHOLD - 1):
        upstreams.elevo.script("GET", no_answer)
        assert isinstance(await job.sync_user(res, TENANT, "416", await _notice(res, "416")), Defer)
    assert not await res.redis.exists(keys.elevo_pause(TENANT))
    assert await job.sync_user(res, TENANT, "416", await _notice(res, "416")) == Done("create")
