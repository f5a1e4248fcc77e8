"""Prometheus metrics. The web process serves them at /metrics; a worker on its own port.

Labels carry tenant names, operations and statuses: never a user id or anything secret.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

WEBHOOK_EVENTS = Counter(
    "sync_webhook_events_total",
    "Lucca webhook requests by outcome (queued, duplicate, ignored, rejected, unavailable...)",
    ["tenant", "outcome"],
)
JOBS = Counter("sync_jobs_total", "Jobs run, by function and outcome", ["function", "outcome"])
DECISIONS = Counter(
    "sync_decisions_total", "Per-employee decisions, by action", ["tenant", "action"]
)
LUCCA_REQUESTS = Counter(
    "sync_lucca_requests_total",
    "Requests to Lucca by operation and status (0: no answer)",
    ["tenant", "operation", "status"],
)
ELEVO_REQUESTS = Counter(
    "sync_elevo_requests_total",
    "Requests to Elevo by operation and status (0: no answer)",
    ["tenant", "operation", "status"],
)
LUCCA_BUDGET_WAITS = Counter(
    "sync_lucca_budget_waits_total",
    "Times a Lucca request had to wait for the tenant's budget",
    ["tenant"],
)
QUEUE_DEPTH = Gauge("sync_queue_depth", "Jobs waiting in each ARQ queue", ["queue"])
WEBHOOK_TO_ELEVO = Histogram(
    "sync_webhook_to_elevo_seconds",
    "From a webhook's receipt to the Elevo write it caused",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)


def lucca_hook(tenant: str) -> _Hook:
    return _Hook(LUCCA_REQUESTS, tenant)


def elevo_hook(tenant: str) -> _Hook:
    return _Hook(ELEVO_REQUESTS, tenant)


class _Hook:
    """The clients' `on_response` callback, counting into one labelled counter."""

    def __init__(self, counter: Counter, tenant: str) -> None:
        self._counter = counter
        self._tenant = tenant

    def __call__(self, operation: str, status: int) -> None:
        self._counter.labels(self._tenant, operation, str(status)).inc()
