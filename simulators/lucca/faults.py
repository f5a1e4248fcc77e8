"""What one simulated Lucca domain does besides answering correctly.

A rolling-minute rate limit, injected faults (forced statuses, random 500s, latency, listings
cut short) and a log of the requests it received, each with its arrival time. One of each
lives on every `Company`.
"""

from __future__ import annotations

import math
import random
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

DEFAULT_RATE_LIMIT = 50
RATE_WINDOW_SECONDS = 60.0
# Requests kept in the log; counters stay exact beyond it, so long benchmarks do not grow memory.
LOG_CAPACITY = 10_000

RequestKind = Literal["by_id", "listing"]


class RateLimiter:
    """Counts requests in a rolling window; `limit=None` disables it."""

    def __init__(self, limit: int | None = DEFAULT_RATE_LIMIT) -> None:
        self.limit = limit
        self._hits: deque[float] = deque()

    def hit(self, now: float) -> int | None:
        """Record a request at `now` (monotonic seconds); the Retry-After seconds if over."""
        if self.limit is None:
            return None
        horizon = now - RATE_WINDOW_SECONDS
        while self._hits and self._hits[0] <= horizon:
            self._hits.popleft()
        if len(self._hits) >= self.limit:
            # Rejected requests are not counted: a client that honours Retry-After gets through.
            wait = self._hits[0] + RATE_WINDOW_SECONDS - now
            return max(1, math.ceil(wait))
        self._hits.append(now)
        return None

    def reset(self) -> None:
        self._hits.clear()


@dataclass(frozen=True, slots=True)
class Forced:
    status: int
    retry_after: int | None


@dataclass(slots=True)
class Faults:
    """Knobs a test turns to make the domain misbehave. `clear()` puts them all back."""

    error_rate: float = 0.0
    latency: float = 0.0
    # Listings (not fetches by id) pretend only the first `truncate_to` matching users exist.
    truncate_to: int | None = None
    _forced: deque[Forced] = field(default_factory=deque)
    _rng: random.Random = field(default_factory=lambda: random.Random(0))

    def set_error_rate(self, rate: float, *, seed: int = 0) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")
        self.error_rate = rate
        self._rng = random.Random(seed)

    def force(self, status: int, count: int = 1, *, retry_after: int | None = None) -> None:
        """Answer the next `count` requests with `status` (queued after earlier forced ones)."""
        if not 100 <= status <= 599 or count < 0:
            raise ValueError("force takes an HTTP status and a non-negative count")
        if status == 429 and retry_after is None:
            retry_after = 1
        self._forced.extend(Forced(status, retry_after) for _ in range(count))

    def next_forced(self) -> Forced | None:
        return self._forced.popleft() if self._forced else None

    def random_error(self) -> bool:
        return self.error_rate > 0.0 and self._rng.random() < self.error_rate

    def clear(self) -> None:
        self.error_rate = 0.0
        self.latency = 0.0
        self.truncate_to = None
        self._forced.clear()
        self._rng = random.Random(0)

    def snapshot(self) -> dict[str, Any]:
        return {
            "error_rate": self.error_rate,
            "latency": self.latency,
            "truncate_to": self.truncate_to,
            "forced": [f.status for f in self._forced],
        }


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    kind: RequestKind
    path: str
    params: dict[str, str]
    status: int
    at: float  # when it arrived, in the app's monotonic seconds


def most_in_any_window(arrivals: Sequence[float], seconds: float) -> int:
    """The most requests that arrived within any `seconds`-long window (as Lucca counts)."""
    times = sorted(arrivals)
    most = 0
    end = 0
    for start, first in enumerate(times):
        while end < len(times) and times[end] < first + seconds:
            end += 1
        most = max(most, end - start)
    return most


class RequestLog:
    """Every request a domain received: totals, per kind, per status, and the last ones."""

    def __init__(self) -> None:
        self.total = 0
        self.by_kind: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.entries: deque[LoggedRequest] = deque(maxlen=LOG_CAPACITY)

    @property
    def by_id(self) -> int:
        return self.by_kind["by_id"]

    @property
    def listings(self) -> int:
        return self.by_kind["listing"]

    def record(
        self, kind: RequestKind, path: str, params: dict[str, str], status: int, at: float
    ) -> None:
        self.total += 1
        self.by_kind[kind] += 1
        self.by_status[status] += 1
        self.entries.append(LoggedRequest(kind, path, params, status, at))

    def reset(self) -> None:
        self.total = 0
        self.by_kind.clear()
        self.by_status.clear()
        self.entries.clear()

    def snapshot(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_id": self.by_id,
            "listings": self.listings,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "requests": [
                {
                    "kind": e.kind,
                    "path": e.path,
                    "params": e.params,
                    "status": e.status,
                    "at": round(e.at, 3),
                }
                for e in self.entries
            ],
        }
