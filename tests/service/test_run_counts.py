"""A run of named users counts those users only: a manager synced on the side for a report's
sake is recorded in its own history, not in the run, so the run ends when its own users are
synced (docs/benchmarks.md, problem 5: such runs ended early)."""

from __future__ import annotations

from app.service import sync_user as job
from app.service.jobs import enqueue_user_syncs
from app.service.resources import Resources
from app.service.results import Done
from app.store import queue
from app.store.run_model import RunMode, Trigger, TriggerKind, draft_run
from tests.factories import LUCCA_ID, MANAGER_LUCCA_ID, TENANT
from tests.fakes import Upstreams


async def test_a_manager_created_for_a_report_is_not_counted_in_the_reports_run(
    res: Resources, upstreams: Upstreams
) -> None:
    upstreams.lucca.add()
    upstreams.lucca.add(id=int(MANAGER_LUCCA_ID), mail="helene@acme.example", manager=None)
    draft = draft_run(mode=RunMode.USERS, trigger=Trigger(TriggerKind.API), expected=2)
    run_id = await res.runs.create(TENANT, draft)
    await enqueue_user_syncs(res.redis, TENANT, [LUCCA_ID], run_id=run_id)
    generation = await queue.latest_generation(res.redis, TENANT, LUCCA_ID)
    assert generation is not None

    assert await job.sync_user(res, TENANT, LUCCA_ID, generation, run_id) == Done("create")
    report = await res.runs.report(TENANT, run_id)
    assert report is not None
    # Two creations, one of them the run's: the run waits for its second user.
    assert len(upstreams.elevo.bodies("POST")) == 2
    assert dict(report.counts) == {"create": 1}
    assert report.run.state.value == "running"
    [manager_entry] = await res.records.history(TENANT, MANAGER_LUCCA_ID)
    assert manager_entry["action"] == "create"
    assert manager_entry["run"] is None
