"""A full run never overwrites a fresher per-employee write (issue 10, point 6).

The page is delayed between its Lucca read and its writes (a hook around its sync) while a
webhook changes the employee and the employee's own job writes the newer value.
"""

from __future__ import annotations

import pytest

from app.service import reconcile, reconcile_finish, reconcile_sync, steps
from app.service import sync_user as job
from app.service.fresher import NOTICED_AFTER_READ
from app.service.jobs import enqueue_user_syncs
from app.service.resources import Resources
from app.service.results import Done
from app.service.runs import RunRequest, request_run
from app.store import keys, queue
from app.store.locks import UserLock
from app.store.run_model import RunMode
from tests.factories import LUCCA_ID, PROFILE_ID, TENANT
from tests.fakes import Upstreams, last_entry


async def start_full_run(res: Resources) -> str:
    run_id = await request_run(res, TENANT, RunRequest(RunMode.FULL), operator="admin")
    tenant_ctx = await res.contexts.get(TENANT)
    assert tenant_ctx is not None
    assert await reconcile.snapshot_page(res, tenant_ctx, run_id, 1) is None
    return run_id


def between_read_and_write(monkeypatch: pytest.MonkeyPatch, meanwhile: object) -> None:
    """Run `meanwhile()` after the page read Lucca, before it writes anything."""
    real_sync_page = reconcile._sync_page

    async def delayed(*args: object, **kwargs: object) -> None:
        await meanwhile()  # type: ignore[operator]
        await real_sync_page(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reconcile, "_sync_page", delayed)


def title(upstreams: Upstreams) -> str:
    return str(upstreams.elevo.profiles[PROFILE_ID]["title"])


async def test_a_page_read_before_a_webhook_never_writes_its_older_values(
    res: Resources, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = upstreams.lucca.add(manager=None, jobTitle="Cheffe de projet")
    upstreams.elevo.add(enterprise={"manager": None})  # titled "Développeuse"
    run_id = await start_full_run(res)

    async def webhook() -> None:
        item["jobTitle"] = "Directrice technique"  # changed in Lucca after the page's read
        await enqueue_user_syncs(res.redis, TENANT, [LUCCA_ID])
        generation = await queue.latest_generation(res.redis, TENANT, LUCCA_ID)
        assert generation is not None
        assert await job.sync_user(res, TENANT, LUCCA_ID, generation) == Done("update")

    between_read_and_write(monkeypatch, webhook)
    assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")
    assert title(upstreams) == "Directrice technique"  # the newer value stays
    titles = [op["value"] for ops in _patches(upstreams) for op in ops if op["path"] == "title"]
    assert titles == ["Directrice technique"]  # the page wrote nothing
    entry = await last_entry(res)
    assert (entry["action"], entry["reason"], entry["run"]) == (
        "skipped",
        NOTICED_AFTER_READ,
        run_id,
    )


async def test_a_notice_before_the_page_read_leaves_the_page_its_write(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add(manager=None, jobTitle="Cheffe de projet")
    upstreams.elevo.add(enterprise={"manager": None})
    await enqueue_user_syncs(res.redis, TENANT, [LUCCA_ID])  # its job has not run yet
    run_id = await start_full_run(res)
    assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")
    assert title(upstreams) == "Cheffe de projet"  # the page read after that notice: it writes
    assert (await last_entry(res))["action"] == "update"


async def test_a_vanished_employee_noticed_after_the_check_read_is_left_to_its_job(
    res: Resources, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstreams.lucca.add(id=417, mail="bob@acme.example", login="bob", manager=None)
    upstreams.elevo.add(enterprise={"manager": None})  # Camille's, not listed by Lucca
    run_id = await start_full_run(res)
    assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")
    real_fetch_ids = reconcile_sync.fetch_ids

    async def read_then_rehired(*args: object, **kwargs: object) -> object:
        read = await real_fetch_ids(*args, **kwargs)  # type: ignore[arg-type]
        upstreams.lucca.add(manager=None)  # back in Lucca; her job has not run yet
        await enqueue_user_syncs(res.redis, TENANT, [LUCCA_ID])
        return read

    monkeypatch.setattr(reconcile_finish, "fetch_ids", read_then_rehired)
    assert await steps.reconcile_finish_step(res, TENANT, run_id) == Done("done")
    assert upstreams.elevo.profiles[PROFILE_ID]["active"] is True  # never suspended
    assert (await last_entry(res))["action"] == "skipped"


def _patches(upstreams: Upstreams) -> list[list[dict[str, object]]]:
    return [body["Operations"] for body in upstreams.elevo.bodies("PATCH")]


async def test_an_employee_its_own_job_keeps_busy_is_left_to_the_finish(
    res: Resources, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconcile_sync, "EMPLOYEE_TRIES", 1)
    upstreams.lucca.add(manager=None, jobTitle="Cheffe de projet")
    upstreams.elevo.add(enterprise={"manager": None})
    run_id = await start_full_run(res)
    own_job = UserLock(res.redis, TENANT, LUCCA_ID)
    assert await own_job.acquire(60) == 0.0  # longer than a reconciliation waits
    assert await steps.reconcile_page_step(res, TENANT, run_id, 0) == Done("ok")
    assert title(upstreams) == "Développeuse"  # not written under the job's lock
    retry = await res.redis.smembers(keys.run_part(TENANT, run_id, "retry"))
    assert retry == {LUCCA_ID.encode()}
    await own_job.release(0.0)
    assert await steps.reconcile_finish_step(res, TENANT, run_id) == Done("done")
    assert title(upstreams) == "Cheffe de projet"  # the finish read it again and wrote it
