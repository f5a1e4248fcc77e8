"""Redis memory per employee: measured after a compressed day, extrapolated to the retention.

Expiries run in real time, so a benchmark of minutes holds one day of records where a
deployment holds as many days as each key lives. The census (bench/fleet_redis.py) gives every
key shape's bytes (MEMORY USAGE) and expiry; each shape has a driver and a lifetime T (its
TTL in days, at most R), and the model keeps T days of it:

    fixed      (configs, id maps, status; no expiry)  as measured
    change     (event marks, webhook runs, gen/noticed, profile copies)
               bytes per change * c*E * T     (bytes per change: the shape's bytes over the
                                               larger of its keys and the changes, so that the
                                               profile copies the first sync left count as one
                                               per change)
    full run   (a run's record and what it keeps)    bytes per run key * N * T   (1 run a night;
                                                     the nightly runs' keys: the census after
                                                     the night less the one before it)
    run index  (t:{t}:runs, one member per run other than a webhook's: the webhooks' index,
               t:{t}:webhook-runs, is a change's, kept WEBHOOK_RUN_RETENTION_SECONDS)
                                                     bytes per run * N * R
    tenant day (t:{t}:webhook-hours:{day}, one a tenant's day of webhooks)
               the day's bytes * T                  (a benchmark's compressed day fills an hour
                                                     or two of the day's hash, a working day
                                                     ten: docs/redis-keys.md has its size)
    history    (t:{t}:hist:{user}, <= 200 entries, each kept R days)
               E * (h_c + h_ch * c*R + h_n * n*R)                     after R days, and any
                                                                       day after (an entry
                                                                       older than R days goes
                                                                       as the next lands)
    transient  (TTL under an hour: ARQ results, read caches, cooldowns)  0

    M / E = k * (sum of the above) / E

E employees, N tenants; c changes per employee per day (the day's share); h_c the bytes of an
employee's history after the first sync (its creation entry, or the first run's other
decision), h_ch the growth per entry the day's changes added, n the history entries a nightly
run writes per employee (decisions other than `unchanged`, e.g. `skipped` for the excluded and
the departed), h_n their growth per entry, all measured (censuses after the first sync, after
the working hours and after the night); R = RUN_RETENTION_SECONDS in days; k = used_memory
growth over the empty Redis / the census' bytes (what MEMORY USAGE leaves out: the keyspace
and expiry tables, allocator rounding).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.fleet_redis import KeyClass

HISTORY_LENGTH = 200  # app/store/records.py
HISTORY = "t:{t}:hist:{user}"
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
    "t:{t}:profile:",
    "t:{t}:webhook-runs",
)
TENANT_DAY_PREFIXES = ("t:{t}:webhook-hours:",)


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
    if name.startswith(TENANT_DAY_PREFIXES):
        return "tenant day"
    return "fixed"


def lifetime_days(shape: KeyClass, retention_days: float) -> float:
    ttls = [t for t in shape.ttl_s if t >= 0]
    if not ttls or len(ttls) != len(shape.ttl_s):
        return retention_days
    return min(retention_days, max(1.0, round(max(ttls) / DAY_S)))


def history_terms(
    first: KeyClass, day: KeyClass, end: KeyClass, employees: int
) -> dict[str, float]:
    """h_c: bytes per employee after the first sync; h_ch: growth per entry over the working
    hours (the changes); n and h_n: the entries the night added per employee, and their growth
    each."""

    def growth(after: KeyClass, before: KeyClass) -> tuple[float, float]:
        added = after.entries - before.entries
        return added, (after.bytes - before.bytes) / added if added else 0.0

    _, h_ch = growth(day, first)
    night_entries, h_n = growth(end, day)
    return {
        "h_c": first.bytes / employees,
        "h_ch": h_ch,
        "n": night_entries / employees,
        "h_n": h_n,
        "L_now": end.entries / employees,
    }


def history_bytes(t: Mapping[str, float], employees: int, days: float) -> tuple[float, float]:
    """(entries per employee, bytes) of the histories after `days` days. An entry is kept R
    days (the history script drops the older ones as the next lands) and a history at most
    HISTORY_LENGTH entries, so the nightly entries stop growing after R nights; the first
    sync's h_c stays whole, an upper bound (its entry goes after R days, its key's overhead
    stays while the history does)."""
    c, n, kept = t["c"], t["n"], min(days, t["R"])
    nights = min(kept, HISTORY_LENGTH)
    entries = 1 + c * kept + n * nights
    return entries, employees * (t["h_c"] + t["h_ch"] * c * kept + t["h_n"] * n * nights)


def model(
    *,
    first: Mapping[str, KeyClass],
    day: Mapping[str, KeyClass],
    end: Mapping[str, KeyClass],
    used_growth: int,
    employees: int,
    tenants: int,
    changes: int,
    runs: int,
    retention_days: float,
) -> dict[str, Any]:
    """Bytes per employee after R days and once the nightly history lists are full, by
    driver, from the censuses after the first sync (`first`), before the night (`day`) and
    after it (`end`); `runs`: the day's runs other than webhooks'."""
    e_count = max(employees, 1)
    c = changes / e_count
    steady = sum(s.bytes for n, s in end.items() if driver(n, s) != "transient")
    k = used_growth / steady if steady else 1.0
    terms: dict[str, float] = {"c": c, "k": k, "R": retention_days}
    terms |= history_terms(
        first.get(HISTORY, KeyClass()),
        day.get(HISTORY, KeyClass()),
        end.get(HISTORY, KeyClass()),
        e_count,
    )
    drivers = ("fixed", "change", "full run", "run index", "tenant day", "transient")
    parts = {d: 0.0 for d in drivers}
    shapes: dict[str, dict[str, Any]] = {}
    for name, shape in end.items():
        kind = driver(name, shape)
        days = lifetime_days(shape, retention_days)
        if kind == "history":
            continue
        if kind == "fixed":
            kept = float(shape.bytes)
        elif kind == "change":
            kept = shape.bytes / max(shape.keys, changes, 1) * c * employees * days
        elif kind == "full run":
            # The nightly runs' keys only: the first runs' (creations) are no steady state.
            first_runs = day.get(name, KeyClass())
            nightly = max(shape.keys - first_runs.keys, 0)
            night_bytes = shape.bytes - first_runs.bytes
            kept = night_bytes / nightly * tenants * days if nightly else 0.0
        elif kind == "run index":
            kept = shape.bytes / max(runs, 1) * tenants * retention_days
        elif kind == "tenant day":
            kept = shape.bytes * days
        else:
            kept = 0.0
        parts[kind] += kept
        shapes[name] = {"driver": kind, "lifetime_days": days, "kept_bytes": round(kept)}
    out: dict[str, Any] = {"terms": {k_: round(v, 4) for k_, v in terms.items()}}
    # Long after: every history at its steady size (entries kept R days, at most 200).
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
