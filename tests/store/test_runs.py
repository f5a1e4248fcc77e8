"""Runs, counts, plans and per-user history, in Redis (recorded through the service)."""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis

from app.core.decision import Action, Change, Decision
from app.service.outcomes import DecisionBatch, record_decision
from app.store import keys
from app.store.records import HISTORY_LENGTH, Records
from app.store.run_model import Resolution, RunMode, RunState, Trigger, TriggerKind, draft_run
from app.store.runs import RunStore

API = Trigger(TriggerKind.API)


class Store:
    """The run store and the per-user records, with today's shapes for these tests."""

    def __init__(self, redis: ArqRedis, retention: int) -> None:
        self.runs = RunStore(redis, retention)
        self.records = Records(redis, retention)

    async def create_run(self, tenant: str, *, mode: str, trigger: Trigger, **kw: Any) -> str:
        return await self.runs.create(tenant, draft_run(mode=RunMode(mode), trigger=trigger, **kw))

    async def decision(self, tenant: str, decision: Decision, **kw: Any) -> None:
        await record_decision(self.records, self.runs, tenant, decision, **kw)

    async def get_run(self, tenant: str, run_id: str) -> dict[str, Any] | None:
        report = await self.runs.report(tenant, run_id)
        return None if report is None else report.document()

    async def recent_runs(self, tenant: str) -> list[dict[str, Any]]:
        return [r.document(with_plan=False) for r in await self.runs.recent(tenant)]

    async def history(self, tenant: str, user_id: str) -> list[dict[str, Any]]:
        return await self.records.history(tenant, user_id)

    async def user_errors(self, tenant: str) -> dict[str, Any]:
        return await self.records.user_errors(tenant)


def decision(user: str, action: Action = Action.UPDATE) -> Decision:
    return Decision(user, action, "because", {"title": Change("a", "b")}, "p-" + user)


async def test_a_run_with_expected_users_finishes_itself(redis: ArqRedis) -> None:
    records = Store(redis, 3600)
    run_id = await records.create_run("acme", mode="users", trigger=API, expected=2)
    assert (await records.get_run("acme", run_id) or {})["state"] == "queued"
    await records.decision("acme", decision("1"), run_id=run_id, written=True)
    assert (await records.get_run("acme", run_id) or {})["state"] == "running"
    await records.decision("acme", decision("2", Action.CREATE), run_id=run_id, written=True)
    run = await records.get_run("acme", run_id) or {}
    assert run["state"] == "done"
    assert run["counts"] == {"update": 1, "create": 1}
    assert run["finished_at"]


async def test_a_user_counts_once_per_run(redis: ArqRedis) -> None:
    records = Store(redis, 3600)
    run_id = await records.create_run("acme", mode="full", trigger=API)
    await records.decision("acme", decision("1", Action.UPDATE), run_id=run_id, written=True)
    # A retried step finds its write done: the run still updated that user.
    await records.decision("acme", decision("1", Action.UNCHANGED), run_id=run_id, written=False)
    await records.decision("acme", decision("2", Action.UNCHANGED), run_id=run_id, written=False)
    await records.decision("acme", decision("2", Action.SUSPEND), run_id=run_id, written=True)
    run = await records.get_run("acme", run_id) or {}
    assert run["counts"] == {"update": 1, "suspend": 1}
    assert run["processed"] == 2


async def test_a_dry_run_keeps_a_plan_and_no_failing_users(redis: ArqRedis) -> None:
    records = Store(redis, 3600)
    run_id = await records.create_run("acme", mode="full", trigger=API, dry_run=True)
    await records.decision(
        "acme", decision("9"), run_id=run_id, written=False, dry_run=True, error="x"
    )
    run = await records.get_run("acme", run_id) or {}
    assert run["dry_run"] is True
    assert run["plan"] == [
        {
            "user": "9",
            "action": "update",
            "reason": "because",
            "diff": {"title": {"old": "a", "new": "b"}},
            "at": run["plan"][0]["at"],
            "run": run_id,
            "written": False,
            "dry_run": True,
            "error": "x",
        }
    ]
    assert await records.user_errors("acme") == {}


