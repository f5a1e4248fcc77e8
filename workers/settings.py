"""ARQ worker settings: `arq workers.settings.WorkerSettings` (the Procfile's `worker:` line)
and `arq workers.settings.RunsWorkerSettings` (its `worker-runs:` line).

The `arq` command reads a class's attributes: each class is built from the options the tests
hand to arq.Worker too (workers/worker.py), so the two never drift. The environment is read
once, here, at start.
"""

from __future__ import annotations

from app.settings import Settings
from workers.worker import runs_worker_options, worker_options

# Every job but the steps of runs, the crons, and the steps too while no `worker-runs:` serves
# them.
WorkerSettings = type("WorkerSettings", (), worker_options(Settings.from_env()))
# The steps of runs alone (app/service/jobs.py `RUN_STEPS`): capacity added beside `worker:`.
RunsWorkerSettings = type("RunsWorkerSettings", (), runs_worker_options(Settings.from_env()))
