"""What raises an alert, read from the tenant's state; each transition noted once."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from app.secret import Secret
from app.service.alerts import AlertKind, check_alerts, failed_in_a_row, needs_attention
from app.service.context import TenantContext
from app.service.resources import Resources
from app.store.run_model import RunMode, RunState, Trigger, TriggerKind, draft_run
from tests.factories import TENANT
from tests.fakes import queued


@pytest.fixture
async def alerted(res: Resources, tenant_ctx: TenantContext) -> TenantContext:
    config = replace(
        tenant_ctx.config,
        alerts_url="https://alerts.example/hook",
        alerts_secret=Secret("alerts-secret-1"),
        alerts_failed_runs=2,
    )
    await res.tenants.put(config)
    res.contexts.forget(TENANT)
    found = await res.contexts.get(TENANT)
    assert found is not None
    return found


async def finished_run(res: Resources, state: RunState, *, dry_run: bool = False) -> str:
    new = draft_run(mode=RunMode.FULL, trigger=Trigger(TriggerKind.API), dry_run=dry_run)
    await res.runs.create(TENANT, new)
    await res.runs.set_state(TENANT, new.id, state)
    return new.id


async def test_each_flag_of_the_status_raises_its_alert(
    res: Resources, alerted: TenantContext
) -> None:
    assert await needs_attention(res, alerted) == {}
    await res.records.note(
        TENANT,
        held_run="r1",
        held_users=orjson.dumps(["1", "2"]).decode(),
        lucca_key_error="Lucca answered 401",
        elevo_token_error="Elevo answered 403",
        permission_loss="the key lost the field",
    )
    assert await needs_attention(res, alerted) == {
        AlertKind.HELD_RUN: {"run": "r1", "users": 2},
        AlertKind.LUCCA_KEY_REFUSED: {},
        AlertKind.ELEVO_TOKEN_REFUSED: {},
        AlertKind.PERMISSION_WARNING: {},
    }


async def test_failing_runs_need_the_threshold_in_a_row(res: Resources) -> None:
    first = await finished_run(res, RunState.FAILED)
    assert await failed_in_a_row(res, TENANT, 2) == []
    await finished_run(res, RunState.FAILED, dry_run=True)  # a dry run does not count
    second = await finished_run(res, RunState.FAILED)
    assert set(await failed_in_a_row(res, TENANT, 2)) == {first, second}
    await finished_run(res, RunState.DONE)
    assert await failed_in_a_row(res, TENANT, 2) == []


async def test_a_transition_is_noted_once_with_one_job(
    res: Resources, alerted: TenantContext
) -> None:
    await res.records.note(TENANT, elevo_token_error="Elevo answered 401")
    assert await check_alerts(res, TENANT) == 1
    assert await check_alerts(res, TENANT) == 0
    [notice_id] = await res.alerts.pending(TENANT)
    jobs = await queued(res)
    assert [job for job in jobs if job.startswith("alert:")] == [f"alert:{TENANT}:{notice_id}"]
    document = await res.alerts.notice(TENANT, notice_id)
    assert document is not None
    assert b"Elevo answered" not in document  # an upstream error's text is never sent
    await res.records.note(TENANT, elevo_token_error="")
    assert await check_alerts(res, TENANT) == 1
    assert await res.alerts.raised(TENANT) == set()


async def test_no_alerts_url_no_alerts(res: Resources, tenant_ctx: TenantContext) -> None:
    await res.records.note(TENANT, lucca_key_error="Lucca answered 401")
    assert await check_alerts(res, TENANT) == 0
    assert await res.alerts.pending(TENANT) == []
