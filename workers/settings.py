"""ARQ worker settings: `arq workers.settings.WorkerSettings` (the Procfile's `worker:` line)
and `arq workers.settings.RunsWorkerSettings` (its `worker-runs:` line)."""

from __future__ import annotations

from arq.connections import RedisSettings

from app.settings import Settings
from workers.worker import runs_worker_options, worker_options


class WorkerSettings:
    """Read by the `arq` command; the environment is read once, here, at start."""

    _settings = Settings.from_env()
    _options = worker_options(_settings)
    functions = _options["functions"]
    cron_jobs = _options["cron_jobs"]
    on_startup = _options["on_startup"]
    on_shutdown = _options["on_shutdown"]
    on_job_start = _options["on_job_start"]
    after_job_end = _options["after_job_end"]
    redis_settings: RedisSettings = _options["redis_settings"]
    job_serializer = _options["job_serializer"]
    job_deserializer = _options["job_deserializer"]
    max_jobs = _options["max_jobs"]
    poll_delay = _options["poll_delay"]
    health_check_interval = _options["health_check_interval"]
    keep_result = _options["keep_result"]
    job_timeout = _options["job_timeout"]


class RunsWorkerSettings:
    """The steps of runs alone (app/service/jobs.py `RUN_STEPS`): capacity added beside the
    `worker:` process, which then leaves them to this one."""

    _settings = Settings.from_env()
    _options = runs_worker_options(_settings)
    queue_name: str = _options["queue_name"]
    functions = _options["functions"]
    cron_jobs = _options["cron_jobs"]
    on_startup = _options["on_startup"]
    on_shutdown = _options["on_shutdown"]
    on_job_start = _options["on_job_start"]
    after_job_end = _options["after_job_end"]
    redis_settings: RedisSettings = _options["redis_settings"]
    job_serializer = _options["job_serializer"]
    job_deserializer = _options["job_deserializer"]
    max_jobs = _options["max_jobs"]
    poll_delay = _options["poll_delay"]
    health_check_interval = _options["health_check_interval"]
    keep_result = _options["keep_result"]
    job_timeout = _options["job_timeout"]
