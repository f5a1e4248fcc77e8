"""The minute's watchdog: a run that made no progress for `run_stall_seconds` is failed, and
its tenant freed for the next run.

A step's own deadline fails its run (app/service/steps.py); this catches the rest: a worker
killed mid-step, a step whose job ARQ dropped, a run whose jobs never came. Time a run spends
`waiting` for a tenant-level reason, which the run shows, is not a stall.
"""

from __future__ import annotations

from datetime import timedelta

from app.service.resources import Resources
from app.service.runs import fail_run
from app.store import run_progress


async def fail_stalled_runs(res: Resources) -> int:
    """Fail every tenant's stalled runs; how many."""
    stall = res.settings.run_stall_seconds
    since = res.clock() - timedelta(seconds=stall)
    failed = 0
    for tenant in await res.tenants.list():
        for run_id in await run_progress.stalled(res.redis, tenant, since):
            await fail_run(res, tenant, run_id, f"no progress for {stall:g} s")
            failed += 1
    return failed
