"""The worker registers every job under the name the service queues it by."""

from __future__ import annotations

from app.service.jobs import Job
from tests.conftest import make_settings
from workers.worker import cron_jobs, functions


def test_every_job_is_registered_under_its_enum_name() -> None:
    registered = [f.name for f in functions(make_settings())] + [c.name for c in cron_jobs()]
    assert sorted(registered) == sorted(job.value for job in Job)


def test_the_job_names_are_the_ones_queued_jobs_already_carry() -> None:
    # Jobs queued by an earlier version name their function: renaming one strands them.
    assert [job.value for job in Job] == [
        "sync_user",
        "reconcile_snapshot",
        "reconcile_page",
        "reconcile_finish",
        "poll_changes",
        "sync_department",
        "plan_users",
        "sync_user_due",
        "cron:tick",
        "release_page",
        "send_alert",
        "cron:alerts_tick",
        "drain_coalesced",
        "lucca_webhook",
    ]
