"""What a run keeps once it ends: its working sets go (held runs keep theirs), and a real
run's `unchanged` outcomes become a count (sync-rules.md: `unchanged` is counted per run)."""

from __future__ import annotations

from arq.connections import ArqRedis

from app.core.decision import Action, Decision
from app.service.outcomes import DecisionBatch
from app.store import keys, run_progress, run_rows
from app.store.records import Records
from app.store.run_end import FOLD_CHUNK, INLINE_MAX
from app.store.run_model import RunMode, RunState, Trigger, TriggerKind, draft_run
from app.store.runs import RunStore

T = "acme"
API = Trigger(TriggerKind.API)
ACTIONS = {"1": Action.UNCHANGED, "2": Action.UPDATE, "3": Action.UNCHANGED, "4": Action.SKIPPED}


async def run_with(
    redis: ArqRedis,
    outcomes: dict[str, Action],
    *,
    dry_run: bool = False,
    trigger: Trigger = API,
    mode: RunMode = RunMode.FULL,
) -> tuple[RunStore, str]:
    """A run whose users got these outcomes, and a working set of each part."""
    runs = RunStore(redis, 3600)
    run_id = await runs.create(T, draft_run(mode=mode, trigger=trigger, dry_run=dry_run))
    batch = DecisionBatch(Records(redis, 3600), runs, T, dry_run=dry_run)
    for user, action in outcomes.items():
        batch.add(Decision(user, action, "because"), run_id=run_id, written=False)
    await batch.flush()
    for key in keys.run_working_sets(T, run_id):
        await redis.sadd(key, "1")
    return runs, run_id


async def working_sets_left(redis: ArqRedis, run_id: str) -> int:
    return int(await redis.exists(*keys.run_working_sets(T, run_id)))


async def test_a_run_done_or_failed_drops_its_working_sets(redis: ArqRedis) -> None:
    for state in (RunState.DONE, RunState.FAILED):
        runs, run_id = await run_with(redis, ACTIONS)
        assert await working_sets_left(redis, run_id) == len(keys.RUN_WORKING_PARTS)
        await runs.set_state(T, run_id, state)
        assert await working_sets_left(redis, run_id) == 0
        # What the run shows stays: its record and the outcomes that did something.
        assert await redis.exists(keys.run(T, run_id))
        assert await run_rows.outcomes(redis, T, run_id) == {"2": "update", "4": "skipped"}


async def test_a_held_run_keeps_its_working_sets_for_its_review(redis: ArqRedis) -> None:
    runs, run_id = await run_with(redis, ACTIONS)
    await runs.set_state(T, run_id, RunState.HELD, held=["2"])
    assert await working_sets_left(redis, run_id) == len(keys.RUN_WORKING_PARTS)


async def test_an_ended_run_counts_its_unchanged_without_keeping_them(redis: ArqRedis) -> None:
    runs, run_id = await run_with(redis, ACTIONS)
    await runs.set_state(T, run_id, RunState.DONE)
    assert await run_rows.outcomes(redis, T, run_id) == {"2": "update", "4": "skipped"}
    report = await runs.report(T, run_id)
    assert report is not None
    expected = {"unchanged": 2, "update": 1, "skipped": 1}
    assert dict(report.counts) == expected
    assert report.processed == len(ACTIONS)
    assert "quiet_unchanged" not in report.document()
    [(_, counts)] = await run_rows.headers_and_counts(redis, T, [run_id])
    assert counts == expected


async def test_ending_twice_counts_once(redis: ArqRedis) -> None:
    """A finish retried after it ended sets the state again: nothing is counted twice."""
    runs, run_id = await run_with(redis, ACTIONS)
    await runs.set_state(T, run_id, RunState.DONE)
    await runs.set_state(T, run_id, RunState.DONE)
    report = await runs.report(T, run_id)
    assert report is not None
    assert report.counts["unchanged"] == 2


async def test_a_large_run_is_counted_a_chunk_at_a_time(redis: ArqRedis) -> None:
    users = {str(n): Action.UNCHANGED for n in range(1, 2 * FOLD_CHUNK + 500)}
    users["1"] = Action.CREATE
    runs, run_id = await run_with(redis, users)
    await runs.set_state(T, run_id, RunState.DONE)
    report = await runs.report(T, run_id)
    assert report is not None
    assert dict(report.counts) == {"create": 1, "unchanged": len(users) - 1}
    assert await run_rows.outcomes(redis, T, run_id) == {"1": "create"}


async def test_a_dry_run_keeps_every_row_of_its_plan(redis: ArqRedis) -> None:
    runs, run_id = await run_with(redis, ACTIONS, dry_run=True)
    await runs.set_state(T, run_id, RunState.DONE)
    assert len(await run_rows.outcomes(redis, T, run_id)) == len(ACTIONS)


