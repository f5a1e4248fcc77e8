"""What a job body returns: done (with a word for ARQ's result), or try again later."""

from __future__ import annotations

import random
from dataclasses import dataclass

from app.clients.errors import RateLimited
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
    if isinstance(exc, RateLimited) and exc.retry_after:
        return float(exc.retry_after) + random.uniform(0, 1.0)
    return backoff(job_try)
