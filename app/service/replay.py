"""Replaying the events of an outage (issue 15): Lucca lists its events, delivered or not (an
event answered 202 and then lost counts as delivered for Lucca), and the service resyncs the
employees they name as if they had just arrived.

From the last event the service received less `REPLAY_MARGIN`, or of the last
`LOST_CHECKPOINT_LOOKBACK` when that checkpoint is gone. Each event's dedupe mark is the one
the webhook route sets: an event already received, or replayed before, is recognised and
skipped, and Lucca's late retry of a replayed one is a duplicate. The employees are resynced by
the usual per-user jobs, whose Lucca reads are batched within the tenant's budget.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.clients.lucca_api import LuccaApiClient
from app.core.events import NoticeKind, notice_of
from app.core.tenant import TenantConfig
from app.service.jobs import enqueue_department, enqueue_poll, enqueue_user_syncs
from app.service.resources import Resources
from app.store import keys, queue
from app.store.lucca_endpoint import EndpointState
from app.store.run_model import RunMode, Trigger, TriggerKind, draft_run

log = logging.getLogger(__name__)

REPLAY_MARGIN = timedelta(minutes=10)
LOST_CHECKPOINT_LOOKBACK = timedelta(hours=24)
REPLAY = Trigger(TriggerKind.LUCCA_REPLAY)


@dataclass(slots=True)
class Replayed:
    events: int = 0  # new events, acted upon
    duplicates: int = 0  # events the service had already received or replayed
    user_ids: list[str] = field(default_factory=list)
    departments: set[str] = field(default_factory=set)
    poll: bool = False  # an unreadable relevant event: a changes poll asks Lucca instead


def replay_start(state: EndpointState, now: datetime) -> datetime:
    if state.missing_since is None:
        return now - LOST_CHECKPOINT_LOOKBACK
    return datetime.fromisoformat(state.missing_since) - REPLAY_MARGIN


async def replay_outage(
    res: Resources,
    config: TenantConfig,
    client: LuccaApiClient,
    state: EndpointState,
    now: datetime,
) -> Replayed:
    """List the events since the outage began and act on the new ones; noted in `state`."""
    since = replay_start(state, now)
    events = await client.events_since(since)
    replayed = await replay_events(res, config.tenant, (event.document for event in events))
    users = len(set(replayed.user_ids))
    state.replayed = (
        f"replayed {replayed.events} events since {since.isoformat(timespec='seconds')} "
        f"({replayed.duplicates} already received; {users} employees resynced)"
    )
    state.replayed_at = now.isoformat(timespec="seconds")
    state.missing_since = None
    log.info("tenant=%s %s", config.tenant, state.replayed)
    return replayed


async def replay_events(res: Resources, tenant: str, events: Iterable[dict[str, Any]]) -> Replayed:
    """Mark and queue the work of every new event; a failure leaves no mark behind."""
    replayed = Replayed()
    marks: list[str] = []
    try:
        for event in events:
            await _take(res, tenant, event, replayed, marks)
        await _queue(res, tenant, replayed)
    except BaseException:
        for mark in marks:  # the next replay must find these events new
            await queue.forget_mark(res.redis, mark)
        raise
    return replayed


async def _take(
    res: Resources, tenant: str, event: dict[str, Any], replayed: Replayed, marks: list[str]
) -> None:
    notice = notice_of(event)
    if notice.kind in (NoticeKind.ACTIVATION, NoticeKind.IGNORED):
        return
    event_id = event.get("id")
    if isinstance(event_id, str | int):
        mark = keys.event(tenant, str(event_id))
        if not await queue.set_mark(res.redis, mark, res.settings.webhook_dedupe_seconds):
            replayed.duplicates += 1
            return
        marks.append(mark)
    replayed.events += 1
    if notice.kind is NoticeKind.USERS:
        replayed.user_ids.extend(notice.user_ids)
    elif notice.kind is NoticeKind.DEPARTMENT and notice.department_id is not None:
        replayed.departments.add(notice.department_id)
    else:
        replayed.poll = True


async def _queue(res: Resources, tenant: str, replayed: Replayed) -> None:
    ids = list(dict.fromkeys(replayed.user_ids))
    if ids:
        run = draft_run(mode=RunMode.USERS, trigger=REPLAY, expected=len(ids))
        run_id = await res.runs.create(tenant, run)
        await enqueue_user_syncs(res.redis, tenant, ids, run_id=run_id)
    for department_id in sorted(replayed.departments):
        run_id = await res.runs.create(tenant, draft_run(mode=RunMode.DEPARTMENT, trigger=REPLAY))
        await enqueue_department(res.redis, tenant, department_id, run_id)
    if replayed.poll:
        run_id = await res.runs.create(tenant, draft_run(mode=RunMode.CHANGES, trigger=REPLAY))
        await enqueue_poll(res.redis, tenant, run_id)
