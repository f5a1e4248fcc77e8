"""A tenant's webhook endpoint in Lucca, through Lucca's own API (issue 15): register it,
watch it, repair it when Lucca suspends it; replay.py recovers the events of an outage.

Only for a tenant with `lucca.oauth` and a service with PUBLIC_URL; every other tenant keeps
its hand-made endpoint. Lucca's document has no path to change or delete an endpoint, so a
suspended one is replaced: a new endpoint, whose secret goes first in the tenant's webhook
secrets while the old ones stay accepted; the status names the old endpoint for the customer
to delete. Once Lucca knows none of the old endpoints any more, their secrets are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from app.clients.errors import LuccaAuthError, LuccaError, LuccaRejected
from app.clients.lucca import lucca_base_url
from app.clients.lucca_api import CreatedEndpoint, LuccaApiClient, WebhookEndpoint
from app.core.tenant import TenantConfig
from app.service.batcher import LuccaThrottled
from app.service.jobs import enqueue_lucca_webhook
from app.service.replay import replay_outage
from app.service.resources import Resources
from app.service.results import Defer, Done, JobResult
from app.store import lucca_endpoint
from app.store.budget import Priority
from app.store.lucca_endpoint import EndpointState, OldEndpoint

log = logging.getLogger(__name__)

# Every topic that touches a synced field (contracts/lucca/README.md).
WEBHOOK_TOPICS = (
    *(
        f"{kind}.{change}"
        for kind in ("employee", "employment", "job-position", "employee-extension")
        for change in ("created", "updated", "deleted")
    ),
    "department.updated",
)
ENDPOINT_NAME = "Elevo sync"
# A call to the tenant's Lucca waits this long at most for its budget; longer: the job retries.
MAX_BUDGET_WAIT = 10.0
_REFUSED_TOPIC = re.compile(r"topics\[([0-9]+)\]")


class WebhookNotConfigured(Exception):
    """The tenant has no `lucca.oauth`, or the service no PUBLIC_URL (the message says which)."""


@dataclass(frozen=True, slots=True)
class Registration:
    """What a registration did: `created` an endpoint, or found the service's own."""

    state: EndpointState
    created: bool


def webhook_url(res: Resources, tenant: str) -> str:
    assert res.settings.public_url is not None
    return f"{res.settings.public_url}/webhooks/lucca/{tenant}"


def managed(res: Resources, config: TenantConfig) -> bool:
    """Whether the service registers and watches this tenant's endpoint."""
    return config.lucca_oauth is not None and res.settings.public_url is not None


def api_client(res: Resources, config: TenantConfig) -> LuccaApiClient:
    if config.lucca_oauth is None or res.settings.public_url is None:
        raise WebhookNotConfigured(
            "the tenant needs `lucca.oauth` and the service PUBLIC_URL to register its webhook"
        )

    base = lucca_base_url(
        res.settings.lucca_url_template, config.lucca_subdomain, config.lucca_domain
    )

    async def spend() -> None:
        # The same budget as every Lucca read of that host; background work, as polls are.
        while (
            wait := await res.budget.take(
                base,
                config.lucca_requests_per_minute,
                priority=Priority.BACKGROUND,
                tenant=config.tenant,
            )
        ) > 0:
            if wait > MAX_BUDGET_WAIT:
                raise LuccaThrottled(config.tenant, wait)
            await asyncio.sleep(wait)

    return LuccaApiClient(
        res.http, base, res.settings.lucca_token_url, config.lucca_oauth, before_call=spend
    )


def integrations_page(config: TenantConfig) -> str:
    """Where the customer deletes an endpoint in Lucca."""
    return f"https://{config.lucca_subdomain}.{config.lucca_domain}/integrations/endpoints"


async def schedule_registration(res: Resources, config: TenantConfig) -> bool:
    """After a PUT: queue the registration of a tenant that has no endpoint yet (a job: a slow
    Lucca never holds the PUT). True when queued."""
    if not managed(res, config):
        return False
    state = await lucca_endpoint.load(res.redis, config.tenant)
    if state is not None and state.endpoint_id is not None:
        return False
    await enqueue_lucca_webhook(res.redis, config.tenant, "register")
    return True


