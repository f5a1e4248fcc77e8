"""The console's weekly runs table: one line per run, webhook syncs one line per hour, from
the hour's aggregate, still there once the webhooks' run records have expired."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from app.service.console_runs import run_lines
from app.service.resources import Resources
from app.store import keys
from app.store.run_model import NewRun, RunMode, Trigger, TriggerKind, draft_run

HOOK = Trigger.webhook("employee.updated")


def run_at(at: datetime, mode: RunMode, trigger: Trigger, expected: int | None = None) -> NewRun:
    """A new run as if created at `at` (its id and creation time)."""
    new = draft_run(mode=mode, trigger=trigger, expected=expected)
    run_id = at.strftime("%Y%m%dT%H%M%S") + new.id[15:]
    created = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return NewRun(run_id, created, {**new.fields, "id": run_id, "created_at": created})


async def create_at(res: Resources, new: NewRun, at: datetime) -> str:
    run_id = await res.runs.create("acme", new)
    index = keys.webhook_runs("acme") if new.fields["trigger"] != "nightly" else keys.runs("acme")
    await res.redis.zadd(index, {run_id: at.timestamp()})  # indexed at its time, not now
    return run_id


async def test_a_past_weeks_webhook_hours_outlive_their_runs(res: Resources) -> None:
    now = datetime.now(UTC)
    res = replace(res, clock=lambda: now)
    past = (now - timedelta(days=9)).replace(minute=10, second=0, microsecond=0)
    hooks = []
    for n, user in enumerate(("1", "2", "3")):
        at = past + timedelta(minutes=n)
        hook = await create_at(res, run_at(at, RunMode.USERS, HOOK, expected=1), at)
        await res.runs.count("acme", hook, user, "update" if n else "create")
        hooks.append(hook)
    nightly_at = past + timedelta(hours=2)
    nightly = await create_at(
        res, run_at(nightly_at, RunMode.FULL, Trigger(TriggerKind.NIGHTLY)), nightly_at
    )
    # The webhooks' records expire (WEBHOOK_RUN_RETENTION_SECONDS), their index entries too.
    for hook in hooks:
        await res.redis.delete(keys.run("acme", hook))
        await res.redis.zrem(keys.webhook_runs("acme"), hook)
    lines = await run_lines(res, "acme", weeks_ago=1)
    hour = past.strftime("%Y-%m-%d %H:00")
    assert [(line.label, line.run_id, line.state, line.counts) for line in lines] == [
        (nightly_at.strftime("%Y-%m-%d %H:%M:%S"), nightly, "queued", {}),
        (hour, None, "3 syncs", {"create": 1, "update": 2}),
    ]
    assert await run_lines(res, "acme", weeks_ago=0) == []


async def test_this_weeks_webhook_runs_count_once(res: Resources) -> None:
    now = datetime.now(UTC)
    res = replace(res, clock=lambda: now + timedelta(seconds=1))
    for user in ("1", "2"):
        hook = await res.runs.create(
            "acme", draft_run(mode=RunMode.USERS, trigger=HOOK, expected=1)
        )
        await res.runs.count("acme", hook, user, "update")
        await res.runs.count("acme", hook, user, "update")  # a retried job
    lines = await run_lines(res, "acme")
    assert [(line.trigger, line.state, line.counts) for line in lines] == [
        ("webhooks (this hour)", "2 syncs", {"update": 2})
    ]


async def test_a_webhook_run_from_before_the_aggregate_counts_once_in_its_hour(
    res: Resources,
) -> None:
    """A webhook's run indexed with the others (created before webhooks had an index and an
    aggregate of their own) is added to its hour from its record, even when its outcome is
    counted after the upgrade: the aggregate leaves it out."""
    now = datetime.now(UTC)
    res = replace(res, clock=lambda: now + timedelta(seconds=1))
    hook = await res.runs.create("acme", draft_run(mode=RunMode.USERS, trigger=HOOK, expected=1))
    await res.runs.count("acme", hook, "1", "update")
    legacy = draft_run(mode=RunMode.USERS, trigger=HOOK, expected=1)
    await res.redis.hset(keys.run("acme", legacy.id), mapping=dict(legacy.fields))
    await res.redis.zadd(keys.runs("acme"), {legacy.id: now.timestamp()})
    await res.runs.count("acme", legacy.id, "2", "create")
    lines = await run_lines(res, "acme")
    assert [(line.trigger, line.state, line.counts) for line in lines] == [
        ("webhooks (this hour)", "2 syncs", {"update": 1, "create": 1})
    ]