async def test_history_keeps_the_newest_decisions_first(redis: ArqRedis) -> None:
    records = Store(redis, 3600)
    for n in range(HISTORY_LENGTH + 5):
        await records.decision("acme", decision("1"), run_id=None, written=bool(n % 2))
    history = await records.history("acme", "1")
    assert len(history) == HISTORY_LENGTH
    assert history[0]["written"] is False  # the last one, n = HISTORY_LENGTH + 4


async def test_an_error_marks_the_user_failing_until_it_succeeds(redis: ArqRedis) -> None:
    records = Store(redis, 3600)
    failed = Decision("3", Action.ERROR, "Lucca user 3: firstName should be text")
    await records.decision("acme", failed, run_id=None, written=False, error=failed.reason)
    assert "3" in await records.user_errors("acme")
    await records.decision("acme", decision("3"), run_id=None, written=True)
    assert await records.user_errors("acme") == {}


async def test_a_pages_unchanged_users_leave_the_failing_list_in_one_command(
    redis: ArqRedis,
) -> None:
    """A page's quiet `unchanged` decisions clear their users' errors with one read and one
    delete, and still tell who recovered; an error recorded after them in the batch stays."""
    store = Store(redis, 3600)
    for user in ("1", "3", "5"):
        failed = Decision(user, Action.ERROR, "Elevo refused the update")
        await store.decision("acme", failed, run_id=None, written=False, error=failed.reason)
    batch = DecisionBatch(store.records, store.runs, "acme")
    batch.add(Decision("1", Action.UNCHANGED, "in sync"), run_id=None, written=False)
    batch.add(Decision("2", Action.UNCHANGED, "in sync"), run_id=None, written=False)
    again = Decision("3", Action.ERROR, "still refused")
    batch.add(again, run_id=None, written=False, error=again.reason)
    batch.add(Decision("4", Action.UPDATE, "title"), run_id=None, written=True)
    batch.add(Decision("5", Action.UNCHANGED, "in sync"), run_id=None, written=False)
    assert await batch.flush() == {"1", "5"}
    assert set(await store.user_errors("acme")) == {"3"}
    assert [e["action"] for e in await store.history("acme", "1")] == ["error"]
    assert await store.history("acme", "2") == []
    assert [e["action"] for e in await store.history("acme", "4")] == ["update"]


async def test_recent_runs_are_newest_first_and_forget_expired_ones(redis: ArqRedis) -> None:
    records = Store(redis, 3600)
    first = await records.create_run("acme", mode="full", trigger=Trigger(TriggerKind.NIGHTLY))
    second = await records.create_run("acme", mode="changes", trigger=Trigger(TriggerKind.POLL))
    await redis.delete(f"t:acme:run:{first}")
    runs = await records.recent_runs("acme")
    assert [r["id"] for r in runs] == [second]


async def test_a_held_run_is_resolved_once(redis: ArqRedis) -> None:
    records = Store(redis, 3600)
    run_id = await records.create_run("acme", mode="full", trigger=API)
    await records.runs.set_state("acme", run_id, RunState.HELD, held=["9", "10"])
    assert await records.runs.held_users("acme", run_id) == ["9", "10"]
    assert await records.runs.resolve(
        "acme", run_id, Resolution.CONFIRMED, by="admin", by_run="next"
    )
    assert not await records.runs.resolve("acme", run_id, Resolution.SUPERSEDED, by_run="later")
    run = await records.runs.get("acme", run_id)
    assert run is not None
    assert (run.resolution, run.resolved_by_run) == (Resolution.CONFIRMED, "next")
    document = await records.get_run("acme", run_id) or {}
    assert (document["resolution"], document["resolved_by"]) == ("confirmed", "admin")
    assert not await records.runs.resolve("acme", "gone", Resolution.DISMISSED)
    assert not await redis.exists(keys.run("acme", "gone"))