async def register(res: Resources, tenant: str, *, only_if_none: bool) -> Registration:
    """Create the tenant's endpoint; with `only_if_none`, adopt one of the service's own
    already in Lucca instead. Lucca's refusals land in the state's `error`, never raised."""
    config = await _config(res, tenant)
    client = api_client(res, config)
    state = await lucca_endpoint.load(res.redis, tenant) or EndpointState()
    now = _iso(res.clock())
    url = webhook_url(res, tenant)
    try:
        adopted = await _own_endpoint(client, url) if only_if_none else None
        if adopted is None:
            created, refused = await _create(client, url)
    except LuccaError as exc:
        state.error, state.checked_at = _why(exc), now
        await lucca_endpoint.save(res.redis, tenant, state)
        log.warning("tenant=%s webhook endpoint not registered: %s", tenant, state.error)
        return Registration(state, created=False)
    if adopted is not None:
        state.endpoint_id, state.status = adopted.id, adopted.status
        state.checked_at, state.error = now, None
        await lucca_endpoint.save(res.redis, tenant, state)
        return Registration(state, created=False)
    state.endpoint_id, state.status = created.endpoint.id, created.endpoint.status
    state.registered_at = state.checked_at = now
    state.refused_topics, state.error = refused, None
    # Shielded: a secret Lucca showed once must be stored even if the caller gave up.
    await asyncio.shield(_keep(res, config, created, state))
    log.info("tenant=%s webhook endpoint %s registered", tenant, created.endpoint.id)
    return Registration(state, created=True)


async def register_now(res: Resources, tenant: str) -> Registration:
    """POST /tenants/{tenant}/webhook: register, or check (and repair) the current endpoint;
    waits for Lucca WEBHOOK_REGISTER_TIMEOUT_SECONDS at most, then a job finishes the work."""
    config = await _config(res, tenant)
    api_client(res, config)  # WebhookNotConfigured before anything is asked of Lucca
    before = await lucca_endpoint.load(res.redis, tenant)
    known = None if before is None else before.endpoint_id
    try:
        async with asyncio.timeout(res.settings.webhook_register_timeout_seconds):
            if known is None:
                return await register(res, tenant, only_if_none=False)
            await watch(res, tenant)
    except (TimeoutError, LuccaThrottled):
        await enqueue_lucca_webhook(res.redis, tenant, "register" if known is None else "watch")
        pending = await lucca_endpoint.load(res.redis, tenant) or EndpointState()
        pending.error = "Lucca did not answer in time, or the budget is spent: a job goes on"
        return Registration(pending, created=False)
    current = await lucca_endpoint.load(res.redis, tenant) or EndpointState()
    return Registration(current, created=current.endpoint_id not in (None, known))


async def _own_endpoint(client: LuccaApiClient, url: str) -> WebhookEndpoint | None:
    """The newest endpoint of Lucca's that points at this tenant's URL, if any."""
    ours = [endpoint for endpoint in await client.list_endpoints() if endpoint.webhook_url == url]
    return ours[-1] if ours else None


async def _create(client: LuccaApiClient, url: str) -> tuple[CreatedEndpoint, list[str]]:
    """The endpoint with every topic Lucca takes, and the topics it refused."""
    topics = list(WEBHOOK_TOPICS)
    try:
        return await client.create_endpoint(ENDPOINT_NAME, url, topics), []
    except LuccaRejected as exc:
        refused = _refused(exc, topics)
        kept = [topic for topic in topics if topic not in refused]
        if not refused or not kept:
            raise
    return await client.create_endpoint(ENDPOINT_NAME, url, kept), refused


def _refused(exc: LuccaRejected, topics: list[str]) -> list[str]:
    indexes = [int(m.group(1)) for f in exc.errors if (m := _REFUSED_TOPIC.fullmatch(f))]
    return [topics[i] for i in sorted(set(indexes)) if i < len(topics)]


async def _keep(
    res: Resources, config: TenantConfig, created: CreatedEndpoint, state: EndpointState
) -> None:
    """The new endpoint's secret first (the others stay accepted during the switch), then the
    state that names it."""
    fresh = await _config(res, config.tenant)
    secrets = (created.secret, *[s for s in fresh.webhook_secrets if s != created.secret])
    await res.tenants.put(replace(fresh, webhook_secrets=secrets))
    res.contexts.forget(config.tenant)
    await lucca_endpoint.save(res.redis, config.tenant, state)


