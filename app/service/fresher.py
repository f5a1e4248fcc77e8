"""A reconciliation never overwrites a fresher per-employee write (issue 10, point 6).

A reconciliation decides from a Lucca read that may be older than a change the employee's own
job wrote meanwhile. Each change notice takes the tenant's next notice number, noted per
employee (app/store/queue.py), and a reconciliation notes the number before it reads Lucca: an
employee noticed above that mark changed after the read, and its job reads Lucca anew and
writes it. So the reconciliation writes an employee only under the employee's lock (no
job writes in between) and only when no notice came after its read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from app.core.errors import SyncError
from app.service.resources import Resources
from app.store import queue
from app.store.locks import UserLock

T = TypeVar("T")

# A reconciliation's write holds the employee's lock this long at most (a few requests).
GUARDED_WRITE_HOLD_SECONDS = 30.0
NOTICED_AFTER_READ = (
    "a change notice came after this run read Lucca: the employee's own sync writes it"
)


class UserBusy(SyncError):
    """The employee's own sync held its lock for longer than a reconciliation waits."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"user {user_id} is being synced by its own job")


async def write_unless_noticed(
    res: Resources, tenant: str, user_id: str, mark: int, write: Callable[[], Awaitable[T]]
) -> T | None:
    """`write()`'s result, or None when a notice for the user came after `mark`."""
    lock = UserLock(res.redis, tenant, user_id)
    await _acquire(res, lock, user_id)
    try:
        if await queue.noticed_after(res.redis, tenant, user_id, mark):
            return None
        return await write()
    finally:
        await lock.release(0.0)


async def _acquire(res: Resources, lock: UserLock, user_id: str) -> None:
    """Wait for the employee's own sync (and its cooldown) a little; UserBusy after that."""
    deadline = time.monotonic() + res.settings.user_cooldown_seconds + 1.0
    while wait := await lock.acquire(GUARDED_WRITE_HOLD_SECONDS):
        pause = min(wait, 0.2)
        if time.monotonic() + pause > deadline:
            raise UserBusy(user_id)
        await asyncio.sleep(pause)
