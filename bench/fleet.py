"""Issue 14, point 5: a fleet of tenants on one Redis, through a day in compressed time.

One Redis, one web process, one worker process (the Procfile's lines), the Lucca simulator and
fastscim serving every tenant. The script registers `--tenants` generated companies of
`--size` employees, runs each tenant's first full sync (`--onboard` at a time), then plays a
day:

- working hours (`--day-seconds` / 2): `--change-share` of the employees get a new first name
  in Lucca, each followed by its signed webhook, evenly spread;
- the night (`--day-seconds` / 3): each tenant's nightly run at its own time, tenant i at i/N
  of the night (`POST /sync/{tenant} {"mode": "full"}`: the same run the minute's tick starts);
- an idle `--settle` (what the fleet costs doing nothing; the minute-long caches expire);
- then throughput: `--burst` changes prepared in Lucca, their webhooks posted at once, with one
  worker process and with two, alternated `--repeat` times.

Each phase waits for the queue to drain (`--within` at most) and reports Redis commands (INFO
commandstats, less the script's own), CPU seconds of every process and the load average.
Memory: INFO used_memory over the empty Redis, per employee, and a census of every key
(MEMORY USAGE by key shape) from which bench/fleet_memory.py extrapolates the retention.

    .venv/bin/python -m bench.fleet --tenants 50 --size 200 --day-seconds 60 --onboard 4
    .venv/bin/python -m bench.fleet --tenants 100 --size 1000 --day-seconds 300   # ~27 min

Without arguments: the issue's 1,000 x 1,000 (about 3 h on 2 shared cores, onboarding most).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.settings import Settings
from bench import fleet_traffic as traffic
from bench.common import Tenant, bench_stack, log
from bench.fleet_memory import model
from bench.fleet_redis import KeyClass, Probe, census_document
from bench.fleet_report import print_tables
from bench.metrics import command_delta
from bench.results import write_results
from bench.scenario import LIFTED, Service
from stack.meters import cpu_meter, rss_mb
from stack.ports import free_port
from stack.processes import Child


@dataclass
class Fleet:
    service: Service
    probe: Probe
    args: argparse.Namespace
    workers: list[Child] = field(default_factory=list)
    memory: dict[str, int] = field(default_factory=dict)

    def processes(self) -> dict[str, Child]:
        s = self.service
        procs = {"redis": s.redis, "lucca": s.lucca, "scim": s.scim, "web": s.web}
        return procs | {w.name: w for w in self.workers}

    def set_workers(self, count: int) -> None:
        """Start or stop worker processes (the Procfile's line, each its own metrics port)."""
        while len(self.workers) > count:
            self.service.stack.stop(self.workers.pop())
        while len(self.workers) < count:
            n = len(self.workers) + 1
            env = self.service.env | {"WORKER_METRICS_PORT": str(free_port())}
            self.workers.append(self.service.stack.worker(env, name=f"worker-{n}"))

    async def note_memory(self, label: str) -> int:
        self.memory[label] = await self.probe.used_memory()
        log(f"  used_memory {label}: {self.memory[label] / 1e6:.1f} MB")
        return self.memory[label]

    async def phase(
        self, name: str, unit: str, work: Callable[[], Awaitable[int]]
    ) -> dict[str, Any]:
        """Run `work` (it returns how many units it made), wait for the queue to drain, and
        say what the phase cost: commands, CPU of every process, per unit."""
        log(f"{name}")
        load = os.getloadavg()[0]
        before = await self.probe.commands()
        bench_cpu = time.process_time()
        with cpu_meter(self.processes()) as cpu:
            units = await work()
            drain = await self.probe.drain(self.args.within)
        delta = command_delta(await self.probe.commands(), before)
        total = sum(delta.values())
        cpu["bench_cpu_s"] = round(time.process_time() - bench_cpu, 2)
        worker_cpu = sum(v for k, v in cpu.items() if k.startswith("worker-"))
        result = {
            "phase": name,
            "unit": unit,
            "units": units,
            "wall_s": round(cpu.pop("wall_s"), 2),
            "drained": drain != float("inf"),
            "redis_commands": total,
            "commands_per_unit": round(total / units, 2) if units else None,
            "worker_cpu_ms_per_unit": round(worker_cpu * 1000 / units, 3) if units else None,
            "top_commands": dict(sorted(delta.items(), key=lambda kv: -kv[1])[:15]),
            "cpu_s": cpu,
            "loadavg_1m": [round(load, 2), round(os.getloadavg()[0], 2)],
        }
        log(
            f"  {units:,} {unit} in {result['wall_s']} s; {result['commands_per_unit']} cmds"
            f" and {result['worker_cpu_ms_per_unit']} worker CPU ms per {unit}; cpu {cpu}"
        )
        return result


async def first_and_day(fleet: Fleet, tenants: list[Tenant]) -> dict[str, Any]:
    args, http = fleet.args, fleet.service.http
    employees: int = args.tenants * args.size
    runs: list[tuple[str, str]] = []

    async def first() -> int:
        runs.extend(await traffic.onboard(http, tenants, args.onboard, fleet.probe.ended))
        return employees

    out: dict[str, Any] = {"first_sync": await fleet.phase("first full sync", "employee", first)}
    out["first_sync"]["run_states"] = await fleet.probe.run_states(runs)
    await fleet.note_memory("after_first_sync")
    first_census = await fleet.probe.census(frozenset(runs))
    linked = [(t, await fleet.probe.linked(t.name)) for t in tenants]
    pool = traffic.shuffled_pool(linked, seed=7)
    out["linked_employees"] = len(pool)
    changed = traffic.pick(pool, round(args.change_share * employees))
    statuses: list[int] = []

    async def hours() -> int:
        statuses.extend(await traffic.paced_changes(http, changed, args.day_seconds / 2, "D"))
        return len(statuses)

    out["work_hours"] = await fleet.phase("working hours: webhooks", "webhook", hours)
    out["work_hours"]["accepted"] = statuses.count(202)
    out["work_hours"]["landed_of_sample"] = [
        await traffic.landed(fleet.service, changed[:50], "D"),
        len(changed[:50]),
    ]
    await fleet.note_memory("after_work_hours")
    full = frozenset(runs)
    day_census = await fleet.probe.census(full)

    async def night() -> int:
        runs.extend(await traffic.staggered_runs(http, tenants, args.day_seconds / 3))
        return employees

    out["night"] = await fleet.phase("night: each tenant's nightly run", "employee", night)
    out["night"]["run_states"] = await fleet.probe.run_states(runs[len(tenants) :])

    async def idle() -> int:
        await asyncio.sleep(args.settle)
        return round(float(args.settle))

    out["idle"] = await fleet.phase("idle (settle)", "second", idle)
    changes = (len(changed), out["work_hours"]["accepted"])
    out["memory"] = await memory(fleet, (first_census, day_census), runs, changes)
    out["pool"] = pool
    return out


async def memory(
    fleet: Fleet, censuses: tuple[dict[str, KeyClass], dict[str, KeyClass]],
    runs: list[tuple[str, str]], changes: tuple[int, int],
) -> dict[str, Any]:  # fmt: skip
    """used_memory at steady state, the census after the night, and the model of the retention
    (`censuses`: after the first sync and before the night; `changes`: the day's changes, and
    the webhooks accepted: each has its own run)."""
    first_census, day_census = censuses
    args = fleet.args
    used = await fleet.note_memory("steady")
    end_census = await fleet.probe.census(frozenset(runs))
    settings = Settings.from_env(fleet.service.env)
    return {
        "used_memory": dict(fleet.memory),
        "census_after_first_sync": census_document(first_census),
        "census_before_night": census_document(day_census),
        "census": census_document(end_census),
        "model": model(
            first=first_census,
            day=day_census,
            end=end_census,
            used_growth=used - fleet.memory["baseline"],
            employees=args.tenants * args.size,
            tenants=args.tenants,
            changes=changes[0],
            runs=len(runs),  # the webhooks' runs have an index of their own
            retention_days=settings.run_retention_seconds / 86400,
        ),
        "simulators_rss_mb": {
            "lucca": round(rss_mb(fleet.service.lucca), 1),
            "scim": round(rss_mb(fleet.service.scim), 1),
        },
    }


async def throughput(fleet: Fleet, pool: list[traffic.Employee]) -> list[dict[str, Any]]:
    args, http = fleet.args, fleet.service.http
    phases: list[dict[str, Any]] = []
    for rep in range(args.repeat):
        for count in (1, 2) if rep % 2 == 0 else (2, 1):
            fleet.set_workers(count)
            await asyncio.sleep(2.0)  # ARQ's start-up
            stamp = f"T{rep}w{count}x"
            events = await traffic.prepared_events(http, traffic.pick(pool, args.burst), stamp)

            async def burst(events: list[Any] = events) -> int:
                return (await traffic.post_all(http, events)).count(202)

            result = await fleet.phase(f"burst, {count} worker process(es)", "change", burst)
            result |= {"rep": rep + 1, "workers": count}
            result["changes_per_s"] = round(result["units"] / result["wall_s"], 1)
            phases.append(result)
    fleet.set_workers(1)
    return phases


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with bench_stack("fleet") as stack:
        async with httpx.AsyncClient(timeout=120) as http:
            service = await Service.start(stack, "fast", http, LUCCA_BUDGET_OVERRIDE=LIFTED)
            fleet = Fleet(service, Probe(service.env["REDIS_URL"]), args)
            try:
                fleet.set_workers(1)
                await asyncio.sleep(2.0)
                await fleet.note_memory("baseline")
                log(f"registering {args.tenants:,} tenants of {args.size:,} employees")
                started = time.perf_counter()
                tenants = await traffic.register(service, args.tenants, args.size)
                registered_s = round(time.perf_counter() - started, 1)
                await fleet.note_memory("after_register")
                day = await first_and_day(fleet, tenants)
                pool = day.pop("pool")
                day["throughput"] = await throughput(fleet, pool)
            finally:
                await fleet.probe.aclose()
    return {"register_s": registered_s, "employees": args.tenants * args.size, **day}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--size", type=int, default=1000, help="employees per tenant")
    parser.add_argument("--onboard", type=int, default=1, help="first runs at a time")
    parser.add_argument("--change-share", type=float, default=0.05, help="changed in the day")
    parser.add_argument("--day-seconds", type=float, default=240.0, help="the compressed day")
    parser.add_argument("--settle", type=float, default=70.0, help="idle s before the census")
    parser.add_argument("--burst", type=int, default=2000, help="changes per throughput phase")
    parser.add_argument("--repeat", type=int, default=1, help="1-then-2-worker alternations")
    parser.add_argument("--within", type=float, default=1200.0, help="max s to drain a phase")
    args = parser.parse_args()
    data = {"args": vars(args), **asyncio.run(run(args))}
    print_tables(data)
    write_results("fleet", data)


if __name__ == "__main__":
    main()
