"""Goal 3: changed users synced per second by one worker process, against a bare ARQ anchor.

A company is reconciled once; then, per phase, `--changes` users get a new first name in the
Lucca simulator and one sync job each is queued straight into Redis (what a burst of
webhooks would queue). The phase lasts until every change is in Elevo (checked on SCIM).

- service: the Procfile's worker line (`arq workers.settings.WorkerSettings`), budget lifted;
  its jobs run under one run record whose `expected` count ends it;
- anchor: `arq bench.anchor_worker.WorkerSettings`, one Lucca GET by id + one SCIM PATCH
  per job, same max_jobs/poll_delay/httpx limits.

A phase lasts from the first enqueue to the `meta.lastModified` of the last profile written
(every change is checked on SCIM). Phases alternate (service, anchor, anchor, service...);
CPU seconds of every process are reported so that the bottleneck shows.

    .venv/bin/python -m bench.worker_throughput                   # fastscim, ~3 min
    .venv/bin/python -m bench.worker_throughput --scim scim2 --size 3000 --changes 1000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import default_queue_name, health_check_key_suffix

from app.serialization import job_deserializer, job_serializer
from app.service.jobs import enqueue_user_syncs
from app.store import history_blob, keys
from app.store.run_model import RunMode, Trigger, TriggerKind, draft_run
from app.store.runs import RunStore
from bench.anchor_worker import DONE_KEY
from bench.common import SCIM_TOKEN, bench_stack, full_sync, log, lucca_counters, redis_client
from bench.results import markdown_table, write_results
from bench.scenario import LIFTED, Change, Service, shuffled
from stack.meters import cpu_meter
from stack.processes import Child
from stack.procfile import child_env, procfile_command
from stack.services import Stack


async def _mutate_all(service: Service, users: list[str], stamp: str) -> list[Change]:
    tenant = service.tenants["acme"]
    changes = [Change(uid, f"{stamp}{i}") for i, uid in enumerate(users)]
    gate = asyncio.Semaphore(16)

    async def one(change: Change) -> None:
        async with gate:
            response = await service.http.post(
                f"{tenant.lucca_url}/_control/{tenant.subdomain}/mutations",
                json={"op": "update", "user_id": int(change.user_id), "firstName": change.value},
            )
            response.raise_for_status()

    await asyncio.gather(*(one(c) for c in changes))
    return changes


async def _wait(probe: Any, within: float) -> bool:
    deadline = time.perf_counter() + within
    while time.perf_counter() < deadline:
        if await probe():
            return True
        await asyncio.sleep(0.05)
    return False


# ARQ writes this key at a worker's first poll of the queue, and deletes it when it stops.
HEALTH_CHECK = default_queue_name + health_check_key_suffix


async def _polling(pool: ArqRedis, start: Callable[[], Any]) -> None:
    """Start a worker and wait until it polls the queue: a phase measures a running worker,
    not its start-up (a fixed sleep let the service's slower imports eat into its phases)."""
    await pool.delete(HEALTH_CHECK)
    start()

    async def polls() -> bool:
        return bool(await pool.exists(HEALTH_CHECK))

    if not await _wait(polls, 60.0):
        log("the worker did not poll its queue within 60 s")


async def service_phase(
    service: Service, pool: ArqRedis, changes: list[Change], within: float
) -> dict[str, Any]:
    tenant = service.tenants["acme"]
    runs = RunStore(pool, 3600)
    run_id = await runs.create(
        tenant.name,
        draft_run(mode=RunMode.USERS, trigger=Trigger(TriggerKind.BENCH), expected=len(changes)),
    )
    key = f"t:{tenant.name}:run:{run_id}"
    assert service.worker is not None
    procs = {"worker": service.worker, "scim": service.scim, "lucca": service.lucca}
    with cpu_meter(procs | {"redis": service.redis}) as cpu:
        wall_start = time.time()
        started = time.perf_counter()
        await enqueue_user_syncs(pool, tenant.name, [c.user_id for c in changes], run_id=run_id)
        enqueued = time.perf_counter() - started

        async def done() -> bool:
            return bool(await pool.hget(key, "state") == b"done")

        finished = await _wait(done, within)
        elapsed = time.perf_counter() - started
    report = await runs.report(tenant.name, run_id)
    counts = report.document() if report else None
    return {
        "enqueue_s": round(enqueued, 2),
        "finished": finished,
        "elapsed_s": round(elapsed, 2),
        "wall_start": wall_start,
        "counts": (counts or {}).get("counts"),
        **cpu,
    }


async def anchor_phase(
    service: Service, stack: Stack, pool: ArqRedis, changes: list[Change], ids: dict[str, str],
    within: float,
) -> dict[str, Any]:  # fmt: skip
    tenant = service.tenants["acme"]
    env = child_env(
        REDIS_URL=service.env["REDIS_URL"],
        ANCHOR_LUCCA_URL=f"{tenant.lucca_url}/{tenant.subdomain}",
        ANCHOR_LUCCA_KEY=tenant.api_key,
        ANCHOR_SCIM_URL=tenant.scim_url,
        ANCHOR_SCIM_TOKEN=SCIM_TOKEN,
    )
    # The Procfile's worker line with the anchor's settings instead of the service's.
    argv = [*procfile_command("worker", env)[:-1], "bench.anchor_worker.WorkerSettings"]
    spawned: list[Child] = []
    await _polling(pool, lambda: spawned.append(stack.sup.start("anchor-worker", argv, env)))
    worker = spawned[0]
    await pool.delete(DONE_KEY)
    procs = {"worker": worker, "scim": service.scim, "lucca": service.lucca}
    try:
        with cpu_meter(procs | {"redis": service.redis}) as cpu:
            wall_start = time.time()
            started = time.perf_counter()
            for change in changes:
                await pool.enqueue_job("anchor_sync", change.user_id, ids[change.user_id])
            enqueued = time.perf_counter() - started

            async def done() -> bool:
                return int(await pool.get(DONE_KEY) or 0) >= len(changes)

            finished = await _wait(done, within)
            elapsed = time.perf_counter() - started
    finally:
        stack.stop(worker)
    return {
        "enqueue_s": round(enqueued, 2),
        "finished": finished,
        "elapsed_s": round(elapsed, 2),
        "wall_start": wall_start,
        **cpu,
    }


async def _why(service: Service, users: list[str]) -> dict[str, Any]:
    """What the service recorded about changes that never reached Elevo."""
    tenant = service.tenants["acme"].name
    client = redis_client(service.env["REDIS_URL"])
    found: dict[str, Any] = {}
    try:
        for uid in users:
            blob = await client.get(keys.history(tenant, uid))
            history = list(history_blob.read(blob, [], uid, 4))
            gen = await client.get(f"t:{tenant}:gen:{uid}")
            job = f"sync:{tenant}:{uid}:{int(gen or 0)}"
            found[uid] = {
                "gen": gen,
                "job_queued_at": await client.zscore("arq:queue", job),
                "job_key": await client.exists(f"arq:job:{job}"),
                "in_progress": await client.exists(f"arq:in-progress:{job}"),
                "tries": await client.get(f"arq:retry:{job}"),
                "result": await client.get(f"arq:result:{job}"),
                "in_progress_ttl_ms": await client.pttl(f"arq:in-progress:{job}"),
                "lucca_read_cached": await client.exists(f"t:{tenant}:lucca-read:{uid}"),
                "lucca_wanted": await client.zscore(f"t:{tenant}:lucca-wanted", uid),
                "busy_ttl_ms": await client.pttl(f"t:{tenant}:busy:{uid}"),
                "history": history,
                "error": await client.hget(f"t:{tenant}:errors", uid),
            }
        found["queued"] = await client.zcard("arq:queue")
    finally:
        await client.aclose()
    log(f"  {len(users)} changes never reached Elevo: {found}")
    return found


async def run(args: argparse.Namespace) -> dict[str, Any]:
    phases: list[dict[str, Any]] = []
    with bench_stack("throughput") as stack:
        async with httpx.AsyncClient(timeout=120) as http:
            service = await Service.start(stack, args.scim, http)
            service.start_worker(LUCCA_BUDGET_OVERRIDE=LIFTED)
            tenant = await service.add_tenant("acme", args.size)
            log("initial full reconciliation")
            initial = await full_sync(http, tenant)
            log(f"  {initial['state']} in {initial['wall_seconds']:.1f} s")
            ids = await service.active_managed(tenant)
            users = shuffled(ids)
            needed = args.changes * 2 * args.repeat
            if needed > len(users):
                raise SystemExit(f"{needed} distinct users needed, {len(users)} active: --size")
            pool = await create_pool(
                RedisSettings.from_dsn(service.env["REDIS_URL"]),
                job_serializer=job_serializer,
                job_deserializer=job_deserializer,
            )
            try:
                for rep in range(args.repeat):
                    order = ["service", "anchor"] if rep % 2 == 0 else ["anchor", "service"]
                    for name in order:
                        batch, users = users[: args.changes], users[args.changes :]
                        changes = await _mutate_all(service, batch, f"T{rep}{name[0]}")
                        await lucca_counters(http, tenant, reset=True)
                        log(f"rep {rep + 1}: {name}, {len(changes)} changed users")
                        if name == "service":
                            if service.worker is None or service.worker.popen.poll() is not None:
                                await _polling(pool, service.start_worker)
                            result = await service_phase(service, pool, changes, args.within)
                        else:
                            result = await anchor_phase(
                                service, stack, pool, changes, ids, args.within
                            )
                        await service.wait_visible(
                            tenant, changes, ids, within=args.visible_within, webhooks=False
                        )
                        missing = [c.user_id for c in changes if c.visible is None]
                        if missing:
                            result["missing"] = await _why(service, missing[:20])
                        if service.worker is not None:
                            # Only now: stopped earlier, it would cancel the jobs still
                            # running and leave their changes to the next worker.
                            stack.stop(service.worker)
                            service.worker = None
                        lucca = await lucca_counters(http, tenant)
                        # The phase ends when the last change lands in Elevo (lastModified).
                        landed = [c.visible for c in changes if c.visible is not None]
                        if len(landed) == len(changes):
                            result["done_signal_s"] = result["elapsed_s"]
                            result["elapsed_s"] = round(max(landed) - result["wall_start"], 2)
                        result |= {
                            "target": name,
                            "rep": rep + 1,
                            "changes": len(changes),
                            "visible": sum(c.visible is not None for c in changes),
                            "users_per_s": round(len(changes) / result["elapsed_s"], 1),
                            "lucca_requests": lucca.get("total"),
                        }
                        phases.append(result)
                        log(
                            f"  {result['users_per_s']} users/s, {result['visible']} visible,"
                            f" lucca {result['lucca_requests']}, cpu: worker"
                            f" {result['worker_cpu_s']} scim {result['scim_cpu_s']}"
                            f" redis {result['redis_cpu_s']} in {result['wall_s']:.1f} s"
                        )
            finally:
                await pool.aclose()
    return {"initial_sync": initial, "phases": phases}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_throughput", description=__doc__)
    parser.add_argument("--scim", choices=("scim2", "fast"), default="fast")
    parser.add_argument("--size", type=int, default=9000)
    parser.add_argument("--changes", type=int, default=2000, help="changed users per phase")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--within", type=float, default=300.0, help="max seconds per phase")
    parser.add_argument(
        "--visible-within", type=float, default=60.0, help="s to wait for every change in Elevo"
    )
    args = parser.parse_args()
    data = asyncio.run(run(args))
    phases = data["phases"]
    rows = [
        [
            p["rep"], p["target"], p["changes"], p["visible"], p["elapsed_s"], p["users_per_s"],
            p["lucca_requests"], p["worker_cpu_s"], p["scim_cpu_s"], p["lucca_cpu_s"],
            p["redis_cpu_s"],
        ]
        for p in phases
    ]  # fmt: skip
    print()
    print(
        markdown_table(
            [
                "rep", "worker", "changed", "visible", "s", "users/s", "Lucca req",
                "worker CPU s", "SCIM CPU s", "Lucca CPU s", "redis CPU s",
            ],
            rows,
        )
    )  # fmt: skip

    def med(target: str) -> float:
        return float(statistics.median(p["users_per_s"] for p in phases if p["target"] == target))

    ratio = med("service") / med("anchor")
    print(
        f"\nservice {med('service'):.0f} users/s, anchor {med('anchor'):.0f} users/s,"
        f" ratio {ratio:.2f} (SCIM: {args.scim})"
    )
    summary = {"service_users_per_s": med("service"), "anchor_users_per_s": med("anchor")}
    summary["ratio"] = round(ratio, 3)
    write_results(
        f"worker_throughput-{args.scim}", {"args": vars(args), "summary": summary, **data}
    )


if __name__ == "__main__":
    main()
