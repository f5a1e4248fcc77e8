"""The worker's functions and options, shared by `workers.settings` and the tests."""

from __future__ import annotations

import logging
import os
from typing import Any

from arq import cron, func
from arq.typing import WorkerCoroutine
from arq.worker import Function
from prometheus_client import start_http_server

from app.logs import configure_logging
from app.serialization import job_deserializer, job_serializer
from app.service.alerts import SEND_ALERT_MAX_TRIES, SEND_ALERT_TIMEOUT
from app.service.jobs import Job
from app.service.resources import Resources, redis_settings
from app.service.steps import RECONCILE_MAX_TRIES
from app.service.sync_user import SYNC_USER_MAX_TRIES
from app.settings import Settings
from app.store import keys
from app.store.pool import unlock_pool
from workers import heartbeat, jobs
from workers.runs_queue import Announcement, StandbyRunsWorker

log = logging.getLogger(__name__)


def _run_step(coroutine: WorkerCoroutine, job: Job, timeout: float) -> Function:
    """A job of a run: short, retried through budget waits (failures are counted apart)."""
    return func(
        coroutine,
        name=job.value,
        timeout=timeout,
        max_tries=RECONCILE_MAX_TRIES,
        keep_result=0,
    )


def functions(settings: Settings) -> list[Any]:
    # Names from the enum: a misspelt one fails here, at import, not when a job is queued.
    step_timeout = settings.step_job_timeout_seconds
    return [
        func(
            jobs.sync_user,
            name=Job.SYNC_USER.value,
            timeout=settings.sync_job_timeout_seconds,
            max_tries=SYNC_USER_MAX_TRIES,
            keep_result=60,
        ),
        _run_step(jobs.reconcile_snapshot, Job.RECONCILE_SNAPSHOT, step_timeout),
        _run_step(jobs.reconcile_page, Job.RECONCILE_PAGE, step_timeout),
        _run_step(jobs.reconcile_finish, Job.RECONCILE_FINISH, step_timeout),
        _run_step(jobs.poll_changes, Job.POLL_CHANGES, step_timeout),
        _run_step(jobs.sync_department, Job.SYNC_DEPARTMENT, step_timeout),
        _run_step(jobs.plan_users, Job.PLAN_USERS, step_timeout),
        _run_step(jobs.release_page, Job.RELEASE_PAGE, step_timeout),
        func(
            jobs.send_alert,
            name=Job.SEND_ALERT.value,
            timeout=SEND_ALERT_TIMEOUT,
            max_tries=SEND_ALERT_MAX_TRIES,
            keep_result=0,
        ),
        # keep_result=0: its fixed id is free again as soon as it ends.
        func(jobs.drain_coalesced, name=Job.DRAIN_COALESCED.value, timeout=60, keep_result=0),
        func(
            jobs.lucca_webhook,
            name=Job.LUCCA_WEBHOOK.value,
            timeout=120,
            max_tries=20,
            keep_result=0,
        ),
        func(
            jobs.sync_user_due,
            name=Job.SYNC_USER_DUE.value,
            timeout=30,
            max_tries=10,
            keep_result=0,
        ),
    ]


def cron_jobs() -> list[Any]:
    # unique=True: several workers enqueue one tick per minute between them.
    return [
        cron(jobs.tick, name=Job.TICK.value, second=0, unique=True, timeout=50, keep_result=0),
        # Half a minute apart from `tick`: the two never compete for the same second.
        cron(
            jobs.alerts_tick,
            name=Job.ALERTS_TICK.value,
            second=30,
            unique=True,
            timeout=50,
            keep_result=0,
        ),
    ]


def serve_metrics(port: int, host: str) -> None:
    if not port:
        return
    try:
        start_http_server(port, addr=host)
    except OSError as exc:  # a second worker on this host: the first one serves them
        log.warning("worker metrics not served on port %s: %s", port, exc)


def startup(settings: Settings, *, dedicated_to_runs: bool = False) -> WorkerCoroutine:
    async def on_startup(ctx: dict[Any, Any]) -> None:
        # ARQ's own pool too: its polls and job endings queued on redis-py's checkout lock.
        await unlock_pool(ctx["redis"])
        # Tests hand in their own resources (with an injected clock); production builds them.
        if "resources" not in ctx:
            # Here, not at import: the arq command sets up its own logging after importing us.
            configure_logging(settings.log_level)
            ctx["resources"] = await Resources.create(settings)
            serve_metrics(settings.worker_metrics_port, settings.worker_metrics_host)
            if dedicated_to_runs and settings.runs_worker_nice > 0:
                # The operating system gives a core to the live worker first: changes keep
                # their latency while a big run takes the rest (docs/benchmarks.md, 6).
                os.nice(settings.runs_worker_nice)
        await heartbeat.start(ctx, settings.worker_dead_after_seconds)
        if dedicated_to_runs:
            announcement = Announcement(ctx["resources"])
            await announcement.renew()
            announcement.start()
            ctx["announcement"] = announcement
        else:
            # One heartbeat for the process: the jobs of both its queues are recorded under it.
            shared = {"running_jobs": ctx["running_jobs"]}
            standby = StandbyRunsWorker(_queue_options(settings), ctx["resources"], shared)
            await standby.start()
            ctx["runs_standby"] = standby

    return on_startup


async def on_shutdown(ctx: dict[Any, Any]) -> None:
    for name in ("runs_standby", "announcement"):  # before the resources they use
        served: StandbyRunsWorker | Announcement | None = ctx.pop(name, None)
        if served is not None:
            await served.aclose()
    await heartbeat.stop(ctx)  # once no job of either queue runs here
    resources: Resources | None = ctx.get("resources")
    if resources is not None and ctx.get("owns_resources", True):
        await resources.aclose()


def _queue_options(settings: Settings) -> dict[str, Any]:
    """What a worker of either queue takes (arq.Worker's arguments)."""
    return {
        "functions": functions(settings),
        "on_job_start": heartbeat.job_started,
        "after_job_end": heartbeat.job_ended,
        "redis_settings": redis_settings(settings),
        "job_serializer": job_serializer,
        "job_deserializer": job_deserializer,
        "max_jobs": settings.worker_max_jobs,
        "poll_delay": settings.worker_poll_delay_seconds,
        # Short, so that `arq --check` works as a liveness probe.
        "health_check_interval": 10,
        "keep_result": 60,
        "job_timeout": settings.sync_job_timeout_seconds,
    }


def worker_options(settings: Settings) -> dict[str, Any]:
    """Everything arq.Worker takes for the `worker:` line (and the tests): the live queue, the
    crons, and the runs' queue beside them while no `worker-runs:` process serves it."""
    return _queue_options(settings) | {
        "cron_jobs": cron_jobs(),
        "on_startup": startup(settings),
        "on_shutdown": on_shutdown,
    }


def runs_worker_options(settings: Settings) -> dict[str, Any]:
    """The `worker-runs:` line: the runs' queue alone (every function, for a job queued by an
    earlier version), no crons."""
    return _queue_options(settings) | {
        "queue_name": keys.runs_queue(),
        "cron_jobs": [],
        "on_startup": startup(settings, dedicated_to_runs=True),
        "on_shutdown": on_shutdown,
    }
