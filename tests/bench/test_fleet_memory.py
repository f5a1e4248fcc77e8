"""The fleet benchmark's key shapes and its memory model (bench/fleet_redis.py, fleet_memory.py):
pure functions, no Redis."""

from __future__ import annotations

import pytest

from app.store import history_blob
from bench.fleet_memory import HISTORY, driver, history_bytes, model
from bench.fleet_redis import KeyClass, classify, count_history

FULL = frozenset({("acme", "20261205T101940-c3e053")})
DAY = 86400.0


@pytest.mark.parametrize(
    ("key", "shape"),
    [
        ("t:acme:hist:416", "t:{t}:hist:{user}"),
        ("t:acme:gen:416", "t:{t}:gen:{user}"),
        ("t:acme:profile:416", "t:{t}:profile:{user}"),
        ("t:acme:run:20261205T101940-c3e053", "t:{t}:run:{full run}"),
        ("t:acme:run:20261205T101940-c3e053:elevo", "t:{t}:run:{full run}:elevo"),
        ("t:acme:run:20261205T111111-aaaaaa:users", "t:{t}:run:{webhook run}:users"),
        ("t:acme:event:evt-1", "t:{t}:event:{id}"),
        ("t:acme:webhook-runs", "t:{t}:webhook-runs"),
        ("t:acme:webhook-hours:2026-12-05", "t:{t}:webhook-hours:{id}"),
        ("t:acme:status:nightly:2026-12-05", "t:{t}:status:nightly:{id}"),
        ("t:acme:idmap", "t:{t}:idmap"),
        ("tenant:acme:config", "tenant:{t}:config"),
        ("lucca:http://127.0.0.1:4000/acme:requests", "lucca:{host}:requests"),
        ("arq:job:sync:acme:416:1", "arq:job:sync"),
        ("arq:queue", "arq:queue"),
    ],
)
def test_classify_names_each_key_by_its_shape(key: str, shape: str) -> None:
    assert classify(key, FULL) == shape


def shape(keys: int, size: int, entries: int = 0, ttl_days: float | None = None) -> KeyClass:
    ttl = [-1.0] if ttl_days is None else [ttl_days * DAY]
    return KeyClass(keys=keys, bytes=size, entries=entries, ttl_s=ttl)


def test_model_keeps_each_shape_for_its_lifetime() -> None:
    # 10 employees of one tenant; 1 change; 2 runs (the first and a nightly).
    first = {HISTORY: shape(10, 900, entries=10, ttl_days=30)}
    day = {
        HISTORY: shape(10, 1000, entries=11, ttl_days=30),  # the change: +1 entry, 100 B
        "t:{t}:run:{full run}:users": shape(1, 300, ttl_days=30),  # the first run's creations
    }
    end = {
        HISTORY: shape(10, 1040, entries=13, ttl_days=30),  # the night: +2 entries, 20 B each
        "t:{t}:idmap": shape(1, 500),
        "t:{t}:event:{id}": shape(1, 100, ttl_days=7),
        "t:{t}:profile:{user}": shape(10, 4000, ttl_days=1),  # the first sync's, and the change's
        "t:{t}:run:{full run}:elevo": shape(1, 2000, ttl_days=1),
        "t:{t}:run:{full run}:users": shape(2, 400, ttl_days=30),
        "arq:result:sync": shape(3, 300, ttl_days=60 / DAY),
        "t:{t}:runs": shape(1, 120, ttl_days=30),  # the two runs (not the webhook's)
        "t:{t}:webhook-runs": shape(1, 90, ttl_days=3),  # the change's webhook
        "t:{t}:webhook-hours:{id}": shape(1, 150, ttl_days=30.4),  # its hour's numbers
    }
    steady = 1040 + 500 + 100 + 4000 + 2000 + 400 + 120 + 90 + 150
    result = model(
        first=first, day=day, end=end, used_growth=steady, employees=10, tenants=1, changes=1,
        runs=2, retention_days=30.0,
    )  # fmt: skip
    terms = result["terms"]
    assert terms["k"] == 1.0
    assert terms["h_c"] == 90.0
    assert terms["h_ch"] == 100.0
    assert terms["n"] == 0.2
    assert terms["h_n"] == 20.0
    kept = result["shapes"]
    assert kept["t:{t}:event:{id}"]["kept_bytes"] == 100 * 0.1 * 10 * 7  # per change x c*E x T
    # One copy per change, however many the first sync left: 400 B x c*E x 1 day.
    assert kept["t:{t}:profile:{user}"]["kept_bytes"] == 400
    assert kept["t:{t}:run:{full run}:elevo"]["kept_bytes"] == 2000  # one night's, a day
    # The nightly run's 100 B (not the first run's 300) x N x R.
    assert kept["t:{t}:run:{full run}:users"]["kept_bytes"] == 100 * 30
    assert kept["arq:result:sync"]["kept_bytes"] == 0  # transient
    assert kept["t:{t}:runs"]["kept_bytes"] == 60 * 1 * 30  # per run x N x R
    assert kept["t:{t}:webhook-runs"]["kept_bytes"] == 90 * 0.1 * 10 * 3  # a change's, 3 days
    assert kept["t:{t}:webhook-hours:{id}"]["kept_bytes"] == 150 * 30  # a tenant's day x T
    assert result["measured_bytes_per_employee"] == steady / 10


def test_history_grows_with_the_changes_and_the_nightly_entries() -> None:
    terms = {"c": 0.05, "n": 0.1, "R": 30.0, "h_c": 500.0, "h_ch": 200.0, "h_n": 100.0}
    entries, size = history_bytes(terms, 1, 30.0)
    assert entries == pytest.approx(1 + 30 * 0.15)
    assert size == pytest.approx(500 + 200 * 1.5 + 100 * 0.1 * 30)
    # An entry is kept R days: after 200 nights a history holds what the last 30 left.
    assert history_bytes(terms, 1, 1e9) == (entries, size)
    entries, size = history_bytes(terms, 1, 10.0)
    assert entries == pytest.approx(1 + 10 * 0.15)


def test_a_webhook_runs_keys_each_have_a_driver() -> None:
    assert driver("t:{t}:run:{webhook run}", shape(5, 500, ttl_days=3)) == "change"
    assert driver("t:{t}:webhook-runs", shape(1, 90, ttl_days=3)) == "change"
    assert driver("t:{t}:webhook-hours:{id}", shape(1, 150, ttl_days=30)) == "tenant day"
    assert driver("t:{t}:runs", shape(1, 120, ttl_days=30)) == "run index"


def test_a_history_counts_its_entries_and_its_newest_action() -> None:
    skipped = {"user": "416", "action": "skipped", "reason": "excluded: profile not managed",
               "diff": {}, "written": False, "dry_run": False}  # fmt: skip
    nights = [skipped | {"at": f"2026-12-0{n}T02:00:00.000Z", "run": None} for n in (3, 2)]
    creation = skipped | {"action": "create", "at": "2026-12-01T02:00:00.000Z", "run": None}
    shape = KeyClass()
    count_history(shape, history_blob.blob_of([*nights, creation]))
    count_history(shape, None)
    assert (shape.entries, dict(shape.newest)) == (3, {"skipped": 1, "none": 1})
