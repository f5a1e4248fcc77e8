"""GET /sync/{tenant}'s document: what it says of this tenant only."""

from __future__ import annotations

from app.service import jobs
from app.service.health import queue_depths
from app.service.resources import Resources
from app.service.runs import status_document
from app.store import keys
from tests.factories import TENANT


async def test_the_queue_depth_is_this_tenants(res: Resources) -> None:
    await jobs.enqueue_user_syncs(res.redis, TENANT, ["416", "417"])
    await jobs.enqueue_user_syncs(res.redis, "globex", [str(i) for i in range(1, 51)])
    assert (await status_document(res, TENANT))["queue_depth"] == 2
    assert (await status_document(res, "globex"))["queue_depth"] == 50


async def test_a_paused_elevo_is_shown_with_why_and_for_how_long(res: Resources) -> None:
    assert (await status_document(res, TENANT))["elevo_paused"] is None
    for _ in range(5):  # five requests left unanswered: the tenant's Elevo calls wait
        await res.elevo_pause.note_unanswered(TENANT, within=30, threshold=5, pause=10)
    paused = (await status_document(res, TENANT))["elevo_paused"]
    assert paused["why"] == "unanswered"
    assert 9 < paused["seconds"] <= 10
    assert (await status_document(res, "globex"))["elevo_paused"] is None


async def test_the_depth_counts_the_steps_of_runs_too(res: Resources) -> None:
    await jobs.enqueue_user_syncs(res.redis, TENANT, ["416"])
    await jobs.enqueue_reconcile_step(res.redis, jobs.Job.RECONCILE_PAGE, TENANT, "r", 0)
    assert (await status_document(res, TENANT))["queue_depth"] == 2
    assert await queue_depths(res) == {keys.queue(): 1, keys.runs_queue(): 1}
