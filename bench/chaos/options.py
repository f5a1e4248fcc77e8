"""The suite's options, the names it plays with, and the summary it prints."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from simulators.lucca.webhooks import DEFAULT_RETRY_DELAYS

TENANT = "chaos"
# The broken tenants beside it: a stored config no process can read, a Lucca key refused.
GARBLED = "garbled"
REFUSED = "refused"
BROKEN_SIZE = 20
SKIP_FIELD = "e_skip_elevo_sync"
CUSTOM_FIELDS = {
    "cost_center": "extendedData.e_cost_center",
    "remote": "extendedData.e_remote",
    "languages": "extendedData.e_languages",
    "entity": "legalEntity.name",
}
# Lucca's retry schedule, a third as long: a Redis restart is over well within it.
RETRY_DELAYS = tuple(delay / 3 for delay in DEFAULT_RETRY_DELAYS)
# An arq job id not counted as pending work: re-checks scheduled for a contract's end (days


class ChaosError(RuntimeError):
    """The suite cannot go on (a component did not start, or died); says why."""


@dataclass
class ChaosOptions:
    employees: int = 500
    # 800 changes at 10/s: 80 s of faults, and a backlog the 40/min budget drains in minutes.
    changes: int = 800
    seed: int = 1
    keep_logs: bool = False
    worker_kills: int = 2
    redis_restarts: int = 1
    # How long Redis stays down: long enough for webhooks to meet 503s and workers to notice.
    redis_downtime: float = 3.0
    lucca_error_rate: float = 0.05
    lucca_429_bursts: int = 3
    lucca_429_burst_size: int = 10
    lucca_429_retry_after: int = 2
    proxy_error_rate: float = 0.05
    proxy_timeout_rate: float = 0.02
    duplicate_rate: float = 0.10
    streams: int = 4
    # Events are shuffled within windows of this many changes.
    window: int = 20
    # Changes played per second (the faults and kills land while they flow).
    pace: float = 10.0
    http_timeout: float = 2.0
    # 0: the tenant's own Lucca budget (40 requests a minute, Lucca's real limit is 50).
    lucca_budget: int = 0
    settle_timeout: float = 900.0
    # Elevo (every request through the proxy) hangs for this long, once; 0: never.
    elevo_stall_seconds: float = 40.0
    # Lucca answers every request of the tenant 429 for this long, once; 0: never.
    lucca_storm_seconds: float = 30.0
    lucca_storm_retry_after: int = 2
    # Two broken tenants beside the healthy one (bench/chaos/broken.py).
    broken_tenants: bool = True
    # The healthy tenant's polls (the minute tick starts them); 0: none.
    poll_interval: int = 60
    # The promises checked: the Lucca budget in any window, and every change in Elevo within
    # `landing_deadline` seconds of the faults' end. 0 budget: the tenant's own (40/min).
    budget_window: float = 60.0
    landing_deadline: float = 120.0
    # How often Elevo is compared with Lucca while the service catches up after the faults.
    landing_check_every: float = 5.0
    # LOG_LEVEL of the web and worker processes (their logs are in the log dir).
    log_level: str = "WARNING"
    quiet: bool = False


# -- the summary ----------------------------------------------------------------------------------


@dataclass
class Summary:
    options: ChaosOptions
    changes_played: int = 0
    changes_noop: int = 0
    changes_skipped: int = 0
    changes_by_kind: Counter[str] = field(default_factory=Counter)
    events_unique: int = 0
    events_duplicates: int = 0
    deliveries: int = 0
    undelivered: list[str] = field(default_factory=list)
    final_statuses: Counter[str] = field(default_factory=Counter)
    attempt_statuses: Counter[str] = field(default_factory=Counter)
    lucca_counters: dict[str, Any] = field(default_factory=dict)
    proxy_counters: dict[str, Any] = field(default_factory=dict)
    worker_kills: list[str] = field(default_factory=list)
    redis_restarts: list[str] = field(default_factory=list)
    restarts: dict[str, int] = field(default_factory=dict)
    exit_codes: dict[str, list[int]] = field(default_factory=dict)
    play_seconds: float = 0.0
    quiescence_seconds: float = 0.0
    pre_check: dict[str, int] = field(default_factory=dict)
    pre_mismatches: list[str] = field(default_factory=list)
    jobs: dict[str, Any] = field(default_factory=dict)
    plan: Counter[str] = field(default_factory=Counter)
    plan_samples: list[str] = field(default_factory=list)
    reconciliation: dict[str, Any] = field(default_factory=dict)
    checked: int = 0
    mismatches: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    wrongly_suspended: list[str] = field(default_factory=list)
    stall: str = ""
    storm: str = ""
    broken_at: datetime | None = None
    broken: dict[str, Any] = field(default_factory=dict)
    budget: int = 0
    lucca_requests: int = 0
    max_window: int = 0
    max_window_at: str = ""
    # Seconds from the faults' end to every change in Elevo (None: not measured).
    latest_landing: float | None = None
    landed_by: str = ""
    failures: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    log_dir: str | None = None

    @property
    def lucca_500(self) -> int:
        return int(self.lucca_counters.get("by_status", {}).get("500", 0))

    @property
    def lucca_429(self) -> int:
        return int(self.lucca_counters.get("by_status", {}).get("429", 0))

    @property
    def proxy_503(self) -> int:
        return int(self.proxy_counters.get("injected_503", 0))

    @property
    def proxy_timeouts(self) -> int:
        return int(self.proxy_counters.get("timeouts", 0))

    @property
    def ok(self) -> bool:
        return not (self.mismatches or self.wrongly_suspended or self.failures)

    def _retries(self) -> str:
        if "retries" not in self.jobs:
            return "retry delays not logged (arq's job lines are below LOG_LEVEL)"
        return (
            f"{self.jobs['retries']} retries ({self.jobs['retries_over_60s']} deferred over"
            f" 60s, longest {self.jobs['longest_retry_s']:.0f}s)"
        )

    def render(self) -> str:
        lines = [
            f"chaos suite: {self.options.employees} employees, {self.options.changes} changes,"
            f" seed {self.options.seed}: " + ("PASS" if self.ok else "FAIL"),
            *self._played_lines(),
            *self._outcome_lines(),
        ]
        lines += [f"  BEFORE    {text}" for text in self.pre_mismatches[:10]]
        lines += [f"  MISMATCH  {text}" for text in self.mismatches[:30]]
        lines += [f"  SUSPENDED {text}" for text in self.wrongly_suspended[:30]]
        lines += [f"  FAILURE   {text}" for text in self.failures]
        if self.log_dir:
            lines.append(f"  logs                {self.log_dir}")
        return "\n".join(lines)

    def _played_lines(self) -> list[str]:
        """What was played and injected."""
        o = self.options
        lucca, proxy = self.lucca_counters, self.proxy_counters
        return [
            f"  changes played      {self.changes_played} ({self.changes_noop} no-ops,"
            f" {self.changes_skipped} skipped as invalid) in {self.play_seconds:.0f}s",
            f"                      {counts_text(self.changes_by_kind)}",
            f"  events sent         {self.events_unique} events + {self.events_duplicates}"
            f" duplicates = {self.deliveries} deliveries, {o.streams} streams,"
            f" shuffled in windows of {o.window} changes",
            f"  webhook answers     final: {counts_text(self.final_statuses)};"
            f" every attempt: {counts_text(self.attempt_statuses)};"
            f" undelivered {len(self.undelivered)}",
            f"  Lucca faults        {self.lucca_500} x 500 (error rate {o.lucca_error_rate}),"
            f" {self.lucca_429} x 429 ({o.lucca_429_bursts} bursts of"
            f" {o.lucca_429_burst_size}, Retry-After {o.lucca_429_retry_after}s);"
            f" {lucca.get('total', 0)} requests, by status {lucca.get('by_status', {})}",
            f"  Elevo proxy faults  {self.proxy_503} x 503, {self.proxy_timeouts} timeouts"
            f" ({proxy.get('timeouts_forwarded', 0)} forwarded then hung,"
            f" {proxy.get('timeouts_dropped', 0)} never forwarded);"
            f" {proxy.get('requests', 0)} requests, by method {proxy.get('injected_by_method')}",
            f"  worker kills        {len(self.worker_kills)}: {'; '.join(self.worker_kills)}",
            f"  process restarts    {counts_text(Counter(self.restarts))}"
            f" (exit codes {self.exit_codes})",
            f"  Redis restarts      {len(self.redis_restarts)}: {'; '.join(self.redis_restarts)}",
            f"  Elevo stall         {self.stall or 'none'}",
            f"  Lucca 429 storm     {self.storm or 'none'}",
            f"  broken tenants      {self.broken or 'none'}",
        ]

    def _outcome_lines(self) -> list[str]:
        """What the service made of it."""
        recon = self.reconciliation
        return [
            f"  worker jobs         {self._retries()}, {self.jobs.get('failed', '?')}"
            f" failed job runs {self.jobs.get('failed_by', {})} (from the workers' logs)",
            f"                      runs failed (department syncs, polls, reconciliations):"
            f" {sum(self.jobs.get('runs_failed', {}).values())} {self.jobs.get('runs_failed', {})}",
            *(
                [f"                      retries by cause: {self.jobs['retry_causes']}"]
                if "retry_causes" in self.jobs
                else []
            ),
            f"  quiescence          {self.quiescence_seconds:.0f}s after the last webhook;"
            f" then {self.pre_check.get('mismatches', '?')} mismatches,"
            f" {self.pre_check.get('wrongly_suspended', '?')} wrongly suspended"
            " (before the reconciliation)",
            f"  dry-run plan        {counts_text(self.plan) or 'nothing to do'}",
            *(f"                      {sample}" for sample in self.plan_samples),
            f"  reconciliation      run {recon.get('id')}: {recon.get('state')}"
            f" in {recon.get('seconds', 0):.0f}s; {counts_text(Counter(recon.get('counts', {})))}"
            + (f"; errors {recon.get('errors')}" if recon.get("errors") else ""),
            f"  consistency         {self.checked} users checked, {len(self.mismatches)}"
            f" mismatches, {len(self.conflicts)} conflicts (userName held by another profile)",
            f"  wrongly suspended   {len(self.wrongly_suspended)}",
            f"  Lucca budget        at most {self.max_window} requests in any"
            f" {self.options.budget_window:.0f}s window ({self.max_window_at}), budget"
            f" {self.budget}; {self.lucca_requests} requests in all, 429s included",
            "  latest landing      "
            + (
                "not measured"
                if self.latest_landing is None
                else f"{self.latest_landing:.0f}s after the faults stopped"
                f" (deadline {self.options.landing_deadline:.0f}s), by {self.landed_by}"
            ),
            f"  wall time           {self.wall_seconds:.0f}s",
        ]


def counts_text(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{key} {n}" for key, n in sorted(counter.items(), key=lambda kv: -kv[1]))
