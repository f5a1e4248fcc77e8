"""What the service keeps in Redis per employee: every key, its size and its expiry.

A company of `--size` employees is reconciled (every profile created), `--changes` of them
change through signed webhooks, then a second reconciliation finds everything unchanged.
After the changes land, and again after the second run, every key is read back: its pattern
(ids replaced by `{user}`, `{run}`, ...), type, `MEMORY USAGE` (bytes, Redis' own estimate
with its overhead), its entries (a hash's fields, a list's items...) and its TTL. For a key
that holds one entry per employee (the id map, a run's outcomes) the bytes per entry are
its usage divided by its entries.

    .venv/bin/python -m bench.redis_keys                # ~1 min
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
from typing import Any

import httpx

from bench.common import bench_stack, full_sync, log, redis_client
from bench.results import markdown_table, write_results
from bench.scenario import LIFTED, Service, shuffled

_LENGTH = {"hash": "hlen", "list": "llen", "set": "scard", "zset": "zcard"}
_RULES = [
    (re.compile(r"^(arq:(?:job|result|in-progress|retry):)[a-z_]+:[^:]+:.*$"), r"\1<job id>"),
    (re.compile(r":run:[^:]+"), ":run:{run}"),
    (re.compile(r":(event|event-body|alert-notice|access-token):[^:]+$"), r":\1:{id}"),
    (re.compile(r":webhook-ingest:\d+$"), ":webhook-ingest:{minute}"),
    (re.compile(r":\d+$"), ":{user}"),
]


def pattern(key: str, tenant: str) -> str:
    key = key.replace(f":{tenant}:", ":{tenant}:")
    for rule, replacement in _RULES:
        key = rule.sub(replacement, key)
    return key


async def inventory(url: str, tenant: str) -> dict[str, dict[str, Any]]:
    """pattern -> count, type, median bytes, median entries, TTL range."""
    client = redis_client(url)
    found: dict[str, list[tuple[str, int, int, int]]] = {}
    try:
        async for raw in client.scan_iter(count=1000):
            key = raw.decode()
            kind = (await client.type(key)).decode()
            usage = int(await client.memory_usage(key, samples=0) or 0)
            length = int(await getattr(client, _LENGTH[kind])(key)) if kind in _LENGTH else 1
            ttl = int(await client.ttl(key))
            found.setdefault(pattern(key, tenant), []).append((kind, usage, length, ttl))
    finally:
        await client.aclose()
    return {name: _summary(rows) for name, rows in sorted(found.items())}


def _summary(rows: list[tuple[str, int, int, int]]) -> dict[str, Any]:
    """Keys of one pattern: their median size, and the bytes per entry of the largest (a
    full run's outcomes, not a webhook run's one)."""
    largest = max(rows, key=lambda r: (r[2], r[1]))
    ttls = sorted({r[3] for r in rows})
    return {
        "count": len(rows),
        "type": rows[0][0],
        "bytes": int(statistics.median(r[1] for r in rows)),
        "largest_bytes": largest[1],
        "largest_entries": largest[2],
        "ttl_s": [ttls[0], ttls[-1]] if len(ttls) > 1 else ttls,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with bench_stack("redis-keys") as stack:
        async with httpx.AsyncClient(timeout=120) as http:
            service = await Service.start(stack, "fast", http)
            service.start_worker(LUCCA_BUDGET_OVERRIDE=LIFTED)
            tenant = await service.add_tenant("acme", args.size)
            log("first run")
            await full_sync(http, tenant)
            ids = await service.active_managed(tenant)
            users = shuffled(ids)
            log(f"{args.changes} webhooks")
            changes = await service.paced(tenant, users, rate=args.changes / 5, duration=5)
            await service.wait_visible(tenant, changes, ids, within=60)
            after_changes = await inventory(service.env["REDIS_URL"], tenant.name)
            log("second run (unchanged)")
            await full_sync(http, tenant)
            after_run = await inventory(service.env["REDIS_URL"], tenant.name)
    return {
        "size": args.size,
        "changes": args.changes,
        "after_changes": after_changes,
        "after_second_run": after_run,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=100)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    headers = ["key", "type", "keys", "bytes (median)", "largest", "its entries"]
    headers += ["bytes/entry", "TTL s"]
    for phase in ("after_changes", "after_second_run"):
        rows = [
            (
                name,
                k["type"],
                k["count"],
                k["bytes"],
                k["largest_bytes"],
                k["largest_entries"],
                round(k["largest_bytes"] / max(1, k["largest_entries"]), 1),
                " to ".join(map(str, k["ttl_s"])),
            )
            for name, k in result[phase].items()
        ]
        print(f"\n{phase}\n")
        print(markdown_table(headers, rows))
    write_results("redis_keys", result)


if __name__ == "__main__":
    main()
