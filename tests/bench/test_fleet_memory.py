"""The fleet benchmark's key shapes and its memory model (bench/fleet_redis.py, fleet_memory.py):
pure functions, no Redis."""

from __future__ import annotations

import pytest

from bench.fleet_memory import HISTORY, history_bytes, model
from bench.fleet_redis import KeyClass, classify

FULL = frozenset({("acme", "20261205T101940-c3e053")})
DAY = 86400.0


@pytest.mark.parametrize(
    ("key", "shape"),
    [
        ("t:acme:history:416", "t:{t}:history:{user}"),
        ("t:acme:gen:416", "t:{t}:gen:{user}"),
        ("t:acme:run:20261205T101940-c3e053", "t:{t}:run:{full run}"),
        ("t:acme:run:20261205T101940-c3e053:elevo", "t:{t}:run:{full run}:elevo"),
        ("t:acme:run:20261205T111111-aaaaaa:users", "t:{t}:run:{webhook run}:users"),
        ("t:acme:event:evt-1", "t:{t}:event:{id}"),
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
    day = {HISTORY: shape(10, 1000, entries=11, ttl_days=30)}
    end = {
        HISTORY: shape(10, 1100, entries=21, ttl_days=30),  # the night: +1 entry, +10 B each
        "t:{t}:idmap": shape(1, 500),
        "t:{t}:event:{id}": shape(1, 100, ttl_days=7),
        "t:{t}:run:{full run}:elevo": shape(1, 2000, ttl_days=1),
        "t:{t}:run:{full run}:users": shape(2, 400, ttl_days=30),
        "arq:result:sync": shape(3, 300, ttl_days=60 / DAY),
    }
    steady = 1100 + 500 + 100 + 2000 + 400
    result = model(
        day=day, end=end, used_growth=steady, employees=10, tenants=1, changes=1, runs=3,
        retention_days=30.0,
    )  # fmt: skip
    terms = result["terms"]
    assert terms["k"] == 1.0
    assert terms["n"] == 1.0
    assert terms["h_n"] == 10.0
    kept = result["shapes"]
    assert kept["t:{t}:event:{id}"]["kept_bytes"] == 100 * 0.1 * 10 * 7  # per change x c*E x T
    assert kept["t:{t}:run:{full run}:elevo"]["kept_bytes"] == 2000  # one night's, a day
    assert kept["t:{t}:run:{full run}:users"]["kept_bytes"] == 200 * 30  # per run x N x R
    assert kept["arq:result:sync"]["kept_bytes"] == 0  # transient
    assert result["measured_bytes_per_employee"] == steady / 10


def test_history_fills_up_to_its_cap() -> None:
    terms = {"c": 0.05, "n": 1.0, "h_d": 1000.0, "h_n": 40.0}
    entries, size = history_bytes(terms, 1, 30.0)
    assert entries == pytest.approx(32.5)
    assert size == pytest.approx(1000 * 2.5 + 40 * 30)
    entries, size = history_bytes(terms, 1, 1e9)
    assert entries == 200
    assert size == pytest.approx(200 * (0.05 * 1000 + 40) / 1.05)
