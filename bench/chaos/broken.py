"""Two broken tenants beside the healthy one (issue 11, point 6): one whose stored config is
unreadable, one whose Lucca key Lucca refuses. Their trouble must stay their own: each is
flagged in its own status, and the healthy tenant's polls go on."""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from app.store import keys
from bench.chaos.options import BROKEN_SIZE, GARBLED, REFUSED, TENANT, Summary
from bench.chaos.pieces import ChaosStack, tenant_body
from stack.lucca_control import LuccaControl


async def register_broken_tenants(chaos: ChaosStack) -> None:
    """Both registered while still healthy (the PUT checks what it can), polled each minute:
    the tick has work for them, as for any tenant in use."""
    for name in (GARBLED, REFUSED):
        await chaos.api.put_tenant(name, tenant_body(chaos, name) | {"poll_interval_seconds": 60})


async def break_tenants(chaos: ChaosStack, summary: Summary) -> None:
    """The garbled tenant's stored config overwritten with bytes no process can read; the
    refused tenant's company re-created in the simulator with another key (a revoked key)."""
    assert chaos.redis is not None
    await chaos.redis.set(keys.tenant_config(GARBLED), b"\x00not a tenant config")
    refused = LuccaControl(chaos.http, chaos.url("lucca"), REFUSED)
    await refused.create(f"revoked-{secrets.token_hex(8)}", BROKEN_SIZE)
    summary.broken_at = datetime.now(UTC)
    await chaos.api.start_run(REFUSED, {"mode": "changes"})  # meets the refusal at once
    chaos.log(f"broke tenants {GARBLED} (config unreadable) and {REFUSED} (Lucca key refused)")


def _when(text: Any) -> datetime | None:
    return datetime.fromisoformat(str(text)) if text else None


async def _status(chaos: ChaosStack, tenant: str) -> dict[str, Any]:
    """GET /sync/{tenant}: a config the service cannot read has a status too, saying why."""
    response = await chaos.http.get(f"{chaos.url('web')}/sync/{tenant}", headers=chaos.api.admin)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def _statuses(chaos: ChaosStack) -> dict[str, dict[str, Any]]:
    return {name: await _status(chaos, name) for name in (GARBLED, REFUSED, TENANT)}


def _troubles(statuses: dict[str, dict[str, Any]], broken_at: datetime) -> list[str]:
    garbled, refused, healthy = (statuses[name] for name in (GARBLED, REFUSED, TENANT))
    troubles = []
    if not garbled.get("config_error"):
        troubles.append(f"tenant {GARBLED}'s unreadable config is not in its status")
    if not refused.get("lucca_key_error"):
        troubles.append(f"tenant {REFUSED}'s refused Lucca key is not in its status")
    if healthy.get("config_error") or healthy.get("lucca_key_error"):
        troubles.append(f"tenant {TENANT} flagged for another's trouble")
    polled = _when(healthy.get("last_poll_at"))
    if polled is None or polled < broken_at:
        troubles.append(f"tenant {TENANT} not polled since the others broke (last: {polled})")
    return troubles


async def check_broken_tenants(chaos: ChaosStack, summary: Summary, within: float) -> None:
    """Each broken tenant flagged in its own status, the healthy one not, and polled since
    they broke; waits up to `within` seconds from the breaking (the tick runs each minute)."""
    assert summary.broken_at is not None
    deadline = summary.broken_at.timestamp() + within
    while True:
        statuses = await _statuses(chaos)
        troubles = _troubles(statuses, summary.broken_at)
        if not troubles or time.time() > deadline:
            break
        await asyncio.sleep(5)
    refused_requests = await LuccaControl(chaos.http, chaos.url("lucca"), REFUSED).counters()
    summary.broken = {
        GARBLED: {"config_error": statuses[GARBLED].get("config_error")},
        REFUSED: {
            "lucca_key_error": statuses[REFUSED].get("lucca_key_error"),
            "lucca_requests_by_status": refused_requests.get("by_status", {}),
        },
        TENANT: {
            key: statuses[TENANT].get(key)
            for key in ("config_error", "lucca_key_error", "last_poll_at")
        },
    }
    summary.failures += troubles
