"""Nothing waits for ever (sync-rules.md): employees blocked by a tenant-level reason are parked
with it, and queued again as soon as it clears: a pause lifts, a credential works again (a PUT,
a successful sync, the tick's probe), a complete listing decides an absent skip field (Lucca and
Elevo fakes, real Redis, ARQ's queue read back from Redis)."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.decision import Action
from app.service import blocks
from app.service import sync_user as job
from app.service.context import TenantContext
from app.service.jobs import Job, enqueue_user_syncs
from app.service.polling import tick
from app.service.resources import Resources
from app.service.results import Done
from app.service.runs import FULL_RUN, start_run, status_document
from app.service.skip_field import remember_listing
from app.service.steps import run_step
from app.service.tenants import put_tenant
from app.store import keys, queue
from app.store.parked import ParkedUsers, Pause, ProbeBackoff
from app.store.read_cache import LuccaReadCache
from app.store.run_model import RunState, Trigger, TriggerKind
from tests.factories import LUCCA_ID, SKIP_FIELD, TENANT, make_tenant_config
from tests.fakes import Upstreams, last_entry, queued, queued_job

BOB = "417"


async def notice(res: Resources, user_id: str = LUCCA_ID) -> int:
    await enqueue_user_syncs(res.redis, TENANT, [user_id])
    generation = await queue.latest_generation(res.redis, TENANT, user_id)
    assert generation is not None
    return generation


async def sync(res: Resources, user_id: str = LUCCA_ID) -> Any:
    await res.redis.delete(keys.busy(TENANT, user_id))  # no cooldown between the steps here
    return await job.sync_user(res, TENANT, user_id, await notice(res, user_id))


async def parked(res: Resources) -> dict[str, int]:
    return {code: n for code, (n, _) in (await ParkedUsers(res.redis, TENANT).counts()).items()}


async def queued_syncs(res: Resources) -> dict[str, str | None]:
    """The queued per-user syncs: user -> run."""
    found: dict[str, str | None] = {}
    for job_id in await queued(res):
        function, args = await queued_job(res, job_id)
        if function == Job.SYNC_USER.value:
            found[args[1]] = args[3]
    return found


async def clear_queue(res: Resources) -> None:
    await res.redis.delete(*keys.queues())


async def run_trigger(res: Resources, run_id: str | None) -> str:
    assert run_id is not None
    run = await res.runs.get(TENANT, run_id)
    assert run is not None
    return str(run.trigger)


# -- a refused Elevo token ----------------------------------------------------------------------


async def test_changes_while_elevo_refuses_the_token_wait_and_a_put_applies_them(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    upstreams.lucca.add(id=int(BOB), mail="bob@acme.example", login="bob", manager=None)
    upstreams.elevo.fail_next("GET", 401, times=2)
    assert await sync(res) == Done(Action.HELD.value)
    assert await sync(res, BOB) == Done(Action.HELD.value)
    assert await parked(res) == {"elevo_token": 2}
    entry = await last_entry(res)
    assert entry["reason"].startswith("waiting: Elevo refuses the tenant's token")
    assert LUCCA_ID not in await res.records.user_errors(TENANT)
    status = await status_document(res, TENANT)
    assert status["elevo_token_error"]
    [waiting] = status["waiting"]["reasons"]
    assert (waiting["reason"], waiting["users"]) == ("elevo_token", 2)
    assert waiting["since"]
    assert "401" in waiting["error"]

    await clear_queue(res)
    await put_tenant(res, make_tenant_config())  # a new token (the same fake accepts any)
    assert await parked(res) == {}
    again = await queued_syncs(res)
    assert set(again) == {LUCCA_ID, BOB}
    assert await run_trigger(res, again[LUCCA_ID]) == "unblocked"
    assert not (await status_document(res, TENANT))["elevo_token_error"]
    assert await sync(res) == Done(Action.CREATE.value)


async def test_a_sync_that_succeeds_after_a_refusal_applies_who_waited(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    upstreams.lucca.add(id=int(BOB), mail="bob@acme.example", login="bob", manager=None)
    upstreams.elevo.fail_next("GET", 401)
    await sync(res, BOB)
    assert await parked(res) == {"elevo_token": 1}
    await clear_queue(res)
    assert await sync(res) == Done(Action.CREATE.value)  # the token works again
    assert await parked(res) == {}
    assert await run_trigger(res, (await queued_syncs(res))[BOB]) == "unblocked"
    assert not (await res.records.notes(TENANT))["elevo_token_error"]


async def test_the_tick_probes_a_refused_token_with_backoff(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    upstreams.elevo.fail_next("GET", 401, times=2)  # the sync's read, then the first probe
    await sync(res)
    await clear_queue(res)
    elevo_calls = len(upstreams.elevo.requests)
    await blocks.probe_tenant(res, tenant_ctx)  # a minute after the refusal at the earliest
    assert len(upstreams.elevo.requests) == elevo_calls
    assert 0 < await res.redis.pttl(keys.probe(TENANT, "elevo_token")) <= 60_000

    await ProbeBackoff(res.redis, TENANT, "elevo_token").reset()  # the minute has passed
    await blocks.probe_tenant(res, tenant_ctx)
    assert len(upstreams.elevo.requests) == elevo_calls + 1
    assert (await res.records.notes(TENANT))["elevo_token_error"]  # still refused
    assert await parked(res) == {"elevo_token": 1}
    await blocks.probe_tenant(res, tenant_ctx)  # within the backoff: no request
    assert len(upstreams.elevo.requests) == elevo_calls + 1
    assert 0 < await res.redis.pttl(keys.probe(TENANT, "elevo_token")) <= 60_000

    await ProbeBackoff(res.redis, TENANT, "elevo_token").reset()  # the delay has passed
    await tick(res)  # the minute's tick probes, and the token works
    assert not (await res.records.notes(TENANT))["elevo_token_error"]
    assert set(await queued_syncs(res)) == {LUCCA_ID}


# -- a refused Lucca key ------------------------------------------------------------------------


async def test_a_refused_lucca_key_parks_and_the_probe_clears_it_with_a_catch_up_run(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    upstreams.lucca.fail_next("GET", 403)
    assert await sync(res) == Done(Action.HELD.value)
    assert await parked(res) == {"lucca_key": 1}
    assert await res.budget.revoked(TENANT) is not None
    await clear_queue(res)
    await blocks.probe_tenant(res, tenant_ctx)  # too soon after the refusal
    assert await res.budget.revoked(TENANT) is not None
    await ProbeBackoff(res.redis, TENANT, "lucca_key").reset()  # the minute has passed
    await blocks.probe_tenant(res, tenant_ctx)  # the key works again
    assert await res.budget.revoked(TENANT) is None
    assert await parked(res) == {}
    assert set(await queued_syncs(res)) == {LUCCA_ID}
    triggers = [str(r.run.trigger) for r in await res.runs.recent(TENANT)]
    assert "key-replaced" in triggers  # departments and polls failed meanwhile: a full run


# -- pause and resume ---------------------------------------------------------------------------


async def test_a_paused_tenant_keeps_every_notice_and_applies_them_on_resume(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    paused = await blocks.pause_tenant(res, TENANT, operator="ops-token", reason="audit")
    assert (paused["paused"], paused["by"]) == (True, "ops-token")
    again = await blocks.pause_tenant(res, TENANT, operator="other", reason=None)
    assert (again["since"], again["by"]) == (paused["since"], "ops-token")  # the first holds

    assert await sync(res) == Done("paused")
    assert upstreams.lucca.requests == []
    assert upstreams.elevo.requests == []
    entry = await last_entry(res)
    assert (entry["action"], entry["written"]) == ("held", False)
    assert "paused" in entry["reason"]
    assert "ops-token" in entry["reason"]
    full = await start_run(res, TENANT, FULL_RUN, trigger=Trigger(TriggerKind.NIGHTLY))
    assert await run_step(res, TENANT, full, _never) == Done("paused")
    held = await res.runs.report(TENANT, full)
    assert held is not None
    assert held.run.state is RunState.HELD
    assert "paused" in held.fields["waiting"]
    assert await res.redis.get(keys.active_full_run(TENANT)) is None  # the tenant is free
    status = await status_document(res, TENANT)
    assert status["paused"] == {"since": paused["since"], "by": "ops-token", "reason": "audit"}
    assert status["waiting"]["reasons"][0]["reason"] == "paused"

    await clear_queue(res)
    resumed = await blocks.resume_tenant(res, TENANT, operator="ops-token")
    assert resumed["paused"] is False
    assert len(resumed["runs"]) == 2  # the kept notices, and the full run asked meanwhile
    assert set(await queued_syncs(res)) == {LUCCA_ID}
    assert await run_trigger(res, resumed["run"]) == "resumed"
    status = await status_document(res, TENANT)
    assert status["paused"] is None
    assert status["last_pause"]["resumed_by"] == "ops-token"
    assert await sync(res) == Done(Action.CREATE.value)


async def _never(*_: object) -> str:
    raise AssertionError("a paused tenant's full run does not run its steps")


# -- an absent skip field, on one read ------------------------------------------------------------


async def test_someone_held_on_one_read_gets_a_complete_listing_soon(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None, extendedData={SKIP_FIELD: True})
    await sync(res)  # last seen excluded
    upstreams.lucca.items[LUCCA_ID]["extendedData"] = {}
    assert await sync(res) == Done(Action.HELD.value)
    assert await parked(res) == {"skip_field": 1}
    await res.records.note(TENANT, permission_loss="lost")
    await blocks.probe_tenant(res, tenant_ctx)  # under a permission loss: waits for the flag
    assert [r for r in await res.runs.recent(TENANT) if r.run.mode.value == "full"] == []
    await res.records.note(TENANT, permission_loss="")

    await blocks.probe_tenant(res, tenant_ctx)  # not the nightly: a full run now
    [check] = [r for r in await res.runs.recent(TENANT) if r.run.mode.value == "full"]
    assert str(check.run.trigger) == "skip-field-check"
    await blocks.probe_tenant(res, tenant_ctx)  # with backoff: not one per minute
    assert len([r for r in await res.runs.recent(TENANT) if r.run.mode.value == "full"]) == 1

    await clear_queue(res)  # the listing ends and shows the field on others: applied
    await remember_listing(res, tenant_ctx, listed=10, shown=3, loss=False)
    assert await parked(res) == {}
    assert set(await queued_syncs(res)) == {LUCCA_ID}


async def test_a_notice_parked_just_as_the_tenant_resumes_is_released_at_once(
    res: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    pause = Pause(
        by="ops",
        at="2026-01-01T00:00:00.000Z",
        reason=None,
        pending_full=False,
        pending_changes=False,
    )
    answers = iter([pause, None])  # paused when the job looks, resumed once it has parked

    async def paused_then_resumed(*_: object) -> Pause | None:
        return next(answers)

    monkeypatch.setattr(blocks, "paused", paused_then_resumed)
    assert await blocks.kept_while_paused(res, TENANT, LUCCA_ID, None)
    assert await parked(res) == {}
    assert LUCCA_ID in await queued_syncs(res)


async def test_a_new_skip_field_code_releases_who_waited_for_a_listing(res: Resources) -> None:
    await ParkedUsers(res.redis, TENANT).park([LUCCA_ID], "skip_field", "2026-01-01T00:00:00Z")
    await put_tenant(res, make_tenant_config(skip_field="e_other_checkbox"))
    assert await parked(res) == {}
    assert LUCCA_ID in await queued_syncs(res)


async def test_a_spent_budget_parks_nobody_and_the_status_counts_who_waits_for_it(
    res: Resources,
) -> None:
    await LuccaReadCache(res.redis).want(TENANT, [LUCCA_ID, BOB])  # their jobs deferred
    assert await parked(res) == {}
    waiting = (await status_document(res, TENANT))["waiting"]
    assert waiting["users"] == 2
    [budget] = waiting["reasons"]
    assert (budget["reason"], budget["users"], budget["error"]) == ("budget", 2, None)
