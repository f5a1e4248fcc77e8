"""The employee use case: EmployeeSync against the Lucca and Elevo fakes and a real Redis.

Each test states the path taken (the outcome's action), its effects on Elevo (the requests
sent, counted) and in Redis (history, errors, id map, run counts, plan, status notes).
"""

from __future__ import annotations

from datetime import date
from typing import Any
from unittest.mock import ANY

import pytest

from app.clients.errors import ElevoUnavailable
from app.core import scim
from app.core.decision import Action
from app.service.context import TenantContext
from app.service.outcomes import Outcome
from app.service.resources import Resources
from app.store import keys
from app.store.links import ProfileLinks
from app.store.parked import ParkedUsers
from tests.factories import (
    LUCCA_ID,
    MAIL,
    MANAGER_LUCCA_ID,
    PROFILE_ID,
    SKIP_FIELD,
    TENANT,
)
from tests.fakes import (
    Upstreams,
    employee,
    last_entry,
    link_manager,
    new_run,
    patch_operations,
    scim_error,
)

# -- the paths of the sync-rules table --------------------------------------------------------


async def test_a_new_employee_gets_a_profile_linked_to_it(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    run_id = await new_run(res)
    outcome = await employee(res, tenant_ctx, run_id=run_id).sync(LUCCA_ID)
    assert outcome.decision.action is Action.CREATE
    assert outcome.written
    assert outcome.decision.profile_id == "p-1"
    [created] = upstreams.elevo.bodies("POST")
    assert created["externalId"] == LUCCA_ID
    assert created["userName"] == MAIL
    assert created[scim.ELEVO]["syncSource"] == "lucca"
    assert await ProfileLinks(res.redis, TENANT).profile_id(LUCCA_ID) == "p-1"
    entry = await last_entry(res)
    assert entry["action"] == "create"
    assert entry["run"] == run_id
    assert entry["written"] is True
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert report.counts == {"create": 1}


async def test_an_update_patches_the_fields_that_differ_and_nothing_else(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    await link_manager(res)
    upstreams.lucca.add(jobTitle="Lead developer")
    upstreams.elevo.add()
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.UPDATE
    assert outcome.decision.profile_id == PROFILE_ID
    assert patch_operations(upstreams) == [
        [{"op": "replace", "path": "title", "value": "Lead developer"}]
    ]
    # Conditional whenever the version is known: the copy kept after it is then exact.
    assert upstreams.elevo.writes()[0].headers["If-Match"] == 'W/"1"'
    assert upstreams.elevo.profiles[PROFILE_ID]["title"] == "Lead developer"
    # Level-triggered: the same sync again finds nothing to write.
    again = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert again.decision.action is Action.UNCHANGED
    assert len(upstreams.elevo.writes()) == 1


async def test_a_hand_made_profile_with_the_users_name_is_adopted(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    await link_manager(res)
    upstreams.lucca.add()
    upstreams.elevo.add(externalId=None, elevo={"syncSource": None})
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.ADOPT
    assert outcome.decision.profile_id == PROFILE_ID
    [operations] = patch_operations(upstreams)
    paths = {op["path"]: op["value"] for op in operations}
    assert paths == {"externalId": LUCCA_ID, scim.SYNC_SOURCE: "lucca"}
    assert await ProfileLinks(res.redis, TENANT).profile_id(LUCCA_ID) == PROFILE_ID


async def test_an_employee_hired_again_is_reactivated(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    await link_manager(res)
    upstreams.lucca.add()
    upstreams.elevo.add(active=False)
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.REACTIVATE
    assert patch_operations(upstreams) == [[{"op": "replace", "path": "active", "value": True}]]


async def test_an_employee_who_left_is_suspended(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    await link_manager(res)
    upstreams.lucca.add(dtContractEnd="2025-02-28T00:00:00")
    upstreams.elevo.add()
    sync = employee(res, tenant_ctx)
    outcome = await sync.sync(LUCCA_ID)
    assert outcome.decision.action is Action.SUSPEND
    assert outcome.decision.reason == "contract ended"
    assert patch_operations(upstreams) == [[{"op": "replace", "path": "active", "value": False}]]
    assert sync.summary().contract_ends == {}  # already ended: nothing to re-check


async def test_an_employee_gone_from_lucca_is_suspended(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.elevo.add()
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.SUSPEND
    assert outcome.decision.reason == "no longer in Lucca"
    assert patch_operations(upstreams) == [[{"op": "replace", "path": "active", "value": False}]]


async def test_a_ticked_skip_box_releases_the_profile(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(extendedData={SKIP_FIELD: {"id": 1, "value": True}})
    upstreams.elevo.add()
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.RELEASE
    assert patch_operations(upstreams) == [[{"op": "remove", "path": scim.SYNC_SOURCE}]]
    assert "syncSource" not in upstreams.elevo.profiles[PROFILE_ID][scim.ELEVO]


async def test_an_excluded_employee_without_a_profile_is_skipped_without_a_write(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(extendedData={SKIP_FIELD: True})
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.SKIPPED
    assert upstreams.elevo.writes() == []


# -- conflicts ----------------------------------------------------------------------------


async def test_a_user_name_held_by_another_employees_profile_is_a_conflict(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    upstreams.elevo.add(externalId="999")
    run_id = await new_run(res)
    outcome = await employee(res, tenant_ctx, run_id=run_id).sync(LUCCA_ID)
    assert outcome.decision.action is Action.CONFLICT
    assert outcome.decision.profile_id is None  # never someone else's profile
    assert outcome.error is not None
    assert "externalId 999" in outcome.error
    assert upstreams.elevo.writes() == []
    assert LUCCA_ID in await res.records.user_errors(TENANT)
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert report.errors == {LUCCA_ID: outcome.error}


async def test_a_create_refused_with_409_is_a_conflict(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    upstreams.elevo.script("POST", lambda _: scim_error(409, "uniqueness"))
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.CONFLICT
    assert outcome.error is not None
    assert outcome.error.startswith("Elevo refused the create")
    assert await ProfileLinks(res.redis, TENANT).profile_id(LUCCA_ID) is None


async def test_a_profile_created_meanwhile_by_another_job_is_decided_again(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    await link_manager(res)
    upstreams.lucca.add()

    def created_meanwhile(_: Any) -> Any:
        upstreams.elevo.add()  # the other job's profile, exactly as this one wanted it
        return scim_error(409, "uniqueness")

    upstreams.elevo.script("POST", created_meanwhile)
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.UNCHANGED
    assert outcome.decision.profile_id == PROFILE_ID
    assert [r.method for r in upstreams.elevo.writes()] == ["POST"]


async def test_a_user_name_owned_by_another_lucca_user_is_not_created(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    sync = employee(res, tenant_ctx, user_name_owners={MAIL.upper().casefold(): "7"})
    outcome = await sync.sync(LUCCA_ID)
    assert outcome.decision.action is Action.CONFLICT
    assert "Lucca user 7's" in outcome.decision.reason
    assert upstreams.elevo.writes() == []


# -- one user's own errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"extendedData": {SKIP_FIELD: {"value": "yes"}}}, "should be a checkbox"),
        ({"mail": None, "login": None}, "neither mail nor login"),
        ({"firstName": 12}, "should be text"),
    ],
    ids=["bad-skip-value", "no-mail-nor-login", "invalid-item"],
)
async def test_a_users_bad_data_is_that_users_error(
    res: Resources,
    tenant_ctx: TenantContext,
    upstreams: Upstreams,
    overrides: dict[str, Any],
    message: str,
) -> None:
    upstreams.lucca.add(manager=None, **overrides)
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.ERROR
    assert outcome.error is not None
    assert message in outcome.error
    assert upstreams.elevo.writes() == []
    errors = await res.records.user_errors(TENANT)
    assert errors[LUCCA_ID]["error"] == outcome.error


async def test_a_user_fixed_after_an_error_leaves_the_failing_list(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None, mail=None, login=None)
    await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert LUCCA_ID in await res.records.user_errors(TENANT)
    upstreams.lucca.add(manager=None)
    await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert await res.records.user_errors(TENANT) == {}


# -- upstream errors ----------------------------------------------------------------------


async def test_a_lucca_401_flags_the_key_and_parks_the_user(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.fail_next("GET", 401)
    run_id = await new_run(res)
    outcome = await employee(res, tenant_ctx, run_id=run_id).sync(LUCCA_ID)
    assert outcome.decision.action is Action.HELD
    assert outcome.decision.reason.startswith("waiting: Lucca refuses the tenant's API key")
    message = await res.budget.revoked(TENANT)
    assert message is not None
    assert "401" in message
    assert 0 < await res.redis.ttl(keys.lucca_revoked(TENANT)) <= 600
    assert (await res.records.notes(TENANT))["lucca_key_error"] == message
    assert upstreams.elevo.requests == []
    # Not the employee's failure: kept, with the reason, until the key works.
    assert LUCCA_ID not in await res.records.user_errors(TENANT)
    assert await ParkedUsers(res.redis, TENANT).counts() == {"lucca_key": (1, ANY)}
    assert (await last_entry(res))["action"] == "held"
    run = await res.runs.report(TENANT, run_id)
    assert run is not None
    assert run.fields["waiting"].startswith("waiting: Lucca refuses")


async def test_an_elevo_401_notes_the_token_error_and_parks_the_user(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    upstreams.elevo.fail_next("GET", 401)
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.HELD
    assert "Elevo refuses the tenant's token" in outcome.decision.reason
    notes = await res.records.notes(TENANT)
    assert "401" in notes["elevo_token_error"]
    assert "lucca_key_error" not in notes
    assert await res.budget.revoked(TENANT) is None
    assert await ParkedUsers(res.redis, TENANT).counts() == {"elevo_token": (1, ANY)}


async def test_an_elevo_400_is_the_employees_error_not_a_wait(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    await link_manager(res)
    upstreams.lucca.add(jobTitle="Lead developer")
    upstreams.elevo.add()
    upstreams.elevo.fail_next("PATCH", 400)
    outcome = await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert outcome.decision.action is Action.ERROR
    assert LUCCA_ID in await res.records.user_errors(TENANT)
    assert await ParkedUsers(res.redis, TENANT).counts() == {}


async def test_a_retryable_error_is_left_to_the_job_and_records_nothing(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None)
    upstreams.elevo.fail_next("GET", 503)
    with pytest.raises(ElevoUnavailable):
        await employee(res, tenant_ctx).sync(LUCCA_ID)
    assert await res.records.history(TENANT, LUCCA_ID) == []


# -- dry runs and reconciliations ----------------------------------------------------------


async def test_a_dry_run_writes_nothing_to_elevo_and_records_a_plan(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add()  # its manager (12) has no profile and is not in Lucca: gone
    upstreams.lucca.add(id=417, mail="bob@acme.example", jobTitle="CTO", manager=None)
    upstreams.elevo.add(
        id="p-bob",
        externalId="417",
        userName="bob@acme.example",
        emails=[{"value": "bob@acme.example", "type": "work", "primary": True}],
        enterprise={"manager": None},
    )
    run_id = await new_run(res, dry_run=True)
    sync = employee(res, tenant_ctx, run_id=run_id, dry_run=True)
    created = await sync.sync(LUCCA_ID)
    updated = await sync.sync("417")
    assert (created.decision.action, created.written) == (Action.CREATE, False)
    assert (updated.decision.action, updated.written) == (Action.UPDATE, False)
    assert upstreams.elevo.writes() == []
    assert not await res.redis.exists(keys.awaiting_manager(TENANT, MANAGER_LUCCA_ID))
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert report.plan is not None
    plan = {entry["user"]: entry for entry in report.plan}
    assert plan["417"]["action"] == "update"
    assert plan["417"]["diff"] == {"title": {"old": "Développeuse", "new": "CTO"}}
    assert plan[LUCCA_ID]["action"] == "create"
    assert plan[LUCCA_ID]["dry_run"] is True
    # A plan lives under its run: no history, no link remembered.
    assert await res.records.history(TENANT, LUCCA_ID) == []
    assert await res.records.history(TENANT, "417") == []
    assert not await res.redis.exists(keys.idmap(TENANT))


async def test_a_reconciliation_defers_its_suspensions_to_the_guard(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.elevo.add()  # gone from Lucca
    run_id = await new_run(res)
    sync = employee(res, tenant_ctx, run_id=run_id, defer_suspensions=True)
    outcome = await sync.sync(LUCCA_ID)
    assert outcome == Outcome(outcome.decision, written=False)
    assert outcome.decision.action is Action.SUSPEND
    assert sync.summary().deferred == {LUCCA_ID: outcome.decision}
    assert upstreams.elevo.writes() == []
    # Recorded only once the guard has weighed the run.
    assert await res.records.history(TENANT, LUCCA_ID) == []
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    assert report.processed == 0


async def test_a_future_contract_end_is_left_to_re_check_on_time(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None, dtContractEnd="2025-06-30T00:00:00")
    sync = employee(res, tenant_ctx)
    outcome = await sync.sync(LUCCA_ID)
    assert outcome.decision.action is Action.CREATE
    assert sync.summary().contract_ends == {LUCCA_ID: date(2025, 6, 30)}


async def test_the_summary_is_a_copy(
    res: Resources, tenant_ctx: TenantContext, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None, dtContractEnd="2025-06-30T00:00:00")
    sync = employee(res, tenant_ctx)
    before = sync.summary()
    await sync.sync(LUCCA_ID)
    assert before.contract_ends == {}
    assert sync.tenant == TENANT
