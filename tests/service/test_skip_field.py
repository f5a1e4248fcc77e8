"""The skip field when Lucca leaves it out (sync-rules.md, "Absent means unticked" and
"Permission loss"): one read, then full runs driven step by step, PUT and the operator's accept,
against the Lucca and Elevo fakes and a real Redis."""

from __future__ import annotations

from dataclasses import replace

from app.core.decision import Action
from app.service import steps
from app.service.context import TenantContext
from app.service.resources import Resources
from app.service.results import Done
from app.service.runs import FULL_RUN, RunRequest, request_run
from app.service.skip_field import HELD_REASON
from app.service.tenants import put_tenant
from app.store.run_model import RunReport, RunState
from app.store.skip_field import SkipFieldMemory
from tests.factories import LUCCA_ID, PROFILE_ID, SKIP_FIELD, TENANT, make_tenant_config
from tests.fakes import Upstreams, employee, last_entry, link_manager, new_run

BOB = "417"
BOB_MAIL = "bob@acme.example"


def memory(res: Resources) -> SkipFieldMemory:
    return SkipFieldMemory(res.redis, TENANT)


async def last_seen_excluded(res: Resources, *user_ids: str) -> set[str]:
    return await memory(res).excluded_among(list(user_ids))


async def notes(res: Resources) -> dict[str, str]:
    return await res.records.notes(TENANT)


async def full_run(res: Resources, request: RunRequest = FULL_RUN) -> RunReport:
    """A reconciliation of one Lucca page, each step run in turn as the worker would."""
    run_id = await request_run(res, TENANT, request, operator="admin")
    assert await steps.reconcile_snapshot_step(res, TENANT, run_id) == Done("ok")
    assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")
    await steps.reconcile_finish_step(res, TENANT, run_id)
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    return report


# -- one read -----------------------------------------------------------------------------------


