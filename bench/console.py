"""The console's page times (server side) on a tenant of 10,000 employees with 30 days of runs.

The data is written straight into Redis in the shapes the sync writes: 30 nightly full runs
of every employee (a few updates, a few suspensions, the rest unchanged), 40 webhook-driven
syncs a day, one history entry per decision, a held run of 30 people and a dry-run plan of
every employee. The web app answers in-process (httpx over ASGI); each page is asked
`--repeat` times and the median and worst are reported.

    .venv/bin/python -m bench.console --redis redis://127.0.0.1:6397/5

Goal (issue 13): every page under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from cryptography.fernet import Fernet

from app.core.tenant import GuardConfig, TenantConfig
from app.main import create_app
from app.secret import Secret
from app.service.resources import Resources
from app.settings import Settings
from app.store import keys, webhook_hours
from app.store.run_model import RUN_ID_TIME, iso_ms
from tests.asgi import asgi_client

TENANT = "bench-console"
ADMIN = "bench-admin-token-0123456789"
SESSION_KEY = "bench-console-session-key-0123456789abcdef"
DAY = timedelta(days=1)


def _run_id(at: datetime) -> str:
    return at.strftime(RUN_ID_TIME) + "-" + f"{random.getrandbits(24):06x}"


def _decision(user: int, day: int) -> tuple[str, str, dict[str, Any]]:
    if (user + day) % 97 == 0:
        return "update", "attributes changed", {"title": {"old": "Engineer", "new": "Lead"}}
    if (user * 7 + day) % 1009 == 0:
        return "suspend", "contract ended", {"active": {"old": True, "new": False}}
    return "unchanged", "up to date", {}


async def _write_run(
    res: Resources, run_id: str, fields: dict[str, Any], outcomes: dict[str, str], at: datetime
) -> None:
    pipe = res.redis.pipeline(transaction=False)
    pipe.hset(keys.run(TENANT, run_id), mapping=fields)
    if outcomes:
        pipe.hset(keys.run_users(TENANT, run_id), mapping=outcomes)
    pipe.zadd(keys.runs(TENANT), {run_id: at.timestamp()})
    await pipe.execute()


async def _write_webhook_run(
    res: Resources, run_id: str, fields: dict[str, Any], outcomes: dict[str, str], at: datetime
) -> None:
    """A webhook's run: its hour's numbers always, its record while it is kept (as the
    service: app/store/webhook_hours.py, WEBHOOK_RUN_RETENTION_SECONDS)."""
    where = webhook_hours.slot(TENANT, run_id, res.settings.run_retention_seconds)
    pipe = res.redis.pipeline(transaction=False)
    webhook_hours.stage_created(pipe, where)
    for action in outcomes.values():
        pipe.hincrby(where.key, where.field(action), 1)
    if at.timestamp() > time.time() - res.settings.webhook_run_retention_seconds:
        pipe.hset(keys.run(TENANT, run_id), mapping=fields | {"outcomes": orjson.dumps(outcomes)})
        pipe.zadd(keys.webhook_runs(TENANT), {run_id: at.timestamp()})
    await pipe.execute()


async def populate(res: Resources, employees: int, days: int) -> dict[str, str]:
    """30 days of runs; the ids of a full run, the held run and the dry run."""
    await res.redis.flushdb()
    await res.tenants.put(
        TenantConfig(
            tenant=TENANT,
            lucca_subdomain="bench",
            lucca_api_key=Secret("bench-lucca-key-0123456789"),
            elevo_scim_url="https://elevo.example/scim/v2",
            elevo_token=Secret("bench-elevo-token-0123456789"),
            guard=GuardConfig(),
        )
    )
    start = datetime.now(UTC) - days * DAY
    ids: dict[str, str] = {}
    users = [str(n) for n in range(1, employees + 1)]
    for day in range(days):
        at = start + day * DAY + timedelta(hours=2)
        run_id = _run_id(at)
        outcomes, pipe = {}, res.redis.pipeline(transaction=False)
        for n, user in enumerate(users, 1):
            action, reason, diff = _decision(n, day)
            outcomes[user] = action
            entry = {"user": user, "action": action, "reason": reason, "diff": diff,
                     "at": iso_ms(at), "run": run_id, "written": action != "unchanged"}  # fmt: skip
            res.records.stage_add(pipe, TENANT, user, entry, failing=None)
        await pipe.execute()
        fields = {"id": run_id, "mode": "full", "trigger": "nightly", "dry_run": 0,
                  "state": "done", "created_at": iso_ms(at), "started_at": iso_ms(at),
                  "finished_at": iso_ms(at + timedelta(seconds=95))}  # fmt: skip
        await _write_run(res, run_id, fields, outcomes, at)
        ids["full"] = run_id
        for hook in range(40):
            hook_at = at + timedelta(hours=6, minutes=hook * 15)
            hook_id = _run_id(hook_at)
            user = random.choice(users)
            stamp = iso_ms(hook_at)
            hook_fields = {"id": hook_id, "mode": "users", "trigger": "webhook:employee.updated",
                           "dry_run": 0, "state": "done", "expected": 1,
                           "created_at": stamp, "finished_at": stamp}  # fmt: skip
            await _write_webhook_run(res, hook_id, hook_fields, {user: "update"}, hook_at)
    now = datetime.now(UTC)
    ids["held"] = await _held_run(res, users[:30], now - timedelta(minutes=5))
    ids["dry"] = await _dry_run(res, users, now)
    return ids


async def _held_run(res: Resources, held: list[str], at: datetime) -> str:
    run_id = _run_id(at)
    fields = {"id": run_id, "mode": "full", "trigger": "nightly", "dry_run": 0, "state": "held",
              "created_at": iso_ms(at), "finished_at": iso_ms(at),
              "held": orjson.dumps(held).decode()}  # fmt: skip
    await _write_run(res, run_id, fields, dict.fromkeys(held, "held"), at)
    await res.records.note(
        TENANT, held_run=run_id, held_users=orjson.dumps(held).decode(), last_full_run=iso_ms(at)
    )
    return run_id


async def _dry_run(res: Resources, users: list[str], at: datetime) -> str:
    run_id = _run_id(at)
    fields = {"id": run_id, "mode": "full", "trigger": "api", "dry_run": 1, "state": "done",
              "created_at": iso_ms(at), "finished_at": iso_ms(at)}  # fmt: skip
    plan = {}
    for n, user in enumerate(users, 1):
        action, reason, diff = _decision(n, 1)
        plan[user] = orjson.dumps({"user": user, "action": action, "reason": reason, "diff": diff})
    await _write_run(res, run_id, fields, {u: "unchanged" for u in users}, at)
    await res.redis.hset(keys.run_plan(TENANT, run_id), mapping=plan)
    return run_id


async def measure(
    client: httpx.AsyncClient, pages: dict[str, str], repeat: int
) -> list[tuple[str, float, float, float]]:
    """Per page: median and worst wall time, and median CPU time of this process (the web
    app's share, steady on a machine other jobs share), in ms."""
    results = []
    for label, url in pages.items():
        walls, cpus = [], []
        for _ in range(repeat):
            started, cpu = time.perf_counter(), time.process_time()
            answer = await client.get(url)
            walls.append((time.perf_counter() - started) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
            assert answer.status_code == 200, (label, answer.status_code)
        results.append((label, statistics.median(walls), max(walls), statistics.median(cpus)))
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--employees", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    settings = Settings.from_env(
        {
            "REDIS_URL": args.redis,
            "ADMIN_TOKEN": ADMIN,
            "SESSION_KEY": SESSION_KEY,
            "SECRETS_KEY": Fernet.generate_key().decode(),
        }
    )
    res = await Resources.create(settings)
    started = time.perf_counter()
    ids = await populate(res, args.employees, args.days)
    print(f"populated in {time.perf_counter() - started:.0f} s")
    base = f"/console/t/{TENANT}"
    pages = {
        "overview": "/console/",
        "tenant: runs of the last 7 days": base,
        "tenant: runs of 3 weeks before": f"{base}?week=3",
        "run: full, page 1": f"{base}/runs/{ids['full']}",
        "run: full, action=update": f"{base}/runs/{ids['full']}?action=update",
        "run: full, search": f"{base}/runs/{ids['full']}?q=Lead",
        "run: dry-run plan, page 50": f"{base}/runs/{ids['dry']}?page=50",
        "held run review": f"{base}/held/{ids['held']}",
        "employee": f"{base}/employees/4242",
        "settings": f"{base}/settings",
        "run: CSV download (10k rows)": f"{base}/runs/{ids['full']}?format=csv",
    }
    async with asgi_client(create_app(settings, resources=res)) as client:
        await client.post("/console/sign-in", data={"token": ADMIN})
        results = await measure(client, pages, args.repeat)
    await res.redis.flushdb()
    await res.aclose()
    print("| page | median ms | worst ms | median CPU ms |\n|---|---:|---:|---:|")
    for label, median, worst, cpu in results:
        print(f"| {label} | {median:.1f} | {worst:.1f} | {cpu:.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
