"""Disconnecting a tenant: its Elevo profiles given back, then its configuration and state gone.

`DELETE /tenants/{tenant}?release=true` starts a release run (mode `release`). While it runs the
tenant is `disconnecting`: its webhooks are acknowledged and ignored, runs are refused, polls
and nightly runs are skipped, and queued jobs of other runs stand down. The run sweeps Elevo's
whole listing a page per job (the cursor is the job's argument, so a killed worker's page is
simply run again) and removes `syncSource` from every profile that still has it, with a PATCH
that touches nothing else. A profile written by a job that was in flight when the release began
may get its `syncSource` back, so a sweep that released anything is followed by another; once
a sweep finds nothing left, the tenant's configuration and state are deleted. A release that
fails keeps the tenant, disconnected, its status saying why, until it is asked again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.clients.errors import ElevoNotFound, UpstreamError
from app.core import scim
from app.core.decision import Action, Change, Decision
from app.core.profile import ElevoProfile
from app.service.context import TenantContext
from app.service.errors import TenantUnreadable
from app.service.jobs import enqueue_release_page
from app.service.outcomes import record_decision
from app.service.resources import Resources
from app.service.results import Defer, Done, JobResult, retry_delay
from app.service.runs import purge_tenant_state
from app.store import keys
from app.store.links import ProfileLinks
from app.store.release import ReleaseMark, ReleaseState
from app.store.run_model import RunMode, RunState, Trigger, TriggerKind, draft_run
from app.store.tenants import TenantStoreError

log = logging.getLogger(__name__)

RELEASE_PAGE_SIZE: Final = 100
RELEASE_CONCURRENCY: Final = 8
# A sweep that still finds profiles to release after this many means something keeps writing.
MAX_SWEEPS: Final = 3
MAX_PAGE_FAILURES: Final = 10
RELEASE_REASON: Final = "the tenant disconnects: syncSource removed, the profile is Elevo's again"


class ReleaseIncomplete(Exception):
    """Profiles kept getting `syncSource` back while the release removed it."""


async def release_count(res: Resources, tenant: str) -> int:
    """How many profiles a release would give back: those the sync has linked (no call to
    Elevo; the release itself goes by Elevo's listing)."""
    return await ProfileLinks(res.redis, tenant).count()


async def release_status(res: Resources, tenant: str) -> ReleaseMark | None:
    """The tenant's disconnection, if one runs or failed."""
    return await res.releases.get(tenant)


async def start_release(res: Resources, tenant: str) -> str | None:
    """Disconnect the tenant; the release run's id (the running one, when a release runs
    already), or None for no such tenant."""
    try:
        if await res.tenants.get(tenant) is None:
            return None
    except TenantStoreError as exc:  # its Elevo token is unreadable: nothing could be released
        raise TenantUnreadable(str(exc)) from None
    running = await res.releases.get(tenant)
    if running is not None and running.state is ReleaseState.DISCONNECTING:
        if await res.runs.get(tenant, running.run) is not None:
            return running.run
        await res.releases.fail(tenant, running.run, "the release run was lost")
    new = draft_run(mode=RunMode.RELEASE, trigger=Trigger(TriggerKind.API))
    run_id = await res.releases.claim(tenant, new.id)
    if run_id != new.id:  # another ask won the claim meanwhile
        return run_id
    await res.runs.create(tenant, new)
    res.contexts.forget(tenant)  # this process stops syncing the tenant at once
    await enqueue_release_page(res.redis, tenant, run_id, 1, 1)
    log.info("tenant=%s release run=%s started", tenant, run_id)
    return run_id


async def release_page_step(
    res: Resources, tenant: str, run_id: str, sweep: int, start: int
) -> JobResult:
    """One page of a release sweep, retried on passing failures; a lasting one fails the
    release and keeps the tenant."""
    mark = await res.releases.get(tenant)
    if mark is None or mark.run != run_id or mark.state is not ReleaseState.DISCONNECTING:
        return Done("not this tenant's release")
    failures_key = keys.run_failures(tenant, run_id)
    try:
        tenant_ctx = await res.contexts.get(tenant)
        if tenant_ctx is None:
            # The mark outlived the config: the finish stopped between the two deletions.
            await purge_tenant_state(res, tenant)
            await res.releases.clear(tenant)
            return Done("released")
        if sweep == 1 and start == 1:
            await res.runs.set_state(tenant, run_id, RunState.RUNNING)
        following = await release_page(res, tenant_ctx, run_id, sweep, start)
    except UpstreamError as exc:
        failures = await res.failures.count(failures_key)
        if exc.retryable and failures <= MAX_PAGE_FAILURES:
            log.info("tenant=%s release run=%s retry %s: %s", tenant, run_id, failures, exc)
            return Defer(retry_delay(exc, failures))
        return Done(await _fail(res, tenant, run_id, str(exc)))
    except ReleaseIncomplete as exc:
        return Done(await _fail(res, tenant, run_id, str(exc)))
    except (RedisConnectionError, RedisTimeoutError):
        raise  # Redis went away midway: the job runs again (workers/jobs.py)
    except Exception as exc:
        # A bug, or a config that no longer decrypts: the release must not stay
        # "disconnecting" for ever with no job left to end it.
        log.exception("tenant=%s release run=%s page crashed", tenant, run_id)
        return Done(await _fail(res, tenant, run_id, f"internal error: {type(exc).__name__}"))
    await res.failures.clear(failures_key)
    if following is None:
        return Done(await _finish(res, tenant, run_id))
    await enqueue_release_page(res.redis, tenant, run_id, *following)
    return Done("ok")


async def release_page(
    res: Resources, tenant_ctx: TenantContext, run_id: str, sweep: int, start: int
) -> tuple[int, int] | None:
    """Release the managed profiles of one page of Elevo's listing; the next (sweep, start),
    or None once a whole sweep found nothing left to release.

    The whole listing, not one filtered by `syncSource`: removing it would shift a filtered
    listing's pages under the cursor.
    """
    tenant = tenant_ctx.tenant
    page = await tenant_ctx.elevo.list_page(start_index=start, count=RELEASE_PAGE_SIZE)
    managed = [profile for profile in page.profiles if profile.managed]
    gate = asyncio.Semaphore(RELEASE_CONCURRENCY)

    async def release_one(profile: ElevoProfile) -> int:
        async with gate:
            return await _release_profile(res, tenant_ctx, run_id, profile)

    released = sum(await asyncio.gather(*(release_one(p) for p in managed)))
    if released:
        await res.releases.add_released(tenant, sweep, released)
    following = start + len(page.profiles)
    if page.profiles and following <= page.total:
        return sweep, following
    if await res.releases.released(tenant, sweep) == 0:
        return None
    if sweep >= MAX_SWEEPS:
        raise ReleaseIncomplete(
            f"profiles were marked `syncSource` again during {MAX_SWEEPS} sweeps; is another"
            " sync writing to this Elevo?"
        )
    return sweep + 1, 1


async def _release_profile(
    res: Resources, tenant_ctx: TenantContext, run_id: str, profile: ElevoProfile
) -> int:
    """Remove the profile's `syncSource`, nothing else; 1 when it was released here."""
    try:
        await tenant_ctx.elevo.patch(profile.id, [{"op": "remove", "path": scim.SYNC_SOURCE}])
    except ElevoNotFound:  # deleted in Elevo meanwhile: nothing to give back
        return 0
    # A profile the sync manages has its Lucca id as externalId; one without is named by its
    # SCIM id, so that its history still says what happened to it.
    user = profile.external_id or f"scim:{profile.id}"
    decision = Decision(
        user=user,
        action=Action.RELEASE,
        reason=RELEASE_REASON,
        diff={scim.SYNC_SOURCE: Change(profile.sync_source, None)},
        profile_id=profile.id,
    )
    await record_decision(
        res.records, res.runs, tenant_ctx.tenant, decision, run_id=run_id, written=True
    )
    return 1


async def _finish(res: Resources, tenant: str, run_id: str) -> str:
    """Every profile given back: the configuration goes first (nothing syncs the tenant any
    more), then its state, the release's mark last; a crash between the two is finished by
    the job's next try, which finds the mark without the configuration."""
    await res.runs.set_state(tenant, run_id, RunState.DONE)
    await res.tenants.delete(tenant)
    res.contexts.forget(tenant)
    await purge_tenant_state(res, tenant)
    await res.releases.clear(tenant)
    log.info("tenant=%s released by run=%s; configuration and state deleted", tenant, run_id)
    return "released"


async def _fail(res: Resources, tenant: str, run_id: str, reason: str) -> str:
    await res.runs.set_state(tenant, run_id, RunState.FAILED, error=reason)
    await res.releases.fail(tenant, run_id, reason)
    log.warning("tenant=%s release run=%s failed: %s", tenant, run_id, reason)
    return "failed"
