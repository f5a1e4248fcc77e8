"""Alerts: one signed JSON notice to the tenant's `alerts_url` when something needs a person,
and one when it clears (docs/alerts.md).

Level-triggered like the rest of the sync: every minute the worker's `alerts_tick` reads each
tenant's state (the status notes and its latest runs, nothing from Lucca or Elevo), compares
what needs a person now with the alerts raised, and notes each difference once, atomically
(app/store/alerts.py), with its notice. A `send_alert` job per notice POSTs it, retried with
backoff; the sync path never waits for it. A notice holds ids, counts and fixed sentences:
never a secret, never an upstream error's text.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

import orjson

from app.clients.alerts import AlertsClient
from app.clients.errors import AlertsError
from app.service.context import TenantContext
from app.service.jobs import enqueue_alert
from app.service.lucca_webhook import managed
from app.service.resources import Resources
from app.service.results import Defer, Done, JobResult, retry_delay
from app.store import lucca_endpoint
from app.store.run_model import RunMode, RunState
from app.store.tenants import TenantStoreError

log = logging.getLogger(__name__)

SEND_ALERT_TIMEOUT: Final = 30
# With backoff capped at 5 minutes, about 20 minutes of tries before a notice is given up.
SEND_ALERT_MAX_TRIES: Final = 12
# How far back the failing-runs alert looks for runs that ended.
RUNS_LOOKED_AT: Final = 50


class AlertKind(StrEnum):
    HELD_RUN = "held_run"  # the safety guard holds a run's suspensions
    LUCCA_KEY_REFUSED = "lucca_key_refused"  # Lucca refused the API key
    ELEVO_TOKEN_REFUSED = "elevo_token_refused"  # noqa: S105 - Elevo refused the SCIM token
    PERMISSION_WARNING = "permission_warning"  # the key's role no longer sees the skip field
    FAILING_RUNS = "failing_runs"  # the tenant's last runs all failed
    LUCCA_ENDPOINT_REPLACED = "lucca_endpoint_replaced"  # an old endpoint awaits its deletion
    LUCCA_WEBHOOK_ERROR = "lucca_webhook_error"  # registering or watching the endpoint fails


_SUMMARIES: Final[dict[AlertKind, tuple[str, str]]] = {
    AlertKind.HELD_RUN: (
        "A run holds its suspensions for an operator to confirm or dismiss.",
        "No run holds suspensions any more.",
    ),
    AlertKind.LUCCA_KEY_REFUSED: (
        "Lucca refused the API key: nothing syncs until a new key is set.",
        "The Lucca API key was replaced.",
    ),
    AlertKind.ELEVO_TOKEN_REFUSED: (
        "Elevo refused the SCIM token: nothing is written until a new token is set.",
        "The Elevo SCIM token was replaced.",
    ),
    AlertKind.PERMISSION_WARNING: (
        "The Lucca key no longer sees the exclusion field: the excluded employees are held.",
        "The Lucca key sees the exclusion field again, or its loss was accepted.",
    ),
    AlertKind.FAILING_RUNS: (
        "The tenant's latest runs all failed.",
        "A run of the tenant ended without failing.",
    ),
    AlertKind.LUCCA_ENDPOINT_REPLACED: (
        "Lucca suspended the webhook endpoint and the service registered a new one: "
        "delete the old endpoint in Lucca, on the page given.",
        "Lucca no longer knows the old webhook endpoint.",
    ),
    AlertKind.LUCCA_WEBHOOK_ERROR: (
        "Registering or watching the Lucca webhook endpoint fails (a refused OAuth client, "
        "or Lucca not answering): the status's lucca_webhook.error says why.",
        "The Lucca webhook endpoint is registered and watched again.",
    ),
}


async def needs_attention(res: Resources, tenant_ctx: TenantContext) -> dict[AlertKind, Any]:
    """What needs a person now, each with its facts (ids and counts only)."""
    tenant = tenant_ctx.tenant
    notes = await res.records.notes(tenant)
    found: dict[AlertKind, Any] = {}
    if notes.get("held_run"):
        held = orjson.loads(notes["held_users"]) if notes.get("held_users") else []
        found[AlertKind.HELD_RUN] = {"run": notes["held_run"], "users": len(held)}
    if notes.get("lucca_key_error"):
        found[AlertKind.LUCCA_KEY_REFUSED] = {}
    if notes.get("elevo_token_error"):
        found[AlertKind.ELEVO_TOKEN_REFUSED] = {}
    if notes.get("permission_loss"):
        found[AlertKind.PERMISSION_WARNING] = {}
    failed = await failed_in_a_row(res, tenant, tenant_ctx.config.alerts_failed_runs)
    if failed:
        found[AlertKind.FAILING_RUNS] = {"runs": failed, "threshold": len(failed)}
    return found | await webhook_attention(res, tenant_ctx)


async def webhook_attention(res: Resources, tenant_ctx: TenantContext) -> dict[AlertKind, Any]:
    """The endpoint's alerts, from the status's `lucca_webhook`; only while the service manages
    it (an endpoint left to the customer's hands, or a removed OAuth client, raises nothing)."""
    if not managed(res, tenant_ctx.config):
        return {}
    state = await lucca_endpoint.load(res.redis, tenant_ctx.tenant)
    if state is None:
        return {}
    found: dict[AlertKind, Any] = {}
    if state.old_endpoints:
        found[AlertKind.LUCCA_ENDPOINT_REPLACED] = {
            "old_endpoints": [
                {"id": old.id, "delete_at": old.delete_at, "missing_since": old.missing_since}
                for old in state.old_endpoints
            ],
            # The repair sets `missing_since`, the outage's replay clears it (the status says
            # how many events it replayed).
            "events_replayed": state.missing_since is None,
        }
    if state.error:  # its text may quote Lucca: it stays in the status
        found[AlertKind.LUCCA_WEBHOOK_ERROR] = {}
    return found


async def failed_in_a_row(res: Resources, tenant: str, threshold: int) -> list[str]:
    """The ids of the latest `threshold` ended runs when every one of them failed, else []."""
    ended = [
        run
        for run in await res.runs.latest(tenant, RUNS_LOOKED_AT)
        if run.state.final and not run.dry_run and run.mode is not RunMode.RELEASE
    ][:threshold]
    if len(ended) < threshold or any(run.state is not RunState.FAILED for run in ended):
        return []
    return [run.id for run in ended]


def notice_document(
    tenant: str, kind: AlertKind, *, raised: bool, facts: Any, at: datetime
) -> tuple[str, bytes]:
    """A new notice's id and JSON body."""
    notice_id = f"{at.astimezone(UTC):%Y%m%dT%H%M%S}-{kind.value}-{secrets.token_hex(3)}"
    raised_summary, cleared_summary = _SUMMARIES[kind]
    document = {
        "id": notice_id,
        "tenant": tenant,
        "kind": kind.value,
        "state": "raised" if raised else "cleared",
        "at": at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "summary": raised_summary if raised else cleared_summary,
        "facts": facts if raised else {},
    }
    return notice_id, orjson.dumps(document)


async def check_alerts(res: Resources, tenant: str) -> int:
    """Note what changed since the last check, and queue every notice not sent yet; how many
    alerts were raised or cleared."""
    tenant_ctx = await res.contexts.get(tenant)
    if tenant_ctx is None or tenant_ctx.disconnecting or tenant_ctx.config.alerts_url is None:
        return 0
    now_attention = await needs_attention(res, tenant_ctx)
    raised = await res.alerts.raised(tenant)
    changed = 0
    for kind in AlertKind:
        is_raised = kind in now_attention
        if is_raised == (kind.value in raised):
            continue
        notice_id, document = notice_document(
            tenant, kind, raised=is_raised, facts=now_attention.get(kind), at=res.clock()
        )
        changed += await res.alerts.transition(
            tenant, kind.value, raised=is_raised, notice_id=notice_id, document=document
        )
    for notice_id in await res.alerts.pending(tenant):
        await enqueue_alert(res.redis, tenant, notice_id)  # ARQ refuses one queued already
    return changed


async def alerts_tick(res: Resources) -> int:
    """Every minute: check every tenant's alerts; how many were raised or cleared."""
    changed = 0
    for tenant in await res.tenants.list():
        try:
            changed += await check_alerts(res, tenant)
        except (TenantStoreError, ValueError) as exc:  # its status says so (config_error)
            log.warning("tenant=%s alerts not checked: %s", tenant, exc)
        except Exception:  # one tenant's trouble must not silence the others
            log.exception("tenant=%s alerts not checked", tenant)
    return changed


async def send_alert(res: Resources, tenant: str, notice_id: str, *, job_try: int) -> JobResult:
    """POST one notice, signed; retried while the endpoint fails for a passing reason."""
    document = await res.alerts.notice(tenant, notice_id)
    tenant_ctx = await res.contexts.get(tenant)
    config = tenant_ctx.config if tenant_ctx is not None else None
    if document is None or config is None or not (config.alerts_url and config.alerts_secret):
        await res.alerts.forget_notice(tenant, notice_id)
        return Done("nothing to send")
    try:
        await AlertsClient(res.http).send(
            config.alerts_url, config.alerts_secret, document, now=res.clock()
        )
    except AlertsError as exc:
        if exc.retryable and job_try < SEND_ALERT_MAX_TRIES:
            log.info("tenant=%s alert %s retry %s: %s", tenant, notice_id, job_try, exc)
            return Defer(retry_delay(exc, job_try))
        log.warning("tenant=%s alert %s given up: %s", tenant, notice_id, exc)
        await res.alerts.forget_notice(tenant, notice_id)
        return Done("given up")
    await res.alerts.forget_notice(tenant, notice_id)
    log.info("tenant=%s alert %s sent", tenant, notice_id)
    return Done("sent")
