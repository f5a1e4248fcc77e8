"""When the nightly run is due, and when a contract's end is re-checked."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from app.service.polling import nightly_slot
from app.service.schedule import next_local_midnight_after

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("now", "due"),
    [
        ("01:59", False),
        ("02:00", True),
        ("03:30", True),  # a tick missed at 02:00 still starts it (once: the claim is per day)
        ("04:59", True),
        ("05:00", False),
        ("14:00", False),
    ],
)
def test_the_nightly_run_is_due_for_three_hours_after_its_time(now: str, due: bool) -> None:
    hour, minute = map(int, now.split(":"))
    moment = datetime(2026, 3, 10, hour, minute, tzinfo=PARIS)
    slot = nightly_slot(moment, "02:00")
    assert slot == (date(2026, 3, 10) if due else None)


def test_a_nightly_time_just_before_midnight_keeps_its_night_across_the_date_change() -> None:
    before = nightly_slot(datetime(2026, 3, 10, 23, 50, tzinfo=PARIS), "23:45")
    after = nightly_slot(datetime(2026, 3, 11, 0, 30, tzinfo=PARIS), "23:45")
    assert before == after == date(2026, 3, 10)


def test_a_last_day_is_rechecked_at_midnight_after_it_in_the_tenants_zone() -> None:
    at = next_local_midnight_after(date(2026, 3, 28), "Europe/Paris")
    assert at.isoformat() == "2026-03-29T00:00:00+01:00"
    # The night the clocks change: still local midnight, whatever the offset.
    assert next_local_midnight_after(date(2026, 3, 29), "Europe/Paris").utcoffset() is not None
    tokyo = next_local_midnight_after(date(2026, 3, 28), "Asia/Tokyo")
    assert tokyo.astimezone(PARIS).isoformat() == "2026-03-28T16:00:00+01:00"
