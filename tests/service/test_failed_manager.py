"""A manager whose own sync fails never costs the reports their manager (issue 10, point 4):
they keep the manager value Elevo has, and sync again once that manager syncs (Lucca and Elevo
fakes, real Redis)."""

from __future__ import annotations

import orjson

from app.core import scim
from app.core.decision import Action
from app.service.context import TenantContext
from app.service.resources import Resources
from app.store import keys
from tests.factories import (
    LUCCA_ID,
    MANAGER_LUCCA_ID,
    MANAGER_PROFILE_ID,
    PROFILE_ID,
    SKIP_FIELD,
    TENANT,
)
from tests.fakes import Upstreams, employee, patch_operations

HELENE = "helene@acme.example"


def touches_the_manager(upstreams: Upstreams) -> bool:
    """Whether a PATCH of 416's profile changed its manager."""
    return any(
        operation.get("path", "").startswith(f"{scim.ENTERPRISE}:manager")
        for request in upstreams.elevo.writes()
        if request.method == "PATCH" and request.url.path.endswith(PROFILE_ID)
        for operation in orjson.loads(request.content)["Operations"]
    )


async def test_an_elevo_400_on_the_manager_keeps_the_reports_manager(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(jobTitle="Lead developer")  # 416, managed by 12
    upstreams.lucca.add(id=int(MANAGER_LUCCA_ID), mail=HELENE, manager=None, jobTitle="CTO")
    upstreams.elevo.add(id=MANAGER_PROFILE_ID, externalId=MANAGER_LUCCA_ID, userName=HELENE)
    upstreams.elevo.add()  # 416's profile, managed by 12's
    upstreams.elevo.fail_next("PATCH", 400)  # Elevo refuses the manager's new title
    sync = employee(res, tenant_ctx)
    manager = await sync.sync(MANAGER_LUCCA_ID)
    assert manager.decision.action is Action.ERROR
    report = await sync.sync(LUCCA_ID)  # in the same run: the manager's outcome is known
    assert report.decision.action is Action.UPDATE
    assert "Lead developer" in str(patch_operations(upstreams))
    assert not touches_the_manager(upstreams)
    kept = upstreams.elevo.profiles[PROFILE_ID][scim.ENTERPRISE]["manager"]
    assert kept == {"value": MANAGER_PROFILE_ID}
    waiting = keys.awaiting_manager(TENANT, MANAGER_LUCCA_ID)
    assert await res.redis.smembers(waiting) == {LUCCA_ID.encode()}

    # The manager syncs later: its report is handed back for a sync of its own.
    later = employee(res, tenant_ctx)
    assert (await later.sync(MANAGER_LUCCA_ID)).decision.action is Action.UPDATE
    assert later.summary().follow_ups == {LUCCA_ID: MANAGER_LUCCA_ID}
    await later.follow_ups_kept()  # its sync queued, the report waits no more
    assert not await res.redis.exists(waiting)


async def test_a_manager_without_a_profile_whose_value_is_no_boolean_leaves_elevos_value(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(jobTitle="Lead developer")
    upstreams.lucca.add(
        id=int(MANAGER_LUCCA_ID), mail=HELENE, manager=None, extendedData={SKIP_FIELD: "yes"}
    )
    upstreams.elevo.add()  # 416's profile names a manager profile the sync does not know
    sync = employee(res, tenant_ctx)
    report = await sync.sync(LUCCA_ID)
    assert report.decision.action is Action.UPDATE
    assert (await sync.sync(MANAGER_LUCCA_ID)).decision.action is Action.ERROR
    assert upstreams.elevo.bodies("POST") == []  # the manager is not created
    assert not touches_the_manager(upstreams)  # the report keeps the manager Elevo has
    assert "manager" not in report.decision.diff
    waiting = keys.awaiting_manager(TENANT, MANAGER_LUCCA_ID)
    assert await res.redis.smembers(waiting) == {LUCCA_ID.encode()}


async def test_a_dry_run_plans_the_same_and_remembers_nothing(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(jobTitle="Lead developer")
    upstreams.lucca.add(
        id=int(MANAGER_LUCCA_ID), mail=HELENE, manager=None, extendedData={SKIP_FIELD: "yes"}
    )
    upstreams.elevo.add()
    plan = await employee(res, tenant_ctx, dry_run=True).sync(LUCCA_ID)
    assert plan.decision.action is Action.UPDATE
    assert scim.MANAGER not in plan.decision.diff
    assert upstreams.elevo.writes() == []
    assert not await res.redis.exists(keys.awaiting_manager(TENANT, MANAGER_LUCCA_ID))
