"""The two promises the suite holds the service to besides the final state: the Lucca budget in
every window (from the simulator's own request log), and every change in Elevo within
`landing_deadline` seconds of the faults' end."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from bench.chaos.options import ChaosOptions, Summary
from bench.chaos.pieces import ChaosStack
from bench.chaos.verdict import Verdict, verdict
from simulators.lucca.faults import LOG_CAPACITY, most_in_any_window

# The tenant's own budget when no override is set (its `lucca_requests_per_minute`).
TENANT_BUDGET = 40


@dataclass
class RequestLog:
    """The healthy tenant's Lucca requests, kept across the counters' reset under faults."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    async def keep(self, chaos: ChaosStack) -> None:
        """Add what the simulator logged since the last reset (call before each reset)."""
        self.entries += await chaos.lucca().request_log()


def _busiest_start(arrivals: list[float], seconds: float) -> float:
    """When the busiest `seconds`-long window starts (`arrivals` sorted)."""
    best, best_start, end = 0, arrivals[0], 0
    for start, first in enumerate(arrivals):
        while end < len(arrivals) and arrivals[end] < first + seconds:
            end += 1
        if end - start > best:
            best, best_start = end - start, first
    return best_start


def check_budget(log: RequestLog, options: ChaosOptions, summary: Summary) -> None:
    """The most requests in any `budget_window`-second window, 429s included (each one is a
    request the customer's Lucca counted against the service)."""
    budget = options.lucca_budget or TENANT_BUDGET
    arrivals = sorted(float(entry["at"]) for entry in log.entries)
    summary.budget = budget
    summary.lucca_requests = len(arrivals)
    summary.max_window = most_in_any_window(arrivals, options.budget_window)
    if arrivals:
        start = _busiest_start(arrivals, options.budget_window)
        summary.max_window_at = f"from {start - arrivals[0]:.0f}s after the first request"
    if summary.max_window > budget:
        summary.failures.append(
            f"{summary.max_window} Lucca requests in one {options.budget_window:.0f}s window"
            f" ({summary.max_window_at}): over the budget of {budget}"
        )
    if len(log.entries) >= LOG_CAPACITY:  # the simulator kept only the last ones
        summary.failures.append(f"the Lucca request log overflowed ({LOG_CAPACITY} kept)")


@dataclass
class Landing:
    """Elevo compared with Lucca every few seconds from the faults' end: when it last
    differed, and when it first agreed after that."""

    cleared_at: float
    agreed_at: float | None = None
    checks: int = 0
    differing: int = -1  # at the faults' end

    def observe(self, found: Verdict) -> None:
        """One comparison: Elevo differs, or agrees (since the first agreeing one in a row)."""
        pending = len(found.mismatches) + len(found.wrongly_suspended)
        if self.checks == 0:
            self.differing = pending
        self.checks += 1
        if pending:
            self.agreed_at = None
        elif self.agreed_at is None:
            self.agreed_at = time.monotonic()

    async def watch(self, chaos: ChaosStack, every: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.observe(await verdict(chaos))
            with_stop = asyncio.create_task(stop.wait())
            await asyncio.wait([with_stop], timeout=every)
            with_stop.cancel()


def judge_landing(landing: Landing, options: ChaosOptions, summary: Summary, how: str) -> None:
    """`how`: what made Elevo agree at `landing.agreed_at` (the event path, or the
    reconciliation); a failure past the deadline, or if it never agreed."""
    if landing.agreed_at is None:
        summary.failures.append("Elevo never agreed with Lucca after the faults")
        return
    summary.latest_landing = landing.agreed_at - landing.cleared_at
    summary.landed_by = (
        f"{how}; {landing.differing} users differed at the faults' end,"
        f" {landing.checks} checks every {options.landing_check_every:.0f}s"
    )
    if summary.latest_landing > options.landing_deadline:
        summary.failures.append(
            f"a change landed {summary.latest_landing:.0f}s after the faults stopped"
            f" ({how}): later than {options.landing_deadline:.0f}s"
        )
