"""Time, injected: the real clock by default, a hand-driven one in tests and demos."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to; also a monotonic source and an instant sleep.

    `create_lucca_app(registry, monotonic=clock.monotonic, sleep=clock.sleep)` makes the rate
    limit and the added latency follow it, and `slept` records every wait.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._start = start.astimezone(UTC)
        self._now = self._start
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self._now

    def advance(self, seconds: float = 0.0, **delta: float) -> datetime:
        self._now += timedelta(seconds=seconds, **delta)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment.astimezone(UTC)

    def monotonic(self) -> float:
        return (self._now - self._start).total_seconds()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)
