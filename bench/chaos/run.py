"""The whole suite, in order, and its command line (`python -m bench.chaos`)."""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import httpx
from redis.exceptions import RedisError

import bench.chaos
from bench.chaos.broken import break_tenants, check_broken_tenants, register_broken_tenants
from bench.chaos.faults import clear_faults, inject_faults
from bench.chaos.options import RETRY_DELAYS, TENANT, ChaosError, ChaosOptions, Summary, counts_text
from bench.chaos.pieces import ChaosStack, register_tenant, settle, start_stack
from bench.chaos.player import Player
from bench.chaos.promises import Landing, RequestLog, check_budget, judge_landing
from bench.chaos.verdict import (
    Verdict,
    dry_run_plan,
    reconcile,
    save_diagnostics,
    scan_worker_logs,
    verdict,
)
from simulators.lucca.webhooks import WebhookSender
from stack.ports import StackError
from stack.services import Stack


async def _initial_sync(chaos: ChaosStack) -> None:
    started = time.monotonic()
    run = await chaos.wait_run({"mode": "full"}, 600)
    if run.get("state") != "done":
        raise ChaosError(f"the initial full sync ended {run.get('state')}: {run}")
    quiet, _ = await settle(chaos, 300)
    if not quiet:
        raise ChaosError("the queue did not empty after the initial full sync")
    counts = counts_text(Counter(run.get("counts", {})))
    chaos.log(f"initial full sync: {counts} in {time.monotonic() - started:.0f}s")


async def _play_under_faults(
    chaos: ChaosStack, options: ChaosOptions, summary: Summary, log: RequestLog
) -> None:
    await log.keep(chaos)  # the initial sync's requests, before the counters' reset
    await inject_faults(chaos, options)
    if options.broken_tenants:
        await break_tenants(chaos, summary)
    webhook = f"{chaos.url('web')}/webhooks/lucca/{TENANT}"
    secret = chaos.creds.webhook_secret
    sender = WebhookSender(chaos.http, webhook, secret, retry_delays=RETRY_DELAYS)
    player = Player(chaos, options, summary, random.Random(options.seed), sender)
    chaos.log(f"playing {options.changes} changes at {options.pace:.0f}/s under faults")
    await player.play()
    await clear_faults(chaos, summary)


async def _catch_up(
    chaos: ChaosStack, options: ChaosOptions, summary: Summary
) -> tuple[Verdict, Landing | None]:
    """Quiescence, with Elevo compared with Lucca meanwhile; the verdict then, and the landing
    still to judge if the event path left changes to the reconciliation."""
    landing = Landing(cleared_at=time.monotonic())
    chaos.log("faults cleared; waiting for quiescence")
    stop = asyncio.Event()
    watcher = asyncio.create_task(landing.watch(chaos, options.landing_check_every, stop))
    quiet, summary.quiescence_seconds = await settle(chaos, options.settle_timeout)
    stop.set()
    await watcher
    if not quiet:
        summary.failures.append(f"not quiescent after {options.settle_timeout:.0f}s")
    before = await verdict(chaos)
    landing.observe(before)  # quiescence may come between two of the watcher's checks
    summary.pre_check = {
        "mismatches": len(before.mismatches),
        "wrongly_suspended": len(before.wrongly_suspended),
    }
    summary.pre_mismatches = before.mismatches
    chaos.log(f"before the reconciliation: {summary.pre_check}")
    if before.mismatches or before.wrongly_suspended:
        landing.agreed_at = None  # judged once the reconciliation has landed the rest
        return before, landing
    judge_landing(landing, options, summary, "the event path")
    return before, None


