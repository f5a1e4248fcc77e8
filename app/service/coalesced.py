"""What webhook events beyond a tenant's ingest rate left to do, done by the drain job they
queue (one at a time per tenant, COALESCE_WINDOW_SECONDS after the first event) and by the
minute's tick, should a drain be lost: one run for their employees, one per department, one
`changes` poll when asked."""

from __future__ import annotations

import logging

from app.service.jobs import enqueue_department
from app.service.resources import Resources
from app.service.runs import CHANGES_RUN, RunRequest, start_run
from app.store import ingest
from app.store.run_model import RunMode, Trigger, TriggerKind, draft_run

log = logging.getLogger(__name__)

# As many as a `POST /sync` may name; more wait for the next drain or tick.
MAX_USERS_PER_RUN = 10_000
COALESCED = Trigger(TriggerKind.WEBHOOK_COALESCED)


async def drain_coalesced(res: Resources, tenant: str) -> int:
    """Start the runs the coalesced events ask for; how many were started."""
    taken = await ingest.take_coalesced(res.redis, tenant, MAX_USERS_PER_RUN)
    started = 0
    if taken.user_ids:
        await start_run(res, tenant, RunRequest.of_users(taken.user_ids), trigger=COALESCED)
        started += 1
    for department_id in taken.department_ids:
        run_id = await res.runs.create(
            tenant, draft_run(mode=RunMode.DEPARTMENT, trigger=COALESCED)
        )
        await enqueue_department(res.redis, tenant, department_id, run_id)
        started += 1
    if taken.poll:
        await start_run(res, tenant, CHANGES_RUN, trigger=COALESCED)
        started += 1
    if started:
        log.info(
            "tenant=%s coalesced events: %d users, %d departments, poll=%s",
            tenant,
            len(taken.user_ids),
            len(taken.department_ids),
            taken.poll,
        )
    return started
