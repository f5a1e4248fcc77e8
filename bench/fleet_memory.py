"""Redis memory per employee: measured after a compressed day, extrapolated to the retention.

Expiries run in real time, so a benchmark of minutes holds one day of records where a
deployment holds as many days as each key lives. The census (bench/fleet_redis.py) gives every
key shape's bytes (MEMORY USAGE) and expiry; each shape has a driver and a lifetime T (its
TTL in days, at most R), and the model keeps T days of it:

    fixed      (configs, id maps, status; no expiry)  as measured
    change     (event marks, webhook runs, gen/noticed)  bytes per change * c*E * T
    full run   (a run's record and working sets)     bytes per run key * N * T   (1 run a night)
    run index  (t:{t}:runs, one member per run)      bytes per run * (N + c*E) * R
    history    (t:{t}:history:{user}, <= 200 entries, alive while an entry lands every R days)
               E * (h_d * (1 + c*R) + h_n * n*R)                 while 1 + R*(c + n) <= 200
               E * 200 * (c*h_d + n*h_n) / (c + n)               once the lists are full
    transient  (TTL under an hour: ARQ results, read caches, cooldowns)  0

    M / E = k * (sum of the above) / E

E employees, N tenants; c changes per employee per day (the day's share); n history entries a
nightly run writes per employee, h_n their bytes each, h_d the bytes of the other entries
(creations, changes), all measured; R = RUN_RETENTION_SECONDS in days; k = used_memory growth
over the empty Redis / the census' bytes (what MEMORY USAGE leaves out: the keyspace and
expiry tables, allocator rounding).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.fleet_redis import KeyClass

HISTORY_LENGTH = 200  # app/store/records.py
HISTORY = "t:{t}:history:{user}"
RUN_INDEX = "t:{t}:runs"
DAY_S = 86400.0
TRANSIENT_S = 3600.0
CHANGE_PREFIXES = (
    "t:{t}:run:{webhook run}",
    "t:{t}:event:",
    "t:{t}:event-body:",
    "t:{t}:gen:",
    "t:{t}:noticed:",
    "t:{t}:awaiting-manager:",
    "t:{t}:failures:",
)


def driver(name: str, shape: KeyClass) -> str:
    ttls = [t for t in shape.ttl_s if t >= 0]
    if ttls and len(ttls) == len(shape.ttl_s) and max(ttls) < TRANSIENT_S:
        return "transient"
    if name == HISTORY:
        return "history"
    if name == RUN_INDEX:
        return "run index"
    if name.startswith("t:{t}:run:{full run}"):
        return "full run"
    if name.startswith(CHANGE_PREFIXES):
        return "change"
    return "fixed"


def lifetime_days(shape: KeyClass, retention_days: float) -> float:
    ttls = [t for t in shape.ttl_s if t >= 0]
    if not ttls or len(ttls) != len(shape.ttl_s):
        return retention_days
    return min(retention_days, max(1.0, round(max(ttls) / DAY_S)))


def history_terms(day: KeyClass, end: KeyClass, employees: int) -> dict[str, float]:
    """h_d: bytes per entry before the night (creations, changes); n and h_n: the entries
    the night added per employee, and their bytes each."""
    night_entries = end.entries - day.entries
    return {
        "h_d": day.bytes / day.entries if day.entries else 0.0,
        "n": night_entries / employees,
        "h_n": (end.bytes - day.bytes) / night_entries if night_entries else 0.0,
        "L_now": end.entries / employees,
    }


def history_bytes(t: Mapping[str, float], employees: int, days: float) -> tuple[float, float]:
    """(entries per employee, bytes) of the history lists after `days` days."""
    c, n = t["c"], t["n"]
    entries = 1 + days * (c + n)
    if entries <= HISTORY_LENGTH:
        return entries, employees * (t["h_d"] * (1 + c * days) + t["h_n"] * n * days)
    full = HISTORY_LENGTH * (c * t["h_d"] + n * t["h_n"]) / (c + n)
    return float(HISTORY_LENGTH), employees * full


def model(
    *,
    day: Mapping[str, KeyClass],
    end: Mapping[str, KeyClass],
    used_growth: int,
    employees: int,
    tenants: int,
    changes: int,
    runs: int,
    retention_days: float,
) -> dict[str, Any]:
    """Bytes per employee after R days and once every history list is full, by driver, from
    the census before the night (`day`) and after it (`end`); `runs`: every run of the day."""
    e_count = max(employees, 1)
    c = changes / e_count
    steady = sum(s.bytes for n, s in end.items() if driver(n, s) != "transient")
    k = used_growth / steady if steady else 1.0
    terms: dict[str, float] = {"c": c, "k": k, "R": retention_days}
    terms |= history_terms(day.get(HISTORY, KeyClass()), end.get(HISTORY, KeyClass()), e_count)
    parts = {d: 0.0 for d in ("fixed", "change", "full run", "run index", "transient")}
    shapes: dict[str, dict[str, Any]] = {}
    for name, shape in end.items():
        kind = driver(name, shape)
        days = lifetime_days(shape, retention_days)
        if kind == "history":
            continue
        if kind == "fixed":
            kept = float(shape.bytes)
        elif kind == "change":
            kept = shape.bytes / max(changes, 1) * c * employees * days
        elif kind == "full run":
            kept = shape.bytes / max(shape.keys, 1) * tenants * days
        elif kind == "run index":
            kept = shape.bytes / max(runs, 1) * (tenants + c * employees) * retention_days
        else:
            kept = 0.0
        parts[kind] += kept
        shapes[name] = {"driver": kind, "lifetime_days": days, "kept_bytes": round(kept)}
    out: dict[str, Any] = {"terms": {k_: round(v, 4) for k_, v in terms.items()}}
    # Far enough for every list to be full: the cap, whatever the rates.
    for label, days in (("retention", retention_days), ("history_full", 1e9)):
        entries, history = history_bytes(terms, e_count, days)
        total = sum(parts.values()) + history
        per = {name: round(k * v / e_count, 1) for name, v in parts.items() if v}
        per["history"] = round(k * history / e_count, 1)
        out[label] = {
            "history_entries_per_employee": round(entries, 1),
            "bytes_per_employee": round(k * total / e_count, 1),
            "by_driver": per,
        }
    out["measured_bytes_per_employee"] = round(used_growth / e_count, 1)
    out["shapes"] = shapes
    return out