async def watch(res: Resources, tenant: str) -> str:
    """Read the endpoint's status; repair it when Lucca suspended or lost it. What it did."""
    config = await _config(res, tenant)
    if not managed(res, config):
        return "not managed"
    state = await lucca_endpoint.load(res.redis, tenant)
    if state is None or state.endpoint_id is None:
        return "registered" if (await register(res, tenant, only_if_none=True)).created else "none"
    client = api_client(res, config)
    now = res.clock()
    try:
        endpoint = await client.get_endpoint(state.endpoint_id)
        state.status = "deleted" if endpoint is None else endpoint.status
        state.checked_at, state.error = _iso(now), None
        if state.status != "active":
            return await _repair(res, config, state, now)
        await _forget_deleted(res, client, config, state)
        if state.missing_since is not None:
            await replay_outage(res, config, client, state, now)
    except LuccaError as exc:  # wrong OAuth client, Lucca down: said in the status
        state.error = _why(exc)
    await lucca_endpoint.save(res.redis, tenant, state)
    return state.status or "unknown"


async def _repair(res: Resources, config: TenantConfig, state: EndpointState, now: datetime) -> str:
    assert state.endpoint_id is not None
    notes = await res.records.notes(config.tenant)
    missing_since = notes.get("last_event") or state.registered_at or _iso(now - timedelta(days=1))
    old = OldEndpoint(
        id=state.endpoint_id,
        suspended_at=_iso(now),
        missing_since=missing_since,
        delete_at=integrations_page(config),
    )
    log.warning(
        "tenant=%s webhook endpoint %s is %s in Lucca since about %s: registering a new one; "
        "delete the old one at %s",
        config.tenant, old.id, state.status, missing_since, old.delete_at,
    )  # fmt: skip
    state.old_endpoints.append(old)
    state.missing_since = state.missing_since or missing_since
    state.endpoint_id = None
    await lucca_endpoint.save(res.redis, config.tenant, state)
    registration = await register(res, config.tenant, only_if_none=False)
    if not registration.created:
        return "suspended"  # the next watch tries again
    try:
        await replay_outage(res, config, api_client(res, config), registration.state, now)
    except LuccaError as exc:  # `missing_since` stays: the next watch replays
        registration.state.error = f"replay: {_why(exc)}"
    await lucca_endpoint.save(res.redis, config.tenant, registration.state)
    return "repaired"


async def _forget_deleted(
    res: Resources, client: LuccaApiClient, config: TenantConfig, state: EndpointState
) -> None:
    """Old endpoints the customer deleted are forgotten; with the last one, its secrets."""
    if not state.old_endpoints:
        return
    still = [old for old in state.old_endpoints if await client.get_endpoint(old.id) is not None]
    if len(still) == len(state.old_endpoints):
        return
    state.old_endpoints = still
    if not still:
        fresh = await _config(res, config.tenant)
        await res.tenants.put(replace(fresh, webhook_secrets=fresh.webhook_secrets[:1]))
        res.contexts.forget(config.tenant)


async def webhook_job(res: Resources, tenant: str, action: str) -> JobResult:
    """The job: "register" (after a PUT) or "watch" (every WEBHOOK_WATCH_SECONDS)."""
    try:
        if action == "register":
            registration = await register(res, tenant, only_if_none=True)
            return Done("registered" if registration.created else "not registered")
        return Done(await watch(res, tenant))
    except LuccaThrottled as exc:  # waiting for the budget is no failure
        return Defer(exc.wait)
    except WebhookNotConfigured as exc:  # deleted, or its OAuth client removed since
        return Done(str(exc))


async def watch_endpoints(res: Resources) -> int:
    """The minute's tick: queue a watch of every managed endpoint whose interval is due."""
    if res.settings.public_url is None:
        return 0
    queued = 0
    for tenant in await res.tenants.list():
        tenant_ctx = await res.contexts.get(tenant)
        if tenant_ctx is None or tenant_ctx.config.lucca_oauth is None:
            continue
        if await lucca_endpoint.claim_watch(res.redis, tenant, res.settings.webhook_watch_seconds):
            await enqueue_lucca_webhook(res.redis, tenant, "watch")
            queued += 1
    return queued


async def _config(res: Resources, tenant: str) -> TenantConfig:
    config = await res.tenants.get(tenant)
    if config is None:
        raise WebhookNotConfigured(f"no tenant {tenant!r}")
    return config


def _why(exc: LuccaError) -> str:
    if isinstance(exc, LuccaAuthError):
        return f"Lucca refused the OAuth client: check lucca.oauth and its scopes ({exc})"
    return str(exc)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
