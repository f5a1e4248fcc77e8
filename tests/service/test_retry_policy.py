"""Retries: exponential backoff with jitter, and the servers' own Retry-After first."""

from __future__ import annotations

import pytest

from app.clients.errors import ElevoRateLimited, ElevoUnavailable, LuccaRateLimited
from app.service.batcher import LuccaThrottled
from app.service.results import backoff, retry_delay


@pytest.mark.parametrize(("job_try", "step"), [(1, 1), (2, 2), (3, 4), (6, 32), (20, 300)])
def test_backoff_doubles_with_jitter_up_to_a_cap(job_try: int, step: float) -> None:
    delays = [backoff(job_try) for _ in range(200)]
    assert min(delays) >= 0.5 * step
    assert max(delays) <= 1.5 * step
    assert len(set(delays)) > 100  # jittered: retries of a burst do not move in step


def test_retry_after_of_either_side_is_honoured() -> None:
    lucca = retry_delay(LuccaRateLimited("429", retry_after=30), job_try=1)
    elevo = retry_delay(ElevoRateLimited("429", retry_after=12), job_try=1)
    assert 30 <= lucca <= 31
    assert 12 <= elevo <= 2 * 12 + 1


def test_the_jobs_waiting_for_an_elevo_pause_do_not_wake_at_once() -> None:
    delays = [retry_delay(ElevoRateLimited("429", retry_after=10), job_try=1) for _ in range(400)]
    assert min(delays) >= 10
    # Spread over about the pause's own length: a recovering Elevo gets them a few at a time.
    assert max(delays) - min(delays) > 8
    assert sum(1 for d in delays if d < 11) < 100


def test_a_spent_budget_waits_for_its_next_token() -> None:
    assert 4 <= retry_delay(LuccaThrottled("acme", 4.0), job_try=9) <= 5


def test_a_429_without_retry_after_and_a_5xx_back_off() -> None:
    assert 4 <= retry_delay(LuccaRateLimited("429", retry_after=None), job_try=4) <= 12
    assert 4 <= retry_delay(ElevoUnavailable("503", status=503), job_try=4) <= 12
