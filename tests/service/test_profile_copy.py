"""The copy of each employee's profile kept with its version (issue 14, point 2): a change is
written with `If-Match` and no read; a stale copy (412) or a decision that writes nothing goes
back to the read path; `unchanged` is counted, not recorded (sync-rules.md)."""

from __future__ import annotations

from typing import Any

import httpx

from app.core import scim
from app.core.decision import Action
from app.core.profile import ElevoProfile, profile_from_scim
from app.service.context import TenantContext
from app.service.resources import Resources
from app.store import keys
from app.store.links import PROFILE_COPY_SECONDS, ProfileLinks
from tests.factories import LUCCA_ID, PROFILE_ID, TENANT
from tests.fakes import Upstreams, employee, link_manager, new_run


async def _synced_once(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> dict[str, Any]:
    """Camille synced once through the read path (her title changed): her copy is kept."""
    await link_manager(res)
    await ProfileLinks(res.redis, TENANT).remember(LUCCA_ID, PROFILE_ID)
    item = upstreams.lucca.add(jobTitle="Lead developer")
    upstreams.elevo.add()
    first = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert first.decision.action is Action.UPDATE
    assert [r.method for r in upstreams.elevo.requests] == ["GET", "PATCH"]
    upstreams.elevo.requests.clear()
    return item


async def _copy(res: Resources) -> ElevoProfile | None:
    return (await ProfileLinks(res.redis, TENANT).linked(LUCCA_ID))[1]


def _as_elevo_holds(upstreams: Upstreams) -> ElevoProfile:
    return profile_from_scim(upstreams.elevo.profiles[PROFILE_ID])


def _same(copy: ElevoProfile | None, held: ElevoProfile) -> None:
    assert copy is not None
    assert copy.version == held.version
    assert dict(copy.attributes) == dict(held.attributes)
    assert copy.emails == held.emails
    assert copy.custom_fields == held.custom_fields


async def test_a_second_change_is_written_from_the_copy_without_a_read(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    item = await _synced_once(res, tenant_ctx, upstreams)
    _same(await _copy(res), _as_elevo_holds(upstreams))
    ttl = await res.redis.ttl(keys.profile_copy(TENANT, LUCCA_ID))
    assert 0 < ttl <= PROFILE_COPY_SECONDS
    item["firstName"] = "Camilla"
    item["mail"] = "camilla.martin@acme.example"  # userName and the emails list too
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.UPDATE
    [patch] = upstreams.elevo.requests  # no GET
    assert patch.method == "PATCH"
    assert patch.headers["If-Match"] == 'W/"2"'
    held = _as_elevo_holds(upstreams)
    assert held.attributes[scim.GIVEN_NAME] == "Camilla"
    assert held.attributes[scim.WORK_EMAIL] == "camilla.martin@acme.example"
    # The copy after the write is what Elevo holds at the new version.
    _same(await _copy(res), held)


async def test_a_stale_copy_sends_the_sync_back_to_the_read_path(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    item = await _synced_once(res, tenant_ctx, upstreams)
    held = upstreams.elevo.profiles[PROFILE_ID]
    held["title"] = "Edited by hand"
    held["meta"]["version"] = 'W/"9"'
    item["firstName"] = "Camilla"
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.UPDATE
    assert [(r.method, r.headers.get("If-Match")) for r in upstreams.elevo.requests] == [
        ("PATCH", 'W/"2"'),  # the copy's version: 412
        ("GET", None),
        ("PATCH", 'W/"9"'),
    ]
    assert set(outcome.decision.diff) == {scim.GIVEN_NAME, scim.TITLE}
    assert held["title"] == "Lead developer"
    # The link held: the profile was read by its id, and the copy is current again.
    assert await ProfileLinks(res.redis, TENANT).profile_id(LUCCA_ID) == PROFILE_ID
    _same(await _copy(res), _as_elevo_holds(upstreams))


async def test_a_copy_that_finds_nothing_to_write_is_confirmed_by_a_read(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    await _synced_once(res, tenant_ctx, upstreams)
    held = upstreams.elevo.profiles[PROFILE_ID]
    held["title"] = "Edited by hand"
    held["meta"]["version"] = 'W/"9"'
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    # The copy says up to date; Elevo, read, says otherwise.
    assert outcome.decision.action is Action.UPDATE
    assert [r.method for r in upstreams.elevo.requests] == ["GET", "PATCH"]
    assert held["title"] == "Lead developer"


async def test_a_plan_never_decides_on_the_copy(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    item = await _synced_once(res, tenant_ctx, upstreams)
    item["firstName"] = "Camilla"
    run_id = await new_run(res, dry_run=True)
    outcome = await employee(res, tenant_ctx, run_id=run_id, dry_run=True).sync(LUCCA_ID)
    assert outcome.decision.action is Action.UPDATE
    assert [r.method for r in upstreams.elevo.requests] == ["GET"]


async def test_a_write_without_a_version_keeps_no_copy(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    """A write whose answer tells no new version (ETags off) leaves the next sync on the
    read path."""
    await link_manager(res)
    await ProfileLinks(res.redis, TENANT).remember(LUCCA_ID, PROFILE_ID)
    upstreams.lucca.add(jobTitle="Lead developer")
    upstreams.elevo.add()
    upstreams.elevo.script("PATCH", lambda _: httpx.Response(204))
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.UPDATE
    assert await _copy(res) is None
    assert not await res.redis.exists(keys.profile_copy(TENANT, LUCCA_ID))


async def test_unchanged_is_counted_in_its_run_not_recorded(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    await _synced_once(res, tenant_ctx, upstreams)
    history = await res.records.history(TENANT, LUCCA_ID)
    run_id = await new_run(res)
    outcome = await employee(res, tenant_ctx, run_id=run_id).sync(LUCCA_ID)
    assert outcome.decision.action is Action.UNCHANGED
    assert await res.records.history(TENANT, LUCCA_ID) == history
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert report.counts == {"unchanged": 1}
