"""A job held by a worker that died runs again within seconds, not after ARQ's 130 s.

ARQ keeps a running job's in-progress mark for the largest job timeout + 10 s and names no
owner. The state a SIGKILLed worker leaves is laid out here by hand (its mark, and the record
of it as the dead process's job); the chaos suite kills real worker processes.
"""

from __future__ import annotations

import time

from app.core import scim
from app.store import keys
from tests.e2e.conftest import ServiceFactory
from tests.e2e.harness import eventually
from tests.e2e.stories import small_company

ARQ_HOLD_MS = 130_000


async def test_a_job_of_a_dead_worker_runs_again_once_its_heartbeat_lapses(
    service_factory: ServiceFactory,
) -> None:
    service = await service_factory(WORKER_DEAD_AFTER_SECONDS="1")
    company = service.registry.add(small_company(rate_limit=None))
    tenant = await service.add_tenant(company)
    await tenant.full_sync()
    await tenant.settle()

    redis = service.resources.redis
    generation = int(await redis.get(keys.gen(tenant.name, "2")) or 0) + 1
    job_id = keys.sync_job_id(tenant.name, "2", generation)
    # What a worker killed while running the next sync of employee 2 leaves behind.
    await redis.set(keys.in_progress(job_id), "1", px=ARQ_HOLD_MS)
    await redis.hset(keys.running_jobs(), job_id, "killed-worker")

    sent_at = time.monotonic()
    assert await tenant.send(company.update(2, lastName="Afterlife")) == [202]

    async def landed() -> bool | None:
        profile = await tenant.profile(2)
        return (profile is not None and profile.attributes[scim.FAMILY_NAME] == "Afterlife") or None

    assert await eventually(landed, timeout=20.0)
    assert time.monotonic() - sent_at < ARQ_HOLD_MS / 1000 / 2  # freed, not expired

    async def released() -> bool | None:
        # The live worker that ran it records the job while it runs: the profile lands a moment
        # before the job ends and drops that record.
        return not await redis.hexists(keys.running_jobs(), job_id) or None

    assert await eventually(released, timeout=10.0)
