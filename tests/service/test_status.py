"""GET /sync/{tenant}'s document: what it says of this tenant only."""

from __future__ import annotations

from app.service import jobs
from app.service.resources import Resources
from app.service.runs import status_document
from tests.factories import TENANT


async def test_the_queue_depth_is_this_tenants(res: Resources) -> None:
    await jobs.enqueue_user_syncs(res.redis, TENANT, ["416", "417"])
    await jobs.enqueue_user_syncs(res.redis, "globex", [str(i) for i in range(1, 51)])
    assert (await status_document(res, TENANT))["queue_depth"] == 2
    assert (await status_document(res, "globex"))["queue_depth"] == 50
