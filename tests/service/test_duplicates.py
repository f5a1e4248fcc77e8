"""A creation whose answer was lost: marked, looked up again before anything else is created,
and a second profile it left for the employee retired (issue 11, point 9)."""

from __future__ import annotations

import httpx
import pytest

from app.clients.errors import ElevoUnavailable
from app.core import scim
from app.core.decision import Action
from app.service.context import TenantContext
from app.service.resources import Resources
from app.store import keys
from tests.factories import LUCCA_ID, PROFILE_ID, TENANT
from tests.fakes import Upstreams, employee, link_manager, new_run, scim_error

LATER_ID = "later-profile"


async def unsure(res: Resources) -> bool:
    return await res.redis.zscore(keys.unsure_creates(TENANT), LUCCA_ID) is not None


def lose_the_next_creations_answer(upstreams: Upstreams) -> None:
    """Elevo applies the next POST, and its answer never comes back."""

    def applied_then_lost(request: httpx.Request) -> httpx.Response:
        upstreams.elevo._create(request)
        raise httpx.ReadTimeout("the answer never came", request=request)

    upstreams.elevo.script("POST", applied_then_lost)


async def test_a_creation_answered_leaves_no_mark(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add()
    await link_manager(res)
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.CREATE
    assert not await unsure(res)


async def test_a_creation_refused_by_elevo_leaves_no_mark(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add()
    await link_manager(res)
    upstreams.elevo.script("POST", lambda _: scim_error(400, "bad"))
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.ERROR
    assert not await unsure(res)


async def test_a_lost_answer_is_looked_up_before_anything_is_created_again(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add()
    await link_manager(res)

    lose_the_next_creations_answer(upstreams)
    with pytest.raises(ElevoUnavailable):
        await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert await unsure(res)
    # The mark sends the retry to Elevo by externalId: it finds the profile, creates nothing.
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.UNCHANGED
    assert len(upstreams.elevo.bodies("POST")) == 1
    assert len(upstreams.elevo.profiles) == 1


async def test_a_managers_creation_found_after_its_lost_answer_brings_back_its_reports(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    await res.redis.sadd(keys.awaiting_manager(TENANT, LUCCA_ID), "417")  # a report waits

    lose_the_next_creations_answer(upstreams)
    with pytest.raises(ElevoUnavailable):
        await employee(res, tenant_ctx).sync(LUCCA_ID)
    retry = employee(res, tenant_ctx)
    assert (await retry.sync(LUCCA_ID)).decision.action is Action.UNCHANGED
    # The report gets the manager's profile now, not at the next reconciliation.
    assert retry.summary().follow_ups == {"417": LUCCA_ID}
    await retry.follow_ups_kept()
    assert not await res.redis.exists(keys.awaiting_manager(TENANT, LUCCA_ID))


def two_profiles(upstreams: Upstreams, *, later_managed: bool = True) -> None:
    """Camille's profile, and a later one with her externalId under her old email."""
    upstreams.elevo.add()
    elevo = {"syncSource": scim.SYNC_SOURCE_VALUE if later_managed else None}
    upstreams.elevo.add(
        id=LATER_ID,
        userName="camille.old@example.com",
        emails=[{"value": "camille.old@example.com", "type": "work"}],
        meta={"created": "2025-01-02T09:00:07Z"},
        elevo=elevo,
    )


async def test_two_profiles_keep_the_older_and_retire_the_later(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add()
    await link_manager(res)
    two_profiles(upstreams)
    run_id = await new_run(res)
    outcome = await employee(res, tenant_ctx, run_id=run_id).sync(LUCCA_ID)

    assert outcome.decision.action is Action.UNCHANGED
    later = upstreams.elevo.profiles[LATER_ID]
    assert "externalId" not in later
    assert later["active"] is False
    assert "syncSource" not in later[scim.ELEVO]
    # `unchanged` is only counted (sync-rules.md): the history shows the retirement.
    [retired] = await res.records.history(TENANT, LUCCA_ID)
    assert retired["action"] == "suspend"
    assert retired["retired_profile"] == LATER_ID
    assert retired["kept_profile"] == PROFILE_ID
    [shown] = await res.records.duplicates(TENANT)
    assert (shown["kept"], shown["suspended"]) == (PROFILE_ID, LATER_ID)
    # Not counted in the run: the safety guard never weighs it.
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert dict(report.counts) == {"unchanged": 1}


async def test_a_later_profile_the_sync_did_not_create_is_left_alone(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add()
    await link_manager(res)
    two_profiles(upstreams, later_managed=False)
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.ERROR
    assert LATER_ID in (outcome.error or "")
    assert upstreams.elevo.writes() == []


async def test_a_plan_retires_nothing(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add()
    await link_manager(res)
    two_profiles(upstreams)
    outcome = await employee(res, tenant_ctx, dry_run=True).sync(LUCCA_ID)
    assert outcome.decision.action is Action.UNCHANGED
    assert upstreams.elevo.writes() == []
    assert await res.records.duplicates(TENANT) == []
