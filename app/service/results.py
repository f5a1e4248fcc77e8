"""What a job body returns: done (with a word for ARQ's result), or try again later."""

from __future__ import annotations

import random
from dataclasses import dataclass

from app.clients.errors import ElevoRateLimited, RateLimited
from app.service.batcher import LuccaThrottled


@dataclass(frozen=True, slots=True)
class Done:
    result: str


@dataclass(frozen=True, slots=True)
class Defer:
    """Run the same job again in `seconds` (the worker raises ARQ's Retry)."""

    seconds: float


JobResult = Done | Defer


def backoff(job_try: int, *, base: float = 1.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter around the step (0.5x to 1.5x)."""
    step: float = min(cap, base * 2 ** max(0, job_try - 1))
    return step * random.uniform(0.5, 1.5)


def retry_delay(exc: Exception, job_try: int) -> float:
    if isinstance(exc, LuccaThrottled):
        return exc.wait + random.uniform(0, 1.0)
    if isinstance(exc, ElevoRateLimited) and exc.retry_after:
        # Hundreds of a tenant's jobs wait for the same Elevo pause: woken within one second,
        # they would all ask a recovering Elevo at once (and time out, and pause it again).
        return float(exc.retry_after) * random.uniform(1.0, 2.0) + random.uniform(0, 1.0)
    if isinstance(exc, RateLimited) and exc.retry_after:
        return float(exc.retry_after) + random.uniform(0, 1.0)
    return backoff(job_try)


# A job stops itself this much before ARQ's timeout (at most a quarter of it), to record why.
_DEADLINE_MARGIN_SECONDS = 5.0


def own_deadline(job_timeout: float) -> float:
    """How long a job body may run before it stops itself: below ARQ's `job_timeout`, which
    would fail the job for good (ARQ retries no timed-out job) without a word to the run."""
    return job_timeout - min(_DEADLINE_MARGIN_SECONDS, job_timeout / 4)
