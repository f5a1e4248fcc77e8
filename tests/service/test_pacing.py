"""An Elevo 429 pauses every writer of the tenant for its Retry-After (issue 11, point 2)."""

from __future__ import annotations

import httpx

from app.service import steps
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
    assert 3.0 <= first.seconds <= 4.0

    # Another job (any process): it reads, decides, and does not write until the pause ends.
    second = await job.sync_user(res, TENANT, "417", await _notice(res, "417"))
    assert isinstance(second, Defer)
    assert 2.0 <= second.seconds <= 4.0
    assert len(upstreams.elevo.writes()) == 1  # the one that met the 429
    assert not await res.redis.exists(keys.failures(TENANT, "417"))
    assert not await res.redis.exists(keys.elevo_pause("globex"))

    await res.redis.delete(keys.elevo_pause(TENANT))  # Retry-After has passed
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
