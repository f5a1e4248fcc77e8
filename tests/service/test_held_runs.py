"""Held runs (service.md, "Sync triggers"): a confirmation approves the list the operator saw,
a dismissal drops it, a later run supersedes it; and dry full runs never touch the real run's
lock. Reconciliations are driven step by step over the fakes, with a guard that holds any
suspension."""

from __future__ import annotations

import pytest

from app.core.tenant import GuardConfig
from app.service import steps
from app.service.errors import BadTrigger, RunConflict, UnknownRun
from app.service.resources import Resources
from app.service.results import Done
from app.service.runs import Dismissal, RunRequest, request_run, status_document
from app.store.run_model import Resolution, RunState
from tests.factories import LUCCA_ID, TENANT, make_tenant_config
from tests.fakes import NOW, Upstreams

FULL = RunRequest.of_mode("full")
RUNNING = "20260101T000000-aaaaaa"


@pytest.fixture(autouse=True)
async def strict_guard(res: Resources, upstreams: Upstreams) -> None:
    """Any suspension holds the run; Camille (416) is in Lucca and up to date in Elevo."""
    guard = GuardConfig(max_suspend_ratio=0.0, max_suspend_count=0)
    await res.tenants.put(make_tenant_config(guard=guard))
    res.contexts.forget(TENANT)
    upstreams.lucca.add(manager=None)
    upstreams.elevo.add(enterprise={"manager": None})


def vanish(upstreams: Upstreams, *user_ids: int) -> None:
    """Managed, active profiles whose Lucca users are gone: each is a suspension."""
    for user_id in user_ids:
        mail = f"u{user_id}@acme.example"
        upstreams.elevo.add(
            id=f"p-{user_id}",
            externalId=str(user_id),
            userName=mail,
            emails=[{"value": mail, "type": "work", "primary": True}],
        )


def active(upstreams: Upstreams, user_id: int) -> bool:
    return bool(upstreams.elevo.profiles[f"p-{user_id}"]["active"])


async def start(res: Resources, request: RunRequest | Dismissal = FULL) -> str:
    return await request_run(res, TENANT, request, operator="admin")


async def drive(res: Resources, run_id: str) -> str:
    """Every step of a reconciliation of one page; its final state."""
    assert await steps.reconcile_snapshot_step(res, TENANT, run_id) == Done("ok")
    assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")
    result = await steps.reconcile_finish_step(res, TENANT, run_id)
    assert isinstance(result, Done)
    return result.result


async def held_run(res: Resources, upstreams: Upstreams, *gone: int) -> str:
    vanish(upstreams, *gone)
    run_id = await start(res)
    assert await drive(res, run_id) == "held"
    return run_id


async def test_a_held_run_lists_only_the_profiles_active_now_that_it_would_suspend(
    res: Resources, upstreams: Upstreams
) -> None:
    vanish(upstreams, 901, 902, 903)
    run_id = await start(res)
    assert await steps.reconcile_snapshot_step(res, TENANT, run_id) == Done("ok")
    assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")
    upstreams.elevo.profiles["p-903"]["active"] = False  # suspended meanwhile (its contract end)
    assert await steps.reconcile_finish_step(res, TENANT, run_id) == Done("held")
    assert await res.runs.held_users(TENANT, run_id) == ["901", "902"]
    assert active(upstreams, 901)
    assert active(upstreams, 902)
    guard = (await status_document(res, TENANT))["safety_guard"]
    assert guard == {"holding": True, "run": run_id, "users": ["901", "902"]}


async def test_a_confirmation_suspends_the_listed_still_due_and_weighs_the_others(
    res: Resources, upstreams: Upstreams
) -> None:
    held_id = await held_run(res, upstreams, 901, 902)
    vanish(upstreams, 904)  # gone after the operator saw the list: not approved
    confirm_id = await start(res, RunRequest.of_mode("full", confirms=held_id))
    held = await res.runs.get(TENANT, held_id)
    assert held is not None
    assert (held.resolution, held.resolved_by_run) == (Resolution.CONFIRMED, confirm_id)
    report = await res.runs.report(TENANT, held_id)
    assert report is not None
    assert report.fields["resolved_by"] == "admin"

    assert await drive(res, confirm_id) == "held"  # 904 faces the guard as usual
    assert not active(upstreams, 901)
    assert not active(upstreams, 902)
    assert active(upstreams, 904)
    assert await res.runs.held_users(TENANT, confirm_id) == ["904"]
    confirm = await res.runs.report(TENANT, confirm_id)
    assert confirm is not None
    assert (confirm.counts["suspend"], confirm.counts["held"]) == (2, 1)
    assert (await status_document(res, TENANT))["safety_guard"]["run"] == confirm_id
    with pytest.raises(RunConflict, match=f"confirmed already, by run {confirm_id}"):
        await start(res, RunRequest.of_mode("full", confirms=held_id))


async def test_a_confirmed_profile_no_longer_due_is_not_suspended(
    res: Resources, upstreams: Upstreams
) -> None:
    held_id = await held_run(res, upstreams, 901, 902)
    upstreams.lucca.add(id=902, mail="u902@acme.example", manager=None)  # back in Lucca
    confirm_id = await start(res, RunRequest.of_mode("full", confirms=held_id))
    assert await drive(res, confirm_id) == "done"
    assert not active(upstreams, 901)
    assert active(upstreams, 902)
    guard = (await status_document(res, TENANT))["safety_guard"]
    assert guard == {"holding": False, "run": None, "users": []}