async def test_an_absent_skip_field_is_unticked(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    await link_manager(res)
    upstreams.lucca.add(jobTitle="Lead developer", extendedData={})
    upstreams.elevo.add()
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.UPDATE
    assert outcome.written
    assert "permission_loss" not in await notes(res)


async def test_the_last_seen_excluded_whose_field_vanished_is_held(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    await link_manager(res)
    await memory(res).note(excluded=[LUCCA_ID])
    upstreams.lucca.add(jobTitle="Lead developer", extendedData={})
    upstreams.elevo.add()
    run_id = await new_run(res)
    outcome = await employee(res, tenant_ctx, run_id=run_id).sync(LUCCA_ID)
    assert outcome.decision.action is Action.HELD
    assert outcome.decision.profile_id == PROFILE_ID  # its reports keep their manager
    assert not outcome.written
    assert upstreams.elevo.writes() == []
    entry = await last_entry(res)
    assert (entry["action"], entry["reason"], entry["written"]) == ("held", HELD_REASON, False)
    assert "permission_loss" not in await notes(res)  # one read proves no loss
    assert await last_seen_excluded(res, LUCCA_ID) == {LUCCA_ID}


async def test_the_field_shown_unticked_or_a_decided_listing_releases_the_hold(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    await link_manager(res)
    await memory(res).note(excluded=[LUCCA_ID])
    upstreams.lucca.add(jobTitle="Lead developer")  # the field is there, unticked
    upstreams.elevo.add()
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.UPDATE
    assert await last_seen_excluded(res, LUCCA_ID) == set()

    await memory(res).note(excluded=[LUCCA_ID])
    upstreams.lucca.add(jobTitle="CTO", extendedData={})  # absent, others show it
    outcome = await employee(res, tenant_ctx, skip_field_decided=True).sync(LUCCA_ID)
    assert outcome.decision.action is Action.UPDATE
    assert await last_seen_excluded(res, LUCCA_ID) == set()


async def test_an_excluded_read_is_remembered_but_not_by_a_dry_run(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(extendedData={SKIP_FIELD: {"id": 1, "value": True}})
    upstreams.elevo.add()
    outcome = await employee(res, tenant_ctx, dry_run=True).sync(LUCCA_ID)
    assert outcome.decision.action is Action.RELEASE
    assert await last_seen_excluded(res, LUCCA_ID) == set()
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.RELEASE
    assert await last_seen_excluded(res, LUCCA_ID) == {LUCCA_ID}


# -- complete listings --------------------------------------------------------------------------


async def test_a_tenant_where_nobody_has_the_field_syncs_fully_with_a_warning(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None, extendedData={})
    upstreams.lucca.add(id=int(BOB), mail=BOB_MAIL, manager=None, extendedData={})
    report = await full_run(res)
    assert report.run.state is RunState.DONE
    assert report.counts == {"create": 2}
    status = await notes(res)
    assert SKIP_FIELD in status["skip_field_warning"]
    assert not status.get("permission_loss")
    assert await memory(res).last_listing() == 0
    again = await full_run(res)  # never seen is never a loss
    assert again.run.state is RunState.DONE
    assert not (await notes(res)).get("permission_loss")


async def test_a_lost_section_holds_the_run_then_lifts_by_itself(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    camille = upstreams.lucca.add(manager=None)  # unticked
    bob = upstreams.lucca.add(
        id=int(BOB), mail=BOB_MAIL, manager=None, extendedData={SKIP_FIELD: True}
    )
    first = await full_run(res)
    assert first.counts == {"create": 1, "skipped": 1}  # Bob: excluded, no profile
    assert await memory(res).last_listing() == 2
    assert await last_seen_excluded(res, LUCCA_ID, BOB) == {BOB}

    camille["extendedData"] = bob["extendedData"] = {}  # the key lost the section
    camille["jobTitle"] = "CTO"
    writes = len(upstreams.elevo.writes())
    held = await full_run(res)
    assert held.run.state is RunState.HELD
    assert held.fields["waiting"].startswith("permission loss")
    assert held.counts == {"held": 1}  # Bob; nobody is created, changed or suspended
    assert len(upstreams.elevo.writes()) == writes
    assert SKIP_FIELD in (await notes(res))["permission_loss"]
    bob_entry = await last_entry(res, BOB)
    assert (bob_entry["action"], bob_entry["run"]) == ("held", held.run.id)

    # Meanwhile the others sync normally; Bob stays held.
    assert (await employee(res, tenant_ctx).sync(LUCCA_ID)).decision.action is Action.UPDATE
    assert (await employee(res, tenant_ctx).sync(BOB)).decision.action is Action.HELD
    # An unrelated PUT leaves the flag.
    await put_tenant(res, make_tenant_config())
    assert (await notes(res))["permission_loss"]

    bob["extendedData"] = {SKIP_FIELD: True}  # the section is back
    lifted = await full_run(res)
    assert lifted.run.state is RunState.DONE
    assert not (await notes(res))["permission_loss"]
    assert await memory(res).last_listing() == 1
    assert await last_seen_excluded(res, BOB) == {BOB}


async def test_a_held_employee_is_synced_by_a_listing_that_shows_the_field_on_others(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)  # Camille shows the field, unticked
    upstreams.lucca.add(id=int(BOB), mail=BOB_MAIL, manager=None, extendedData={})
    await memory(res).note(excluded=[BOB])
    assert (await employee(res, tenant_ctx).sync(BOB)).decision.action is Action.HELD
    report = await full_run(res)
    assert report.run.state is RunState.DONE
    assert report.counts == {"create": 2}
    assert (await last_entry(res, BOB))["action"] == "create"
    assert await last_seen_excluded(res, BOB) == set()


# -- PUT and the operator -----------------------------------------------------------------------


async def test_a_put_keeps_the_flag_and_a_new_skip_field_starts_afresh(res: Resources) -> None:
    await memory(res).note(excluded=[BOB])
    await memory(res).note_listing(3)
    await res.records.note(TENANT, permission_loss="lost", lucca_key_error="refused")
    await put_tenant(res, make_tenant_config(lucca_requests_per_minute=20))
    status = await notes(res)
    assert (status["permission_loss"], status["lucca_key_error"]) == ("lost", "")
    assert await memory(res).last_listing() == 3

    await put_tenant(res, replace(make_tenant_config(), skip_field="e_no_elevo"))
    assert (await notes(res))["permission_loss"] == ""
    assert await memory(res).last_listing() is None
    assert await last_seen_excluded(res, BOB) == set()


async def test_accepting_the_loss_lifts_the_flag_and_forgets_who_was_excluded(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None, extendedData={})
    upstreams.lucca.add(id=int(BOB), mail=BOB_MAIL, manager=None, extendedData={})
    await memory(res).note(excluded=[BOB])
    await memory(res).note_listing(2)
    await res.records.note(TENANT, permission_loss="lost")
    report = await full_run(res, RunRequest.of_mode("full", accept_skip_field_loss=True))
    assert report.run.state is RunState.DONE
    assert report.counts == {"create": 2}  # Bob too: the checkbox is gone on purpose
    assert not (await notes(res))["permission_loss"]
    assert await last_seen_excluded(res, BOB) == set()
