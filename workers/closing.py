"""Closing an ARQ worker whose jobs may have just started.

arq's `Worker.close()` cancels the jobs it runs and gathers them without `return_exceptions`:
a job cancelled while it still reads its payload (before arq's own handler, which would record
it) ends cancelled, and `close()` raises `CancelledError` before its health key, its
`on_shutdown` and its Redis pool. Such a job stays queued either way: ARQ runs it again once
its in-progress mark expires (one cancelled later, at once).
"""

from __future__ import annotations

import asyncio
import warnings

from arq.worker import Worker


async def close_worker(worker: Worker) -> None:
    """Cancel `worker`'s jobs, wait until each has ended however it ends, then close it."""
    running = list(worker.tasks.values())
    for task in running:
        task.cancel()
    # return_exceptions covers the jobs only: a cancel of the caller itself still raises here.
    await asyncio.gather(*running, return_exceptions=True)
    worker.tasks.clear()  # ended: close() has nothing left to gather
    with warnings.catch_warnings():
        # arq's close() calls redis-py's deprecated close(): nothing of ours to change.
        warnings.simplefilter("ignore", DeprecationWarning)
        await worker.close()
