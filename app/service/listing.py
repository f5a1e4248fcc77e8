"""What a Lucca listing names: the users to sync, and the items no user can be keyed by.

A Lucca item without a usable id is keyed `#<position>` in its batch (app/clients/lucca.py). It
names nobody: it is recorded in the tenant's status, never synced, fetched by id or kept in a
set, so it can neither break the fetch of other employees nor linger.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import orjson

from app.clients.lucca import LuccaBatch
from app.core.lucca_user import is_user_id
from app.store.run_model import utcnow_iso

if TYPE_CHECKING:  # the batcher, which Resources holds, imports this module
    from app.service.resources import Resources

log = logging.getLogger(__name__)

MAX_REASONS = 5
UNATTRIBUTED = (
    "Lucca answered an item without a usable id to a fetch that asked for this user: it may be"
    " this user's, so the user is not taken for gone"
)


def listed_ids(batch: LuccaBatch) -> list[str]:
    """The users a Lucca answer lists, once each: the parsed ones and the refused ones that
    have an id (those are synced, and recorded as errors against their user)."""
    listed = [*batch.users, *(key for key in batch.invalid if is_user_id(key))]
    return list(dict.fromkeys(listed))


def unreadable_items(batch: LuccaBatch) -> dict[str, str]:
    """The items of a Lucca answer without a usable id (position -> why)."""
    return {key: why for key, why in batch.invalid.items() if not is_user_id(key)}


async def note_unreadable(
    res: Resources, tenant: str, unreadable: Mapping[str, str], *, run_id: str
) -> None:
    """Lucca listed items without a usable id: the tenant's status says so (the next full run
    that lists none clears it)."""
    if not unreadable:
        return
    note = {
        "count": len(unreadable),
        "reasons": sorted(set(unreadable.values()))[:MAX_REASONS],
        "run": run_id,
        "at": utcnow_iso(),
    }
    log.warning(
        "tenant=%s run=%s %s Lucca items without a usable id", tenant, run_id, len(unreadable)
    )
    await res.records.note(tenant, lucca_unreadable=orjson.dumps(note).decode())


def attributed(batch: LuccaBatch, requested: Sequence[str]) -> LuccaBatch:
    """A by-id answer as the sync may trust it. When it holds an item without a usable id,
    that item may be any requested user Lucca seems not to return: such a user is refused
    (an error, retried by the next read), never taken for gone -- which would suspend them."""
    if not unreadable_items(batch):
        return batch
    found = batch.users.keys() | batch.invalid.keys()
    missing = {user_id: UNATTRIBUTED for user_id in requested if user_id not in found}
    return replace(batch, invalid={**batch.invalid, **missing})