async def test_a_webhook_run_keeps_its_one_outcome_in_its_record(redis: ArqRedis) -> None:
    """A webhook's run ends by counting what it expects: no working sets to drop, and its
    outcome (even `unchanged`) stays, in the run's record rather than a hash of its own."""
    runs = RunStore(redis, 3600)
    new = draft_run(mode=RunMode.USERS, trigger=Trigger.webhook("employee.updated"), expected=1)
    run_id = await runs.create(T, new)
    await runs.count(T, run_id, "7", Action.UNCHANGED.value)
    report = await runs.report(T, run_id)
    assert report is not None
    assert report.run.state is RunState.DONE
    assert dict(report.counts) == {"unchanged": 1}
    assert report.processed == 1
    assert "outcomes" not in report.document()
    assert await run_rows.outcomes(redis, T, run_id) == {"7": "unchanged"}
    [(_, counts)] = await run_rows.headers_and_counts(redis, T, [run_id])
    assert counts == {"unchanged": 1}
    assert not await redis.exists(keys.run_users(T, run_id))


async def test_a_small_run_keeps_its_outcomes_in_its_record(redis: ArqRedis) -> None:
    runs, run_id = await run_with(redis, ACTIONS, mode=RunMode.USERS)
    await runs.set_state(T, run_id, RunState.DONE)
    assert not await redis.exists(keys.run_users(T, run_id))
    assert await run_rows.outcomes(redis, T, run_id) == {"2": "update", "4": "skipped"}
    report = await runs.report(T, run_id)
    assert report is not None
    assert dict(report.counts) == {"unchanged": 2, "update": 1, "skipped": 1}


async def test_a_larger_run_keeps_its_outcomes_hash(redis: ArqRedis) -> None:
    users = {str(n): Action.UPDATE for n in range(1, INLINE_MAX + 2)}
    runs, run_id = await run_with(redis, users)
    await runs.set_state(T, run_id, RunState.DONE)
    assert await redis.hlen(keys.run_users(T, run_id)) == len(users)
    report = await runs.report(T, run_id)
    assert report is not None
    assert dict(report.counts) == {"update": len(users)}


async def test_an_ended_run_keeps_no_progress_mark(redis: ArqRedis) -> None:
    """Only the watchdog reads `progress_at`, of runs under way; a late step of a run that
    ended does not write it back."""
    runs, run_id = await run_with(redis, ACTIONS, mode=RunMode.USERS)
    await run_progress.note_progress(redis, T, run_id)
    assert await redis.hexists(keys.run(T, run_id), "progress_at")
    await runs.set_state(T, run_id, RunState.DONE)
    await run_progress.note_progress(redis, T, run_id)
    assert not await redis.hexists(keys.run(T, run_id), "progress_at")


async def test_a_real_run_stores_no_dry_run_mark_and_shows_it(redis: ArqRedis) -> None:
    runs, real = await run_with(redis, ACTIONS)
    _, dry = await run_with(redis, ACTIONS, dry_run=True)
    assert not await redis.hexists(keys.run(T, real), "dry_run")
    for run_id, expected in ((real, False), (dry, True)):
        report = await runs.report(T, run_id)
        assert report is not None
        assert report.run.dry_run is expected
        assert report.document()["dry_run"] is expected


async def test_what_an_ended_run_keeps_stays_compactly_encoded(redis: ArqRedis) -> None:
    """A nightly run's few recorded outcomes (most were unchanged) are written afresh: a
    table shrunk by the fold keeps its size; its expiry stays."""
    users = {str(n): Action.UNCHANGED for n in range(1, 1001)}
    users |= {str(n): Action.SKIPPED for n in range(1, 81)}
    runs, run_id = await run_with(redis, users)
    assert await redis.object("encoding", keys.run_users(T, run_id)) == b"hashtable"
    await runs.set_state(T, run_id, RunState.DONE)
    assert await redis.hlen(keys.run_users(T, run_id)) == 80
    assert await redis.object("encoding", keys.run_users(T, run_id)) == b"listpack"
    assert 0 < await redis.ttl(keys.run_users(T, run_id)) <= 3600
    report = await runs.report(T, run_id)
    assert report is not None
    assert dict(report.counts) == {"skipped": 80, "unchanged": 920}


async def test_outcomes_too_long_for_the_record_stay_in_their_hash(redis: ArqRedis) -> None:
    users = {str(n): Action.UPDATE for n in range(1_000_000, 1_000_005)}
    runs, run_id = await run_with(redis, users, mode=RunMode.USERS)
    await runs.set_state(T, run_id, RunState.DONE)
    assert await redis.hlen(keys.run_users(T, run_id)) == len(users)
    assert await redis.object("encoding", keys.run(T, run_id)) == b"listpack"
    assert await run_rows.outcomes(redis, T, run_id) == {u: "update" for u in users}