async def test_a_later_held_run_supersedes_the_earlier(
    res: Resources, upstreams: Upstreams
) -> None:
    first = await held_run(res, upstreams, 901)
    second = await held_run(res, upstreams, 902)
    run = await res.runs.get(TENANT, first)
    assert run is not None
    assert (run.resolution, run.resolved_by_run) == (Resolution.SUPERSEDED, second)
    with pytest.raises(RunConflict, match=f"superseded by run {second}"):
        await start(res, RunRequest.of_mode("full", confirms=first))
    assert (await status_document(res, TENANT))["safety_guard"]["run"] == second


async def test_a_confirmation_while_a_full_run_runs_is_refused_naming_it(
    res: Resources, upstreams: Upstreams
) -> None:
    held_id = await held_run(res, upstreams, 901)
    assert await res.full_run_lock.claim(TENANT, RUNNING) is None
    before = len(await res.runs.recent(TENANT))
    with pytest.raises(RunConflict, match=RUNNING):
        await start(res, RunRequest.of_mode("full", confirms=held_id))
    assert await res.full_run_lock.holder(TENANT) == RUNNING
    assert len(await res.runs.recent(TENANT)) == before  # no run recorded, nothing merged
    run = await res.runs.get(TENANT, held_id)
    assert run is not None
    assert run.resolution is None


async def test_true_is_refused_naming_the_held_run(res: Resources, upstreams: Upstreams) -> None:
    unnamed = RunRequest.of_mode("full", confirm_unnamed=True)
    with pytest.raises(BadTrigger, match="no run is held"):
        await start(res, unnamed)
    held_id = await held_run(res, upstreams, 901)
    with pytest.raises(BadTrigger, match=held_id):
        await start(res, unnamed)


async def test_a_dismissed_run_suspends_nobody_and_the_next_run_weighs_again(
    res: Resources, upstreams: Upstreams
) -> None:
    held_id = await held_run(res, upstreams, 901)
    assert await start(res, Dismissal(held_id)) == held_id
    run = await res.runs.get(TENANT, held_id)
    assert run is not None
    assert run.resolution is Resolution.DISMISSED
    assert not (await status_document(res, TENANT))["safety_guard"]["holding"]
    assert active(upstreams, 901)
    with pytest.raises(RunConflict, match="dismissed"):
        await start(res, RunRequest.of_mode("full", confirms=held_id))
    with pytest.raises(RunConflict, match="dismissed"):
        await start(res, Dismissal(held_id))
    again = await start(res)
    assert await drive(res, again) == "held"
    assert await res.runs.held_users(TENANT, again) == ["901"]


async def test_only_a_real_held_run_may_be_confirmed(res: Resources, upstreams: Upstreams) -> None:
    with pytest.raises(UnknownRun):
        await start(res, RunRequest.of_mode("full", confirms="20260101T000000-000000"))
    done = await start(res)
    assert await drive(res, done) == "done"
    with pytest.raises(RunConflict, match="done, not held"):
        await start(res, RunRequest.of_mode("full", confirms=done))
    vanish(upstreams, 901)
    dry = await start(res, RunRequest.of_mode("full", dry_run=True))
    assert await drive(res, dry) == "held"
    with pytest.raises(RunConflict, match="a dry run"):
        await start(res, Dismissal(dry))
    assert active(upstreams, 901)
    assert not (await status_document(res, TENANT))["safety_guard"]["holding"]


async def test_a_dry_confirmation_plans_the_suspensions_and_resolves_nothing(
    res: Resources, upstreams: Upstreams
) -> None:
    held_id = await held_run(res, upstreams, 901)
    dry = await start(res, RunRequest.of_mode("full", dry_run=True, confirms=held_id))
    assert await drive(res, dry) == "done"
    assert active(upstreams, 901)
    report = await res.runs.report(TENANT, dry)
    assert report is not None
    assert report.plan is not None
    assert {entry["user"]: entry["action"] for entry in report.plan}["901"] == "suspend"
    run = await res.runs.get(TENANT, held_id)
    assert run is not None
    assert (run.state, run.resolution) == (RunState.HELD, None)
    assert (await status_document(res, TENANT))["safety_guard"]["run"] == held_id


async def test_a_dry_full_run_never_frees_nor_joins_the_real_one(
    res: Resources, upstreams: Upstreams
) -> None:
    real = await start(res)
    dry = await start(res, RunRequest.of_mode("full", dry_run=True))
    assert dry != real
    assert await drive(res, dry) == "done"
    assert await res.full_run_lock.holder(TENANT) == real  # still the real run's
    assert await start(res) == real  # a full run asked now still joins the real one
    assert await drive(res, real) == "done"
    assert await res.full_run_lock.holder(TENANT) is None
    report = await res.runs.report(TENANT, dry)
    assert report is not None
    assert [entry["user"] for entry in report.plan or []] == [LUCCA_ID]


async def test_a_confirmation_records_the_token_that_made_it(
    res: Resources, upstreams: Upstreams
) -> None:
    held_id = await held_run(res, upstreams, 901)
    operator = "0123456789ab"  # a tenant token's id
    confirm = RunRequest.of_mode("full", confirms=held_id)
    confirm_id = await request_run(res, TENANT, confirm, operator=operator)
    report = await res.runs.report(TENANT, held_id)
    assert report is not None
    assert report.fields["resolved_by"] == operator
    entries = await res.audit.entries(TENANT)
    assert entries[0] == {
        "at": NOW.isoformat(),
        "by": operator,
        "action": "confirm",
        "run": held_id,
        "by_run": confirm_id,
    }
