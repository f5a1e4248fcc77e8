"""The employee use case, continued: managers synced first, cycles and follow-ups; writes
that meet a changed or vanished profile; snapshots and links (Lucca and Elevo fakes, real Redis).
"""

from __future__ import annotations

import pytest

from app.clients.lucca import LuccaBatch
from app.core import scim
from app.core.decision import Action
from app.service.context import TenantContext
from app.service.employee import EmployeeSync
from app.service.resources import Resources
from app.store import keys, queue
from app.store.links import ProfileLinks
from app.store.snapshot import Snapshot
from tests.factories import (
    LUCCA_ID,
    MANAGER_LUCCA_ID,
    MANAGER_PROFILE_ID,
    PROFILE_ID,
    TENANT,
    make_profile,
)
from tests.fakes import (
    Upstreams,
    employee,
    last_entry,
    link_manager,
    scim_error,
)

# -- managers -----------------------------------------------------------------------------


async def test_a_manager_without_a_profile_is_synced_first(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add()
    upstreams.lucca.add(id=int(MANAGER_LUCCA_ID), mail="helene@acme.example", manager=None)
    sync = employee(res, tenant_ctx)
    outcome = await sync.sync(LUCCA_ID)
    assert outcome.decision.action is Action.CREATE
    manager, report = upstreams.elevo.bodies("POST")
    assert manager["externalId"] == MANAGER_LUCCA_ID
    assert report["externalId"] == LUCCA_ID
    assert report[scim.ENTERPRISE]["manager"] == {"value": "p-1"}
    assert (await last_entry(res, MANAGER_LUCCA_ID))["action"] == "create"
    assert sync.summary().follow_ups == {}
    # The manager is done for this instance: asked again, nothing more is sent.
    requests = len(upstreams.elevo.requests)
    again = await sync.sync(MANAGER_LUCCA_ID)
    assert again.decision.profile_id == "p-1"
    assert len(upstreams.elevo.requests) == requests


async def test_a_manager_linked_in_elevo_is_found_there_and_remembered(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add()
    upstreams.elevo.add(
        id=MANAGER_PROFILE_ID, externalId=MANAGER_LUCCA_ID, userName="helene@acme.example"
    )
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.CREATE
    [created] = upstreams.elevo.bodies("POST")
    assert created[scim.ENTERPRISE]["manager"] == {"value": MANAGER_PROFILE_ID}
    links = ProfileLinks(res.redis, TENANT)
    assert await links.profile_id(MANAGER_LUCCA_ID) == MANAGER_PROFILE_ID
    assert [r.url.path for r in upstreams.lucca.requests] == ["/acme/api/v3/users"]  # 416 only


async def test_a_manager_cycle_syncs_one_without_its_manager_and_asks_for_a_follow_up(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add()  # 416, managed by 12
    upstreams.lucca.add(
        id=int(MANAGER_LUCCA_ID), mail="helene@acme.example", manager={"id": int(LUCCA_ID)}
    )
    sync = employee(res, tenant_ctx)
    outcome = await sync.sync(LUCCA_ID)
    assert outcome.decision.action is Action.CREATE
    manager, report = upstreams.elevo.bodies("POST")
    assert manager["externalId"] == MANAGER_LUCCA_ID
    assert "manager" not in manager[scim.ENTERPRISE]  # its manager (416) had no profile yet
    assert report[scim.ENTERPRISE]["manager"] == {"value": "p-1"}
    # 12 comes back now that 416 has a profile.
    assert sync.summary().follow_ups == {MANAGER_LUCCA_ID: LUCCA_ID}
    waiting = keys.awaiting_manager(TENANT, LUCCA_ID)
    assert await res.redis.exists(waiting)  # until 12's sync is queued
    await sync.follow_ups_kept()
    assert not await res.redis.exists(waiting)


async def test_without_manager_reads_a_report_waits_for_its_managers_profile(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add()
    upstreams.lucca.add(id=int(MANAGER_LUCCA_ID), mail="helene@acme.example", manager=None)
    first = employee(res, tenant_ctx, fetch_managers=False)
    outcome = await first.sync(LUCCA_ID)
    assert outcome.decision.action is Action.CREATE
    assert "manager" not in upstreams.elevo.bodies("POST")[0][scim.ENTERPRISE]
    assert first.summary().follow_ups == {LUCCA_ID: MANAGER_LUCCA_ID}
    waiting = keys.awaiting_manager(TENANT, MANAGER_LUCCA_ID)
    assert await res.redis.smembers(waiting) == {LUCCA_ID.encode()}
    # When the manager gets its profile, the report is handed back for a sync.
    later = employee(res, tenant_ctx)
    await later.sync(MANAGER_LUCCA_ID)
    assert later.summary().follow_ups == {LUCCA_ID: MANAGER_LUCCA_ID}
    await later.follow_ups_kept()  # its sync queued, the report waits no more
    assert not await res.redis.exists(waiting)


async def test_a_manager_left_to_its_own_job_takes_nothing_from_its_reports(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    # The run's snapshot has the report and her manager's profile, not the manager's own
    # link; the manager's own job created her profile after the run's read (a notice came).
    upstreams.lucca.add()
    upstreams.lucca.add(id=int(MANAGER_LUCCA_ID), mail="helene@acme.example", manager=None)
    upstreams.elevo.add()
    snapshot = Snapshot(profiles={LUCCA_ID: make_profile()}, profile_ids={})
    mark = await queue.notice_mark(res.redis, TENANT)
    await queue.bump_generations(res.redis, TENANT, [MANAGER_LUCCA_ID], None)
    await link_manager(res)
    sync = employee(res, tenant_ctx, snapshot=snapshot, fetch_managers=False, read_mark=mark)
    manager = await sync.sync(MANAGER_LUCCA_ID)
    assert (manager.decision.action, manager.decision.profile_id) == (Action.SKIPPED, None)
    report = await sync.sync(LUCCA_ID)
    assert report.decision.action is Action.UNCHANGED  # her manager stays hers
    assert upstreams.elevo.bodies("PATCH") == []


async def test_a_manager_in_the_page_at_hand_is_synced_from_it(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add()
    upstreams.lucca.add(id=int(MANAGER_LUCCA_ID), mail="helene@acme.example", manager=None)
    page = await tenant_ctx.lucca.list_page(0)
    lucca_reads = len(upstreams.lucca.requests)

    async def no_fetch(user_id: str, *, fresh: bool = False) -> LuccaBatch:
        raise AssertionError(f"{user_id} is in the page: no Lucca read")

    sync = EmployeeSync(tenant_ctx, res, no_fetch)
    outcome = await sync.sync(LUCCA_ID, page)
    assert outcome.decision.action is Action.CREATE
    assert [b["externalId"] for b in upstreams.elevo.bodies("POST")] == [MANAGER_LUCCA_ID, LUCCA_ID]
    assert len(upstreams.lucca.requests) == lucca_reads


# -- stale writes -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [412, 404])
async def test_a_stale_write_reads_the_profile_again_and_retries(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams, status: int
) -> None:
    await link_manager(res)
    links = ProfileLinks(res.redis, TENANT)
    await links.remember(LUCCA_ID, PROFILE_ID)
    upstreams.lucca.add(mail="camille.martin@new.example")  # rewrites emails: If-Match
    upstreams.elevo.add()
    upstreams.elevo.script("PATCH", lambda _: scim_error(status))
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.UPDATE
    assert outcome.written
    patches = [r for r in upstreams.elevo.requests if r.method == "PATCH"]
    assert len(patches) == 2
    assert all(r.headers["If-Match"] == 'W/"1"' for r in patches)
    # Read afresh by externalId after the link was forgotten, then linked again.
    lookups = [r.url.params.get("filter", "") for r in upstreams.elevo.requests]
    assert f'externalId eq "{LUCCA_ID}"' in lookups
    assert await links.profile_id(LUCCA_ID) == PROFILE_ID


async def test_a_profile_that_keeps_changing_is_an_error_after_a_few_tries(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    await link_manager(res)
    upstreams.lucca.add(mail="camille.martin@new.example")
    upstreams.elevo.add()
    upstreams.elevo.fail_next("PATCH", 412, times=3)
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.ERROR
    assert outcome.error is not None
    assert "kept changing" in outcome.error
    assert len(upstreams.elevo.bodies("PATCH")) == 3


async def test_a_stale_snapshot_is_read_afresh_after_a_stale_write(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(jobTitle="Lead developer")
    upstreams.elevo.add(meta={"version": 'W/"2"'})  # changed since the snapshot
    snapshot = Snapshot(
        profiles={LUCCA_ID: make_profile()},
        profile_ids={MANAGER_LUCCA_ID: MANAGER_PROFILE_ID},
    )
    upstreams.elevo.script("PATCH", lambda _: scim_error(404))
    sync = employee(res, tenant_ctx, snapshot=snapshot, fetch_managers=False)
    outcome = await sync.sync(LUCCA_ID)
    assert outcome.decision.action is Action.UPDATE
    assert len(upstreams.elevo.bodies("PATCH")) == 2


async def test_a_complete_snapshot_without_the_user_means_no_profile_no_lookup(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add()
    snapshot = Snapshot(profiles={}, profile_ids={MANAGER_LUCCA_ID: MANAGER_PROFILE_ID})
    outcome = await employee(res, tenant_ctx, snapshot=snapshot).sync(LUCCA_ID)
    assert outcome.decision.action is Action.CREATE
    assert [r.method for r in upstreams.elevo.requests] == ["POST"]


async def test_a_link_to_a_deleted_profile_is_forgotten_and_the_profile_found_again(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    await link_manager(res)
    links = ProfileLinks(res.redis, TENANT)
    await links.remember(LUCCA_ID, "p-deleted")
    upstreams.lucca.add()
    upstreams.elevo.add()
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.UNCHANGED
    assert outcome.decision.profile_id == PROFILE_ID
    assert await links.profile_id(LUCCA_ID) == PROFILE_ID


async def test_an_update_refused_with_409_is_a_conflict_on_the_users_own_profile(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    await link_manager(res)
    upstreams.lucca.add(jobTitle="Lead developer")
    upstreams.elevo.add()
    upstreams.elevo.script("PATCH", lambda _: scim_error(409, "uniqueness"))
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.CONFLICT
    assert outcome.decision.profile_id == PROFILE_ID
    assert outcome.error is not None
    assert outcome.error.startswith("Elevo refused the update")
    assert upstreams.elevo.profiles[PROFILE_ID]["title"] == "Développeuse"
