"""Pacing the calls to Lucca and Elevo: the Lucca budget, the pauses a 429 asks for, and a
refused Lucca key, honoured the same way on every path (app/store/budget.py keeps them).

Live work (a per-employee sync, the batcher) asks with `Priority.LIVE`; reconciliation pages,
their by-id checks, polls and department listings ask with `Priority.BACKGROUND`, which leaves
a reserve of the budget to live work.
"""

from __future__ import annotations

import logging

from app.clients.errors import (
    ElevoPaused,
    ElevoRateLimited,
    ElevoUnavailable,
    LuccaAuthError,
    LuccaRateLimited,
    RateLimited,
)
from app.service.batcher import DEFAULT_RETRY_AFTER, LuccaKeyFlagged, LuccaThrottled
from app.service.context import TenantContext
from app.service.resources import Resources
from app.store.budget import Priority
from app.store.parked import ProbeBackoff

log = logging.getLogger(__name__)

# After Lucca refuses the key, calls stop this long (or until the tenant's key is replaced).
REVOKED_KEY_HOLD_SECONDS = 600
# A refused credential is probed by the minute's tick: first a minute after the refusal, then
# 1, 2, 4 ... 60 minutes apart (app/service/blocks.py).
PROBE_BASE_SECONDS = 60.0
PROBE_CAP_SECONDS = 3600.0


# So many of a tenant's Elevo requests left unanswered within so many seconds pause its calls.
UNANSWERED_THRESHOLD = 5
UNANSWERED_WITHIN_SECONDS = 30.0
UNANSWERED_CAUSE = f"Elevo left {UNANSWERED_THRESHOLD} requests unanswered"


async def take_budget(res: Resources, tenant_ctx: TenantContext, *, priority: Priority) -> None:
    """One Lucca request for this tenant, or `LuccaThrottled` with the wait; a key Lucca
    refused is not used again (`LuccaAuthError`) until it is replaced or its hold ends."""
    tenant = tenant_ctx.tenant
    refused = await res.budget.revoked(tenant)
    if refused is not None:
        raise LuccaKeyFlagged(refused)
    wait = await res.budget.take(
        tenant_ctx.lucca.base_url,
        tenant_ctx.config.lucca_requests_per_minute,
        priority=priority,
        tenant=tenant,
    )
    if wait > 0:
        raise LuccaThrottled(tenant, wait)


async def honour_rate_limit(res: Resources, tenant_ctx: TenantContext, exc: RateLimited) -> float:
    """A 429: pause every process's calls (Lucca: to that host; Elevo: the tenant's) for
    its Retry-After; the seconds to wait."""
    wait = exc.retry_after or DEFAULT_RETRY_AFTER
    if isinstance(exc, ElevoPaused):
        return wait  # a pause already there: no 429 was met
    if isinstance(exc, LuccaRateLimited):
        await res.budget.pause(tenant_ctx.lucca.base_url, wait)
    elif isinstance(exc, ElevoRateLimited):
        await res.elevo_pause.pause(tenant_ctx.tenant, wait)  # every process...
        tenant_ctx.elevo.hold(wait)  # ...and at once the requests this one has waiting
    log.info("tenant=%s paused %.1fs after a 429: %s", tenant_ctx.tenant, wait, exc)
    return wait


async def wait_for_elevo(
    res: Resources, tenant: str, known: tuple[float, str] | None = None
) -> None:
    """Before calling Elevo for an employee: `ElevoPaused` while the tenant's pause lasts
    (`known`: what is left of it and why, when the caller read it a moment ago)."""
    remaining, why = await res.elevo_pause.remaining(tenant) if known is None else known
    if remaining > 0:
        cause = UNANSWERED_CAUSE if why == "unanswered" else "Elevo asked to wait (429)"
        raise ElevoPaused(f"{cause}: calls paused for {remaining:.1f}s more", retry_after=remaining)


async def note_unanswered(
    res: Resources, tenant_ctx: TenantContext, exc: ElevoUnavailable
) -> ElevoPaused | None:
    """A request Elevo left without an answer (a timeout, a reset): once several of the
    tenant's went so within a short while, every process holds its calls for a while rather
    than pile more hanging requests on an Elevo that stalls. One slow employee alone never
    reaches the count. While the tenant's Elevo is paused, the pause stands for the error
    (`ElevoPaused`): waiting for a stalled Elevo is no failure of the employee."""
    if exc.status is not None:  # Elevo answered (a 5xx): it is there
        return None
    remaining = await res.elevo_pause.note_unanswered(
        tenant_ctx.tenant,
        within=UNANSWERED_WITHIN_SECONDS,
        threshold=UNANSWERED_THRESHOLD,
        pause=res.settings.elevo_stall_pause_seconds,
    )
    if remaining <= 0:
        return None
    tenant_ctx.elevo.hold(remaining)  # the requests this process has waiting their turn too
    log.info("tenant=%s Elevo calls paused %.1fs more: %s", tenant_ctx.tenant, remaining, exc)
    return ElevoPaused(
        f"{UNANSWERED_CAUSE} (lately: {exc}); calls paused for {remaining:.1f}s more",
        retry_after=remaining,
    )


async def flag_refused_key(res: Resources, tenant: str, exc: LuccaAuthError) -> None:
    """Lucca refused the key: no process calls Lucca with it again until it is replaced (a
    call not made because of the flag neither repeats nor prolongs it)."""
    if isinstance(exc, LuccaKeyFlagged):
        return
    await res.budget.flag_revoked(tenant, str(exc), REVOKED_KEY_HOLD_SECONDS)
    await res.records.note(tenant, lucca_key_error=str(exc))
    await ProbeBackoff(res.redis, tenant, "lucca_key").arm(PROBE_BASE_SECONDS)