async def _chaos(options: ChaosOptions, chaos: ChaosStack, summary: Summary) -> None:
    await start_stack(chaos, options)
    await register_tenant(chaos, options)
    if options.broken_tenants:
        await register_broken_tenants(chaos)
    await _initial_sync(chaos)
    log = RequestLog()
    await _play_under_faults(chaos, options, summary, log)
    before, unlanded = await _catch_up(chaos, options, summary)
    plan = await dry_run_plan(chaos, summary)
    await save_diagnostics(chaos, plan, before)
    await reconcile(chaos, summary)
    quiet, _ = await settle(chaos, 300)
    if not quiet:
        summary.failures.append("not quiescent after the reconciliation")
    after = await verdict(chaos)
    summary.checked = after.checked
    summary.mismatches = after.mismatches
    summary.conflicts = after.conflicts
    summary.wrongly_suspended = after.wrongly_suspended
    if unlanded is not None:
        if not (after.mismatches or after.wrongly_suspended):
            unlanded.agreed_at = time.monotonic()
        judge_landing(unlanded, options, summary, "the reconciliation")
    await log.keep(chaos)
    check_budget(log, options, summary)
    if options.broken_tenants:
        await check_broken_tenants(chaos, summary, within=150)


async def _stop(chaos: ChaosStack, summary: Summary) -> None:
    """Every process stopped; what the supervisor saw of them goes to the summary."""
    if chaos.redis is not None:
        await chaos.redis.aclose()
    await chaos.stack.aclose()
    for name, child in chaos.sup.children.items():
        if child.restart:
            summary.restarts[name] = child.restarts
        if child.exits:
            summary.exit_codes[name] = child.exits
    summary.jobs = scan_worker_logs(chaos.sup.log_dir)


async def run(options: ChaosOptions) -> Summary:
    """Run the suite; the summary (also printed unless `options.quiet`)."""
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
    summary = Summary(options)
    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as http:
        chaos = ChaosStack(http, workdir, Stack(workdir / "logs"))
        try:
            await _chaos(options, chaos, summary)
        except (ChaosError, StackError, httpx.HTTPError, RedisError, OSError) as exc:
            summary.failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            await _stop(chaos, summary)
    summary.wall_seconds = time.monotonic() - started
    if options.keep_logs or not summary.ok:
        summary.log_dir = str(workdir / "logs")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if not options.quiet:
        print(summary.render(), flush=True)
    return summary


# --quick: a CI-like smoke of every fault at a small size (a few minutes on a busy machine).
QUICK = {
    "employees": 80, "changes": 200, "pace": 20.0, "worker_kills": 1, "redis_restarts": 1,
    "lucca_429_bursts": 1, "lucca_429_burst_size": 5, "elevo_stall_seconds": 10.0,
    "lucca_storm_seconds": 8.0,
}  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=bench.chaos.__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    defaults = ChaosOptions()
    add = parser.add_argument
    add("--quick", action="store_true", help=f"a smoke at a small size: {QUICK}")
    add("--employees", type=int, default=None, help=f"default {defaults.employees}")
    add("--changes", type=int, default=None, help=f"default {defaults.changes}")
    add("--seed", type=int, default=defaults.seed)
    add("--keep-logs", action="store_true", help="keep the logs even on success")
    add("--worker-kills", type=int, default=None, help=f"default {defaults.worker_kills}")
    add("--redis-restarts", type=int, default=None, help=f"default {defaults.redis_restarts}")
    add("--pace", type=float, default=None, help=f"changes per second; {defaults.pace}")
    add("--streams", type=int, default=defaults.streams)
    add("--log-level", default=defaults.log_level, help="of web and workers")
    add("--lucca-budget", type=int, default=defaults.lucca_budget,
        help="LUCCA_BUDGET_OVERRIDE (requests a minute); 0: the tenant's own (40)")  # fmt: skip
    add("--elevo-stall", type=float, default=None, dest="elevo_stall_seconds",
        help=f"seconds Elevo hangs, once; {defaults.elevo_stall_seconds}")  # fmt: skip
    add("--lucca-storm", type=float, default=None, dest="lucca_storm_seconds",
        help=f"seconds Lucca answers only 429, once; {defaults.lucca_storm_seconds}")  # fmt: skip
    add("--no-broken-tenants", action="store_false", dest="broken_tenants",
        help="no broken tenants beside the healthy one")  # fmt: skip
    add("--landing-deadline", type=float, default=defaults.landing_deadline,
        help="seconds after the faults by which every change must be in Elevo")  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(_parser().parse_args(argv))
    chosen = {key: value for key, value in args.items() if value is not None and key != "quick"}
    options = ChaosOptions(**((QUICK if args["quick"] else {}) | chosen))
    summary = asyncio.run(run(options))
    return 0 if summary.ok else 1
