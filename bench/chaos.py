"""The chaos suite: the whole service under faults, then a check that Elevo equals the rules.

    python -m bench.chaos --employees 500 --changes 2000 [--seed N] [--keep-logs]

It starts, on free loopback ports, a Redis of its own (`--appendonly yes`, as production runs
it; the shared Redis on 6379 is never touched), the Lucca simulator, scim2-server as Elevo,
the fault proxy (simulators/faultproxy.py) in front of scim2-server, and the service's web
process and TWO worker processes with the Procfile's command lines, restarted whenever they
exit (restart=always, like a process supervisor). Then:

1. registers a tenant (its Elevo SCIM URL goes through the fault proxy) and runs a full sync;
2. injects faults: Lucca answers 5% 500s plus a few bursts of 429 with Retry-After, the proxy
   answers 5% 503s and lets 2% of the requests hang past the service's HTTP timeout (half of
   those after forwarding them: a timed-out write may have been applied);
3. plays N seeded random HR changes through the simulator's control API and sends the events
   as signed webhooks, with ~10% duplicates, shuffled in windows, in a few concurrent streams
   (a 5xx is retried like Lucca does, with shortened waits); meanwhile it SIGKILLs a worker
   twice and restarts Redis once (SHUTDOWN, which flushes the AOF, then the same port and dir);
4. clears the faults, waits for quiescence (nothing queued, nothing in progress: a SIGKILLed
   job re-runs only once its in-progress key expires, ~70 s later), checks consistency once,
   asks for a dry-run plan, runs one full reconciliation (a safety guard holding it is a
   finding: never confirmed here), and checks again: 0 mismatches, and no profile suspended
   whose Lucca user is active (excluded users are never suspended by the sync).

It prints what it injected and what was recovered, and exits non-zero on any mismatch (or
wrong suspension, or a held or failed reconciliation). The check before the reconciliation,
the dry-run plan and the worker-log counts are shown but do not fail the suite: they tell how
far the event path alone got. The logs (kept with --keep-logs, or on failure) hold every
process's output, `changes.jsonl` (each change played, with its event ids) and
`diagnostics.json` (what the reconciliation still had to do, with the histories of the users
and managers involved). `run()` is the coroutine the CI test (tests/chaos/) calls at a
reduced size.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
import redis.asyncio as aioredis
from cryptography.fernet import Fernet
from redis.exceptions import RedisError

from app.clients.elevo import ElevoClient
from app.core.errors import InvalidLuccaUser
from app.core.lucca_user import parse_user
from app.core.profile import ElevoProfile
from app.core.rules import Standing, standing_of
from app.secret import Secret
from simulators.consistency import check
from simulators.lucca.generator import FIRST_NAMES, JOB_TITLES, LANGUAGES, LAST_NAMES
from simulators.lucca.webhooks import DEFAULT_RETRY_DELAYS, Event, WebhookSender

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TENANT = "chaos"
SKIP_FIELD = "e_skip_elevo_sync"
CUSTOM_FIELDS = {
    "cost_center": "extendedData.e_cost_center",
    "remote": "extendedData.e_remote",
    "languages": "extendedData.e_languages",
    "entity": "legalEntity.name",
}
# Lucca's retry schedule, a third as long: a Redis restart is over well within it.
RETRY_DELAYS = tuple(delay / 3 for delay in DEFAULT_RETRY_DELAYS)
# An arq job id not counted as pending work: re-checks scheduled for a contract's end (days
# ahead), and the minute tick, whose in-progress key arq keeps 60 s after it ends.
_NOT_PENDING = (b"due:", b"cron:")
_IN_PROGRESS = "arq:in-progress:"


class ChaosError(RuntimeError):
    """The suite cannot go on (a component did not start, or died); says why."""


@dataclass
class ChaosOptions:
    employees: int = 500
    changes: int = 2000
    seed: int = 1
    keep_logs: bool = False
    worker_kills: int = 2
    redis_restarts: int = 1
    # How long Redis stays down: long enough for webhooks to meet 503s and workers to notice.
    redis_downtime: float = 3.0
    lucca_error_rate: float = 0.05
    lucca_429_bursts: int = 3
    lucca_429_burst_size: int = 10
    lucca_429_retry_after: int = 2
    proxy_error_rate: float = 0.05
    proxy_timeout_rate: float = 0.02
    duplicate_rate: float = 0.10
    streams: int = 4
    # Events are shuffled within windows of this many changes.
    window: int = 20
    # Changes played per second (the faults and kills land while they flow).
    pace: float = 40.0
    http_timeout: float = 2.0
    # 0: the tenant's own Lucca budget (40 requests a minute, Lucca's real limit is 50).
    lucca_budget: int = 0
    settle_timeout: float = 900.0
    # LOG_LEVEL of the web and worker processes (their logs are in the log dir).
    log_level: str = "WARNING"
    quiet: bool = False


# -- the summary ----------------------------------------------------------------------------------


@dataclass
class Summary:
    options: ChaosOptions
    changes_played: int = 0
    changes_noop: int = 0
    changes_skipped: int = 0
    changes_by_kind: Counter[str] = field(default_factory=Counter)
    events_unique: int = 0
    events_duplicates: int = 0
    deliveries: int = 0
    undelivered: list[str] = field(default_factory=list)
    final_statuses: Counter[str] = field(default_factory=Counter)
    attempt_statuses: Counter[str] = field(default_factory=Counter)
    lucca_counters: dict[str, Any] = field(default_factory=dict)
    proxy_counters: dict[str, Any] = field(default_factory=dict)
    worker_kills: list[str] = field(default_factory=list)
    redis_restarts: list[str] = field(default_factory=list)
    restarts: dict[str, int] = field(default_factory=dict)
    exit_codes: dict[str, list[int]] = field(default_factory=dict)
    play_seconds: float = 0.0
    quiescence_seconds: float = 0.0
    pre_check: dict[str, int] = field(default_factory=dict)
    pre_mismatches: list[str] = field(default_factory=list)
    jobs: dict[str, Any] = field(default_factory=dict)
    plan: Counter[str] = field(default_factory=Counter)
    plan_samples: list[str] = field(default_factory=list)
    reconciliation: dict[str, Any] = field(default_factory=dict)
    checked: int = 0
    mismatches: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    wrongly_suspended: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    log_dir: str | None = None

    @property
    def lucca_500(self) -> int:
        return int(self.lucca_counters.get("by_status", {}).get("500", 0))

    @property
    def lucca_429(self) -> int:
        return int(self.lucca_counters.get("by_status", {}).get("429", 0))

    @property
    def proxy_503(self) -> int:
        return int(self.proxy_counters.get("injected_503", 0))

    @property
    def proxy_timeouts(self) -> int:
        return int(self.proxy_counters.get("timeouts", 0))

    @property
    def ok(self) -> bool:
        return not (self.mismatches or self.wrongly_suspended or self.failures)

    def _retries(self) -> str:
        if "retries" not in self.jobs:
            return "retry delays not logged (arq's job lines are below LOG_LEVEL)"
        return (
            f"{self.jobs['retries']} retries ({self.jobs['retries_over_60s']} deferred over"
            f" 60s, longest {self.jobs['longest_retry_s']:.0f}s)"
        )

    def render(self) -> str:
        o = self.options
        lucca, proxy = self.lucca_counters, self.proxy_counters
        recon = self.reconciliation
        lines = [
            f"chaos suite: {o.employees} employees, {o.changes} changes, seed {o.seed}: "
            + ("PASS" if self.ok else "FAIL"),
            f"  changes played      {self.changes_played} ({self.changes_noop} no-ops,"
            f" {self.changes_skipped} skipped as invalid) in {self.play_seconds:.0f}s",
            f"                      {_counts(self.changes_by_kind)}",
            f"  events sent         {self.events_unique} events + {self.events_duplicates}"
            f" duplicates = {self.deliveries} deliveries, {o.streams} streams,"
            f" shuffled in windows of {o.window} changes",
            f"  webhook answers     final: {_counts(self.final_statuses)};"
            f" every attempt: {_counts(self.attempt_statuses)};"
            f" undelivered {len(self.undelivered)}",
            f"  Lucca faults        {self.lucca_500} x 500 (error rate {o.lucca_error_rate}),"
            f" {self.lucca_429} x 429 ({o.lucca_429_bursts} bursts of"
            f" {o.lucca_429_burst_size}, Retry-After {o.lucca_429_retry_after}s);"
            f" {lucca.get('total', 0)} requests, by status {lucca.get('by_status', {})}",
            f"  Elevo proxy faults  {self.proxy_503} x 503, {self.proxy_timeouts} timeouts"
            f" ({proxy.get('timeouts_forwarded', 0)} forwarded then hung,"
            f" {proxy.get('timeouts_dropped', 0)} never forwarded);"
            f" {proxy.get('requests', 0)} requests, by method {proxy.get('injected_by_method')}",
            f"  worker kills        {len(self.worker_kills)}: {'; '.join(self.worker_kills)}",
            f"  process restarts    {_counts(Counter(self.restarts))}"
            f" (exit codes {self.exit_codes})",
            f"  Redis restarts      {len(self.redis_restarts)}: {'; '.join(self.redis_restarts)}",
            f"  worker jobs         {self._retries()}, {self.jobs.get('failed', '?')}"
            f" failed job runs {self.jobs.get('failed_by', {})} (from the workers' logs)",
            f"                      runs failed (department syncs, polls, reconciliations):"
            f" {sum(self.jobs.get('runs_failed', {}).values())} {self.jobs.get('runs_failed', {})}",
            *(
                [f"                      retries by cause: {self.jobs['retry_causes']}"]
                if "retry_causes" in self.jobs
                else []
            ),
            f"  quiescence          {self.quiescence_seconds:.0f}s after the last webhook;"
            f" then {self.pre_check.get('mismatches', '?')} mismatches,"
            f" {self.pre_check.get('wrongly_suspended', '?')} wrongly suspended"
            " (before the reconciliation)",
            f"  dry-run plan        {_counts(self.plan) or 'nothing to do'}",
            *(f"                      {sample}" for sample in self.plan_samples),
            f"  reconciliation      run {recon.get('id')}: {recon.get('state')}"
            f" in {recon.get('seconds', 0):.0f}s; {_counts(Counter(recon.get('counts', {})))}"
            + (f"; errors {recon.get('errors')}" if recon.get("errors") else ""),
            f"  consistency         {self.checked} users checked, {len(self.mismatches)}"
            f" mismatches, {len(self.conflicts)} conflicts (userName held by another profile)",
            f"  wrongly suspended   {len(self.wrongly_suspended)}",
            f"  wall time           {self.wall_seconds:.0f}s",
        ]
        lines += [f"  BEFORE    {text}" for text in self.pre_mismatches[:10]]
        lines += [f"  MISMATCH  {text}" for text in self.mismatches[:30]]
        lines += [f"  SUSPENDED {text}" for text in self.wrongly_suspended[:30]]
        lines += [f"  FAILURE   {text}" for text in self.failures]
        if self.log_dir:
            lines.append(f"  logs                {self.log_dir}")
        return "\n".join(lines)


def _counts(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{key} {n}" for key, n in sorted(counter.items(), key=lambda kv: -kv[1]))


# -- child processes, supervised ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_VAR = re.compile(r"\$\{?([A-Z_][A-Z0-9_]*)\}?")


def procfile_command(kind: str, env: Mapping[str, str]) -> list[str]:
    """The Procfile's `kind:` line as argv, `$VARS` from `env`, the venv's executable."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == kind:
            argv = [_VAR.sub(lambda m: env[m[1]], word) for word in shlex.split(command)]
            local = BIN / argv[0]
            argv[0] = str(local) if local.exists() else (shutil.which(argv[0]) or argv[0])
            return argv
    raise ChaosError(f"the Procfile has no {kind}: line")


def service_variables() -> set[str]:
    """Every variable .env.example lists: a child must not inherit the caller's values."""
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    restart: bool
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    exits: list[int] = field(default_factory=list)
    # Set while the suite stops it on purpose (Redis): its exit is no failure.
    stopping: bool = False
    next_start: float | None = None
    backoff: float = 0.5


class Supervisor:
    """Starts children, restarts the restart=always ones when they exit, stops them all."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: dict[str, Child] = {}
        self.fatal: str | None = None
        self._logs: list[IO[bytes]] = []
        self._task: asyncio.Task[None] | None = None

    def start(
        self, name: str, argv: list[str], env: Mapping[str, str], *, restart: bool = False
    ) -> Child:
        child = Child(name, argv, dict(env), self.log_dir / f"{name}.log", restart)
        self.children[name] = child
        self.spawn(child)
        return child

    def spawn(self, child: Child) -> None:
        log = child.log.open("ab")
        self._logs.append(log)
        child.process = subprocess.Popen(
            child.argv,
            cwd=ROOT,
            env=child.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the suite only; it stops them in order
        )
        child.started_at = time.monotonic()
        child.next_start = None

    def watch(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            now = time.monotonic()
            for child in self.children.values():
                self._tend(child, now)
            await asyncio.sleep(0.1)

    def _tend(self, child: Child, now: float) -> None:
        process = child.process
        if process is None:
            return
        if child.next_start is not None:
            if now >= child.next_start:
                child.restarts += 1
                self.spawn(child)
            return
        code = process.poll()
        if code is None or child.stopping:
            return
        child.exits.append(code)
        if not child.restart:
            self.fatal = self.fatal or f"{child.name} exited with {code}: see {child.log}"
            child.process = None
            return
        # Like a supervisor: quick when it ran a while, backing off when it keeps failing.
        uptime = now - child.started_at
        child.backoff = 0.5 if uptime > 10 else min(5.0, child.backoff * 2)
        child.next_start = now + child.backoff

    def check(self) -> None:
        if self.fatal:
            raise ChaosError(self.fatal)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> int:
        child = self.children[name]
        if child.process is None or child.process.poll() is not None:
            return 0
        os.kill(child.process.pid, sig)
        return child.process.pid

    async def stop_all(self, within: float = 10.0) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for child in reversed(list(self.children.values())):
            process = child.process
            if process is None or process.poll() is not None:
                continue
            child.stopping = True
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.to_thread(process.wait, within)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, 5)
        for log in self._logs:
            log.close()
        self._logs.clear()


# -- the stack ------------------------------------------------------------------------------------


@dataclass
class Stack:
    http: httpx.AsyncClient
    sup: Supervisor
    workdir: Path
    ports: dict[str, int]
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    api_key: str = field(default_factory=lambda: f"lucca-{secrets.token_hex(12)}")
    scim_token: str = field(default_factory=lambda: f"elevo-{secrets.token_hex(12)}")
    webhook_secret: str = field(default_factory=lambda: f"whsec-{secrets.token_hex(16)}")
    redis: aioredis.Redis | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports['redis']}/0"

    @property
    def redis_argv(self) -> list[str]:
        data = self.workdir / "redis"
        data.mkdir(exist_ok=True)
        return [
            shutil.which("redis-server") or "redis-server",
            "--port", str(self.ports["redis"]),
            "--bind", "127.0.0.1",
            "--dir", str(data),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--maxmemory-policy", "noeviction",
        ]  # fmt: skip

    def elevo(self) -> ElevoClient:
        """Elevo straight, not through the proxy: what the checks read."""
        return ElevoClient(self.http, f"{self.url('scim')}/{TENANT}/v2", Secret(self.scim_token))

    def lucca(self) -> LuccaControl:
        return LuccaControl(self.http, f"{self.url('lucca')}/_control/{TENANT}")

    def log(self, text: str) -> None:
        print(f"» {text}", flush=True)


class LuccaControl:
    """The simulator's control API for our company."""

    def __init__(self, http: httpx.AsyncClient, base: str) -> None:
        self.http = http
        self.base = base

    async def dump(self) -> dict[str, Any]:
        response = await self.http.get(f"{self.base}/users")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    async def mutate(self, body: Mapping[str, Any]) -> list[Event] | None:
        """The change's events; None when the simulator refused it (an invalid change)."""
        response = await self.http.post(f"{self.base}/mutations", json=dict(body))
        if response.status_code in (400, 404):
            return None
        response.raise_for_status()
        events: list[Event] = response.json()["events"]
        return events

    async def faults(self, body: Mapping[str, Any] | None = None) -> None:
        if body is None:
            response = await self.http.delete(f"{self.base}/faults")
        else:
            response = await self.http.put(f"{self.base}/faults", json=dict(body))
        response.raise_for_status()

    async def counters(self, *, reset: bool = False) -> dict[str, Any]:
        method = "DELETE" if reset else "GET"
        response = await self.http.request(method, f"{self.base}/counters")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        body.pop("requests", None)  # the request log itself: not a counter
        return body


async def wait_until(
    probe: Callable[[], Awaitable[bool]], what: str, sup: Supervisor, within: float = 60.0
) -> None:
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(httpx.HTTPError, OSError, RedisError):
            if await probe():
                return
        sup.check()
        if time.monotonic() > deadline:
            raise ChaosError(f"{what}: not within {within:.0f}s")
        await asyncio.sleep(0.1)


async def start_stack(options: ChaosOptions, stack: Stack) -> None:
    sup, http = stack.sup, stack.http
    base = {k: v for k, v in os.environ.items() if k not in service_variables()}
    base["PATH"] = f"{BIN}{os.pathsep}{base.get('PATH', '')}"
    sup.start("redis", stack.redis_argv, base)
    company = f"{TENANT}:{options.employees}:{options.seed}:{stack.api_key}"
    lucca_argv = [sys.executable, "-m", "simulators.lucca", "--port", str(stack.ports["lucca"])]
    sup.start("lucca", [*lucca_argv, "--company", company, "--rate-limit", "50"], base)
    contracts = ROOT / "contracts" / "elevo"
    scim_argv = [
        str(BIN / "scim2-server"),
        "--schema", str(contracts / "schemas.json"),
        "--resource-type", str(contracts / "resource-types.json"),
        "--bearer-token", stack.scim_token,
        "--dynamic-tenants",
        "--port", str(stack.ports["scim"]),
    ]  # fmt: skip
    sup.start("scim", scim_argv, base)
    proxy_argv = [
        sys.executable, "-m", "simulators.faultproxy",
        "--upstream", stack.url("scim"),
        "--port", str(stack.ports["proxy"]),
        "--seed", str(options.seed),
        "--hang-seconds", str(options.http_timeout * 3),
    ]  # fmt: skip
    sup.start("proxy", proxy_argv, base)
    sup.watch()
    redis = aioredis.Redis.from_url(stack.redis_url)
    stack.redis = redis
    await wait_until(lambda: _true(redis.ping()), "redis answers", sup)
    env = base | {
        "REDIS_URL": stack.redis_url,
        "ADMIN_TOKEN": stack.admin_token,
        "SECRETS_KEY": Fernet.generate_key().decode(),
        "LUCCA_URL_TEMPLATE": f"{stack.url('lucca')}/{{subdomain}}",
        "ALLOW_HTTP_ELEVO": "true",
        "HTTP_TIMEOUT_SECONDS": str(options.http_timeout),
        "WORKER_METRICS_PORT": "0",
        "LOG_LEVEL": options.log_level,
        "PORT": str(stack.ports["web"]),
    }
    if options.lucca_budget:
        env["LUCCA_BUDGET_OVERRIDE"] = str(options.lucca_budget)
    sup.start("web", procfile_command("web", env), env, restart=True)
    for n in (1, 2):
        sup.start(f"worker-{n}", procfile_command("worker", env), env, restart=True)
    auth = {"Authorization": f"Bearer {stack.scim_token}"}
    probes: dict[str, Callable[[], Awaitable[bool]]] = {
        "lucca": lambda: _ok(http.get(stack.lucca().base)),
        "scim": lambda: _ok(http.get(f"{stack.url('scim')}/{TENANT}/v2/Users", headers=auth)),
        "proxy": lambda: _ok(http.get(f"{stack.url('proxy')}/_proxy/counters")),
        "web": lambda: _ok(http.get(f"{stack.url('web')}/readyz")),
        "workers": lambda: _true(redis.exists("arq:queue:health-check")),
    }  # fmt: skip
    for name, probe in probes.items():
        await wait_until(probe, f"{name} answers", sup)
    stack.log(f"stack up: ports {stack.ports}, logs in {sup.log_dir}")


async def _ok(request: Awaitable[httpx.Response]) -> bool:
    return (await request).status_code == 200


async def _true(value: Awaitable[Any]) -> bool:
    return bool(await value)


async def register_tenant(stack: Stack) -> None:
    body = {
        "lucca": {
            "subdomain": TENANT,
            "api_key": stack.api_key,
            "webhook_secret": stack.webhook_secret,
        },
        "elevo": {"scim_url": f"{stack.url('proxy')}/{TENANT}/v2", "token": stack.scim_token},
        "skip_field": SKIP_FIELD,
        "custom_fields": CUSTOM_FIELDS,
    }
    url = f"{stack.url('web')}/tenants/{TENANT}"
    response = await stack.http.put(url, json=body, headers=stack.admin)
    if response.status_code not in (200, 201):
        raise ChaosError(f"PUT /tenants/{TENANT} answered {response.status_code}: {response.text}")


async def start_run(stack: Stack, body: Mapping[str, Any]) -> str:
    url = f"{stack.url('web')}/sync/{TENANT}"
    response = await stack.http.post(url, json=dict(body), headers=stack.admin)
    if response.status_code != 202:
        raise ChaosError(f"POST /sync/{TENANT} answered {response.status_code}: {response.text}")
    run_id: str = response.json()["run"]
    return run_id


async def wait_run(stack: Stack, run_id: str, within: float) -> dict[str, Any]:
    url = f"{stack.url('web')}/sync/{TENANT}/runs/{run_id}"
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(httpx.HTTPError):
            response = await stack.http.get(url, headers=stack.admin)
            if response.status_code == 200:
                run: dict[str, Any] = response.json()
                if run.get("state") in {"done", "failed", "held"}:
                    return run
        stack.sup.check()
        if time.monotonic() > deadline:
            raise ChaosError(f"run {run_id} did not end within {within:.0f}s")
        await asyncio.sleep(0.25)


# -- quiescence -----------------------------------------------------------------------------------


async def pending_work(redis: aioredis.Redis) -> tuple[int, int]:
    """(jobs queued, jobs in progress), leaving out contract-end re-checks and the tick."""
    queued = await redis.zrange("arq:queue", 0, -1)
    waiting = sum(1 for job in queued if not job.startswith(_NOT_PENDING))
    running = 0
    async for key in redis.scan_iter(match=f"{_IN_PROGRESS}*", count=1000):
        if not key[len(_IN_PROGRESS) :].startswith(_NOT_PENDING):
            running += 1
    return waiting, running


async def _deferred(redis: aioredis.Redis) -> str:
    """How many queued jobs are deferred (a retry's backoff), and till when at the latest."""
    try:
        scored = await redis.zrange("arq:queue", 0, -1, withscores=True)
        now_ms = time.time() * 1000
    except RedisError:
        return "?"
    ahead = [score - now_ms for job, score in scored if not job.startswith(_NOT_PENDING)]
    later = [ms for ms in ahead if ms > 0]
    if not later:
        return "all due"
    return f"{len(later)} deferred, the last {max(later) / 1000:.0f}s ahead"


async def settle(stack: Stack, within: float) -> tuple[bool, float]:
    """Wait until nothing is queued nor in progress for a second; (quiet?, seconds waited)."""
    assert stack.redis is not None
    started = last_report = time.monotonic()
    idle_since: float | None = None
    while True:
        stack.sup.check()
        now = time.monotonic()
        try:
            waiting, running = await pending_work(stack.redis)
        except RedisError:
            waiting, running = -1, -1
        if waiting == 0 and running == 0:
            idle_since = idle_since or now
            if now - idle_since >= 1.0:
                return True, now - started
        else:
            idle_since = None
        if now - started > within:
            return False, now - started
        if now - last_report >= 15:
            last_report = now
            later = await _deferred(stack.redis)
            stack.log(f"waiting for quiescence: {waiting} queued ({later}), {running} in progress")
        await asyncio.sleep(0.25)


# -- the changes HR makes -------------------------------------------------------------------------


@dataclass
class Person:
    id: int
    first: str
    last: str
    start: date
    end: date | None
    excluded: bool
    department: int | None
    deleted: bool = False


def _day(v3: str | None) -> date | None:
    return None if v3 is None else date.fromisoformat(v3[:10])


def _unwrap(stored: Any) -> Any:
    return stored.get("value") if isinstance(stored, dict) else stored


@dataclass
class Change:
    kind: str
    body: dict[str, Any]
    apply: Callable[[list[Event]], None]


class ChangeMaker:
    """Seeded random HR changes, valid against a mirror of the directory it keeps up to date."""

    WEIGHTS: Mapping[str, int] = {
        "rename": 12, "title": 10, "manager": 10, "department": 7, "cost_center": 7,
        "remote": 3, "languages": 3, "mail": 3, "employee_number": 2, "hire": 8,
        "future_hire": 2, "departure_past": 7, "departure_today": 1, "departure_future": 4,
        "rehire": 5, "start_date": 2, "exclude": 4, "unexclude": 4, "delete": 2,
        "department_rename": 1,
    }  # fmt: skip

    def __init__(self, dump: Mapping[str, Any], rng: random.Random) -> None:
        self.rng = rng
        self.today = date.fromisoformat(dump["today"])
        self.departments = {int(d["id"]): str(d["name"]) for d in dump["departments"]}
        self.people: dict[int, Person] = {}
        for user in dump["users"]:
            start = _day(user.get("dtContractStart")) or self.today
            department = user.get("department")
            self.people[int(user["id"])] = Person(
                id=int(user["id"]),
                first=user["firstName"],
                last=user["lastName"],
                start=start,
                end=_day(user.get("dtContractEnd")),
                excluded=_unwrap((user.get("extendedData") or {}).get(SKIP_FIELD)) is True,
                department=int(department["id"]) if department else None,
            )
        self._serial = 0
        self._kinds = list(self.WEIGHTS)
        self._weights = [self.WEIGHTS[k] for k in self._kinds]

    def next(self) -> Change | None:
        kind = self.rng.choices(self._kinds, self._weights)[0]
        make: Callable[[], Change | None] = getattr(self, f"_{kind}")
        return make()

    # -- helpers ---------------------------------------------------------------------------

    def _alive(self, keep: Callable[[Person], bool] = lambda p: True) -> Person | None:
        candidates = [p for p in self.people.values() if not p.deleted and keep(p)]
        return self.rng.choice(candidates) if candidates else None

    def _fresh(self) -> int:
        self._serial += 1
        return self._serial

    def _new_mail(self, first: str, last: str) -> str:
        local = "".join(c for c in f"{first}.{last}".lower() if c.isascii() and c not in " '")
        return f"{local}.{self._fresh()}@{TENANT}.example"

    @staticmethod
    def _noop(_: list[Event]) -> None:
        return None

    # -- one method per kind -----------------------------------------------------------------

    def _rename(self) -> Change | None:
        p = self._alive()
        if p is None:
            return None
        if self.rng.random() < 0.5:
            first = self.rng.choice(FIRST_NAMES)
            return Change("rename", {"op": "update", "user_id": p.id, "firstName": first},
                          lambda _: setattr(p, "first", first))  # fmt: skip
        last = self.rng.choice(LAST_NAMES)
        if self.rng.random() < 0.2:  # a double-barrelled name
            last = f"{last}-{self.rng.choice(LAST_NAMES)}"
        return Change("rename", {"op": "update", "user_id": p.id, "lastName": last},
                      lambda _: setattr(p, "last", last))  # fmt: skip

    def _title(self) -> Change | None:
        p = self._alive()
        if p is None:
            return None
        title = None if self.rng.random() < 0.05 else self.rng.choice(JOB_TITLES)
        return Change("title", {"op": "set_job", "user_id": p.id, "job_title": title}, self._noop)

    def _manager(self) -> Change | None:
        p, boss = self._alive(), self._alive()
        if p is None or boss is None:
            return None
        roll = self.rng.random()
        # Cycles are allowed; a few become roots: self-managed (as Lucca imports do) or none.
        manager = p.id if roll < 0.02 else None if roll < 0.05 else boss.id
        body = {"op": "set_job", "user_id": p.id, "manager_id": manager}
        return Change("manager", body, self._noop)

    def _department(self) -> Change | None:
        p = self._alive()
        if p is None:
            return None
        dept = self.rng.choice(list(self.departments))
        body = {"op": "set_job", "user_id": p.id, "department_id": dept}
        return Change("department", body, lambda _: setattr(p, "department", dept))

    def _extension(self, kind: str, code: str, value: Any) -> Change | None:
        p = self._alive()
        if p is None:
            return None
        body = {"op": "set_extension", "user_id": p.id, "code": code, "value": value}
        return Change(kind, body, self._noop)

    def _cost_center(self) -> Change | None:
        value = None if self.rng.random() < 0.05 else f"CC-{self.rng.randint(10, 99)}"
        return self._extension("cost_center", "e_cost_center", value)

    def _remote(self) -> Change | None:
        return self._extension("remote", "e_remote", self.rng.random() < 0.5)

    def _languages(self) -> Change | None:
        spoken = self.rng.sample(LANGUAGES, self.rng.randint(0, 3))
        return self._extension("languages", "e_languages", spoken)

    def _mail(self) -> Change | None:
        p = self._alive()
        if p is None:
            return None
        body = {"op": "update", "user_id": p.id, "mail": self._new_mail(p.first, p.last)}
        return Change("mail", body, self._noop)

    def _employee_number(self) -> Change | None:
        p = self._alive()
        if p is None:
            return None
        number = f"{self.rng.randint(0, 99999):05d}"
        body = {"op": "update", "user_id": p.id, "employeeNumber": number}
        return Change("employee_number", body, self._noop)

    def _hire(self, *, future: bool = False) -> Change | None:
        boss = self._alive(lambda p: not p.excluded)
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        offset = self.rng.randint(1, 45) if future else -self.rng.randint(0, 5)
        start = self.today + timedelta(days=offset)
        dept = self.rng.choice(list(self.departments))
        serial = self._fresh()
        body = {
            "op": "hire", "first_name": first, "last_name": last, "start": start.isoformat(),
            "department_id": dept, "job_title": self.rng.choice(JOB_TITLES),
            "mail": self._new_mail(first, last), "login": f"chaos{serial}",
            "employee_number": f"H{serial:05d}",
            "manager_id": boss.id if boss else None,
            "extended": {"e_cost_center": f"CC-{self.rng.randint(10, 99)}",
                         "e_remote": self.rng.random() < 0.4},
        }  # fmt: skip

        def apply(events: list[Event]) -> None:
            ident = int(events[0]["data"]["id"])
            self.people[ident] = Person(ident, first, last, start, None, False, dept)

        return Change("future_hire" if future else "hire", body, apply)

    def _future_hire(self) -> Change | None:
        return self._hire(future=True)

    def _contract(self, kind: str, p: Person | None, **dates: date | None) -> Change | None:
        if p is None:
            return None
        body: dict[str, Any] = {"op": "set_contract", "user_id": p.id}
        body |= {k: None if v is None else v.isoformat() for k, v in dates.items()}

        def apply(_: list[Event]) -> None:
            p.start = dates.get("start", p.start) or p.start
            p.end = dates.get("end", p.end)

        return Change(kind, body, apply)

    def _departure_past(self) -> Change | None:
        p = self._alive(lambda q: q.start < self.today - timedelta(days=1) and q.end is None)
        if p is None:
            return None
        end = max(p.start, self.today - timedelta(days=self.rng.randint(1, 30)))
        return self._contract("departure_past", p, end=end)

    def _departure_today(self) -> Change | None:
        p = self._alive(lambda q: q.start <= self.today and q.end is None)
        return self._contract("departure_today", p, end=self.today)

    def _departure_future(self) -> Change | None:
        p = self._alive(lambda q: q.end is None)
        if p is None:
            return None
        end = max(p.start, self.today + timedelta(days=self.rng.randint(1, 60)))
        return self._contract("departure_future", p, end=end)

    def _rehire(self) -> Change | None:
        p = self._alive(lambda q: q.end is not None)
        if p is None:
            return None
        if self.rng.random() < 0.5:  # the end date withdrawn
            return self._contract("rehire", p, end=None)
        return self._contract("rehire", p, start=self.today, end=None)  # a new contract

    def _start_date(self) -> Change | None:
        p = self._alive(lambda q: q.end is None)
        if p is None:
            return None
        start = p.start - timedelta(days=self.rng.randint(1, 30))
        return self._contract("start_date", p, start=start)

    def _skip(self, kind: str, value: bool) -> Change | None:
        p = self._alive(lambda q: q.excluded is not value)
        if p is None:
            return None
        body = {"op": "set_extension", "user_id": p.id, "code": SKIP_FIELD, "value": value}
        return Change(kind, body, lambda _: setattr(p, "excluded", value))

    def _exclude(self) -> Change | None:
        return self._skip("exclude", True)

    def _unexclude(self) -> Change | None:
        return self._skip("unexclude", False)

    def _delete(self) -> Change | None:
        p = self._alive()
        if p is None:
            return None
        return Change("delete", {"op": "delete", "user_id": p.id},
                      lambda _: setattr(p, "deleted", True))  # fmt: skip

    def _department_rename(self) -> Change | None:
        dept = self.rng.choice(list(self.departments))
        name = f"{self.departments[dept].split(' #')[0]} #{self._fresh()}"

        def apply(_: list[Event]) -> None:
            self.departments[dept] = name

        body = {"op": "rename_department", "dept_id": dept, "name": name}
        return Change("department_rename", body, apply)


# -- playing them: mutations, webhooks, and the chaos meanwhile -----------------------------------


@dataclass
class Player:
    stack: Stack
    options: ChaosOptions
    summary: Summary
    rng: random.Random
    sender: WebhookSender
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    background: list[asyncio.Task[None]] = field(default_factory=list)
    # Every change as played, with its events: logs/changes.jsonl.
    journal: list[bytes] = field(default_factory=list)

    def schedule(self) -> dict[int, list[str]]:
        """At which change each disruption happens: seeded spots in the middle 80%."""
        n = self.options.changes
        spots: dict[int, list[str]] = {}
        actions = (
            ["kill"] * self.options.worker_kills
            + ["redis"] * self.options.redis_restarts
            + ["429"] * self.options.lucca_429_bursts
        )
        low, high = max(1, n // 10), max(2, n * 9 // 10)
        for action in actions:
            spots.setdefault(self.rng.randrange(low, high), []).append(action)
        return spots

    async def play(self) -> None:
        maker = ChangeMaker(await self.stack.lucca().dump(), self.rng)
        streams = [asyncio.create_task(self._stream()) for _ in range(self.options.streams)]
        spots = self.schedule()
        started = time.monotonic()
        window: list[Event] = []
        for index in range(self.options.changes):
            for action in spots.get(index, []):
                await self._disrupt(action, index)
            window += await self._one_change(maker)
            if (index + 1) % self.options.window == 0:
                self._send_window(window)
                window = []
            ahead = started + (index + 1) / self.options.pace - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
            self.stack.sup.check()
        self._send_window(window)
        for _ in streams:
            self.queue.put_nowait(None)
        await asyncio.gather(*streams, *self.background)
        self.summary.play_seconds = time.monotonic() - started
        (self.stack.sup.log_dir / "changes.jsonl").write_bytes(b"\n".join(self.journal) + b"\n")

    async def _one_change(self, maker: ChangeMaker) -> list[Event]:
        change = maker.next()
        if change is None:
            self.summary.changes_skipped += 1
            return []
        events = await self.stack.lucca().mutate(change.body)
        if events is None:
            self.summary.changes_skipped += 1
            return []
        change.apply(events)
        entry = {
            "at": time.time(),
            "kind": change.kind,
            "body": change.body,
            "events": [f"{e['topic']} {e['id']}" for e in events],
        }
        self.journal.append(orjson.dumps(entry, default=str))
        self.summary.changes_played += 1
        self.summary.changes_by_kind[change.kind] += 1
        if not events:
            self.summary.changes_noop += 1
        return events

    def _send_window(self, events: list[Event]) -> None:
        """Duplicates (~10%), then the window shuffled: late, early and twice, as Lucca may."""
        batch = list(events)
        for event in events:
            if self.rng.random() < self.options.duplicate_rate:
                batch.append(event)
                self.summary.events_duplicates += 1
        self.rng.shuffle(batch)
        self.summary.events_unique += len(events)
        for event in batch:
            self.queue.put_nowait(event)

    async def _stream(self) -> None:
        while (event := await self.queue.get()) is not None:
            delivery = await self.sender.send(event)
            self.summary.deliveries += 1
            for attempt in delivery.attempts:
                self.summary.attempt_statuses[str(attempt.status or "no answer")] += 1
            final = delivery.attempts[-1].status if delivery.attempts else None
            self.summary.final_statuses[str(final or "no answer")] += 1
            if not delivery.delivered:
                self.summary.undelivered.append(f"{event['topic']} {event['id']}")

    async def _disrupt(self, action: str, index: int) -> None:
        if action == "kill":
            await self._kill_worker(index)
        elif action == "redis":
            self.background.append(asyncio.create_task(self._restart_redis(index)))
        else:
            burst = {
                "status": 429,
                "count": self.options.lucca_429_burst_size,
                "retry_after": self.options.lucca_429_retry_after,
            }
            await self.stack.lucca().faults({"force": burst})
            self.stack.log(f"change {index}: a burst of {burst['count']} Lucca 429s")

    async def _kill_worker(self, index: int) -> None:
        name = self.rng.choice(["worker-1", "worker-2"])
        running = -1
        with contextlib.suppress(RedisError):
            assert self.stack.redis is not None
            running = (await pending_work(self.stack.redis))[1]
        pid = self.stack.sup.kill(name)
        what = f"{name} (pid {pid}) at change {index}, {running} jobs in progress"
        self.summary.worker_kills.append(what if pid else f"{name} was down at change {index}")
        self.stack.log(f"SIGKILL {what}")

    async def _restart_redis(self, index: int) -> None:
        stack = self.stack
        child = stack.sup.children["redis"]
        assert child.process is not None
        child.stopping = True
        started = time.monotonic()
        cli = shutil.which("redis-cli")
        if cli:
            shutdown = await asyncio.create_subprocess_exec(
                cli, "-p", str(stack.ports["redis"]), "shutdown",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            await shutdown.wait()
        else:  # the same command through redis-py; the connection drops as it succeeds
            with contextlib.suppress(RedisError):
                assert stack.redis is not None
                await stack.redis.shutdown()
        child.exits.append(await asyncio.to_thread(child.process.wait, 30))
        await asyncio.sleep(self.options.redis_downtime)
        stack.sup.spawn(child)
        child.stopping = False
        assert stack.redis is not None
        redis = stack.redis
        await wait_until(lambda: _true(redis.ping()), "redis answers again", stack.sup)
        down = time.monotonic() - started
        keys = await redis.dbsize()
        what = f"at change {index}: SHUTDOWN (AOF flushed), back in {down:.1f}s with {keys} keys"
        self.summary.redis_restarts.append(what)
        stack.log(f"Redis restarted {what}")


# -- the checks -----------------------------------------------------------------------------------


async def all_profiles(elevo: ElevoClient) -> list[ElevoProfile]:
    found: list[ElevoProfile] = []
    start = 1
    while True:
        page = await elevo.list_page(start_index=start, count=1000)
        found.extend(page.profiles)
        if not page.profiles or len(found) >= page.total:
            return found
        start += len(page.profiles)


@dataclass
class Verdict:
    checked: int
    mismatches: list[str]
    conflicts: list[str]
    wrongly_suspended: list[str]


async def verdict(stack: Stack) -> Verdict:
    dump = await stack.lucca().dump()
    today = date.fromisoformat(dump["today"])
    profiles = await all_profiles(stack.elevo())
    report = check(
        dump["users"], profiles, skip_field=SKIP_FIELD, custom_fields=CUSTOM_FIELDS, today=today
    )
    by_external = {p.external_id: p for p in profiles if p.external_id}
    wrong = []
    for item in dump["users"]:
        try:
            user = parse_user(item)
            standing = standing_of(user, skip_field=SKIP_FIELD, today=today)
        except InvalidLuccaUser:
            continue
        profile = by_external.get(user.id)
        if standing is Standing.ACTIVE and profile is not None and not profile.active:
            wrong.append(f"{user.id}: active in Lucca, profile {profile.id} suspended")
    return Verdict(report.checked, report.mismatches, report.conflicts, wrong)


async def dry_run_plan(stack: Stack, summary: Summary) -> list[dict[str, Any]]:
    """What a reconciliation would still change: what the event path left undone."""
    run = await wait_run(stack, await start_run(stack, {"mode": "full", "dry_run": True}), 600)
    for entry in run.get("plan") or []:
        if entry.get("action") in ("unchanged", "skipped"):
            continue
        summary.plan[str(entry.get("action"))] += 1
        if len(summary.plan_samples) < 12:
            changes = (entry.get("diff") or {}).items()
            diff = "; ".join(f"{path.rsplit(':', 1)[-1]} {c['old']!r} -> {c['new']!r}"
                             for path, c in changes)  # fmt: skip
            why = str(entry.get("reason") or "")[:100]
            summary.plan_samples.append(
                f"user {entry.get('user')}: {entry.get('action')} {diff} ({why})"
            )
    return [e for e in run.get("plan") or [] if e.get("action") not in ("unchanged", "skipped")]


async def save_diagnostics(stack: Stack, plan: list[dict[str, Any]], before: Verdict) -> None:
    """What the event path left undone, with the histories of the users (and managers) involved:
    logs/diagnostics.json, to read when a run fails or the plan is not empty."""
    dump = await stack.lucca().dump()
    users = {str(u["id"]): u for u in dump["users"]}
    involved = {str(e.get("user")) for e in plan}
    involved |= {text.split(":", 1)[0] for text in before.mismatches}
    wanted = set(involved)
    for uid in involved:
        manager = (users.get(uid) or {}).get("manager")
        if manager:
            wanted.add(str(manager["id"]))
    histories = {}
    for uid in sorted(wanted, key=lambda u: int(u) if u.isdigit() else 0):
        url = f"{stack.url('web')}/sync/{TENANT}/users/{uid}"
        with contextlib.suppress(httpx.HTTPError, ValueError):
            histories[uid] = (await stack.http.get(url, headers=stack.admin)).json()["history"]
    blob = {
        "mismatches_before_reconciliation": before.mismatches,
        "plan": plan,
        "lucca_users": {uid: users.get(uid) for uid in sorted(wanted)},
        "histories": histories,
    }
    path = stack.sup.log_dir / "diagnostics.json"
    path.write_bytes(orjson.dumps(blob, option=orjson.OPT_INDENT_2, default=str))


async def reconcile(stack: Stack, summary: Summary) -> None:
    started = time.monotonic()
    run = await wait_run(stack, await start_run(stack, {"mode": "full"}), 900)
    summary.reconciliation = {
        "id": run.get("id"),
        "state": run.get("state"),
        "counts": run.get("counts", {}),
        "errors": run.get("errors") or {},
        "seconds": time.monotonic() - started,
    }
    if run.get("state") == "held":
        status = await stack.http.get(f"{stack.url('web')}/sync/{TENANT}", headers=stack.admin)
        guard = status.json().get("safety_guard", {})
        summary.failures.append(
            f"the reconciliation was held by the safety guard (not confirmed): {guard}"
        )
    elif run.get("state") != "done":
        summary.failures.append(f"the reconciliation ended {run.get('state')}: {run}")


# -- the whole suite ------------------------------------------------------------------------------


async def _initial_sync(stack: Stack) -> None:
    started = time.monotonic()
    run = await wait_run(stack, await start_run(stack, {"mode": "full"}), 600)
    if run.get("state") != "done":
        raise ChaosError(f"the initial full sync ended {run.get('state')}: {run}")
    quiet, _ = await settle(stack, 300)
    if not quiet:
        raise ChaosError("the queue did not empty after the initial full sync")
    counts = _counts(Counter(run.get("counts", {})))
    stack.log(f"initial full sync: {counts} in {time.monotonic() - started:.0f}s")


async def _inject_faults(stack: Stack, options: ChaosOptions) -> None:
    await stack.lucca().counters(reset=True)
    await stack.lucca().faults({"error_rate": options.lucca_error_rate, "seed": options.seed})
    proxy = f"{stack.url('proxy')}/_proxy"
    (await stack.http.delete(f"{proxy}/counters")).raise_for_status()
    faults = {
        "error_rate": options.proxy_error_rate,
        "timeout_rate": options.proxy_timeout_rate,
        "seed": options.seed,
    }
    (await stack.http.put(f"{proxy}/faults", json=faults)).raise_for_status()


async def _clear_faults(stack: Stack, summary: Summary) -> None:
    lucca = stack.lucca()
    await lucca.faults(None)
    summary.lucca_counters = await lucca.counters()
    proxy = f"{stack.url('proxy')}/_proxy"
    (await stack.http.delete(f"{proxy}/faults")).raise_for_status()
    summary.proxy_counters = (await stack.http.get(f"{proxy}/counters")).json()


async def _chaos(options: ChaosOptions, stack: Stack, summary: Summary) -> None:
    await start_stack(options, stack)
    await register_tenant(stack)
    await _initial_sync(stack)
    await _inject_faults(stack, options)
    webhook = f"{stack.url('web')}/webhooks/lucca/{TENANT}"
    sender = WebhookSender(stack.http, webhook, stack.webhook_secret, retry_delays=RETRY_DELAYS)
    player = Player(stack, options, summary, random.Random(options.seed), sender)
    stack.log(f"playing {options.changes} changes at {options.pace:.0f}/s under faults")
    await player.play()
    await _clear_faults(stack, summary)
    stack.log("faults cleared; waiting for quiescence")
    quiet, summary.quiescence_seconds = await settle(stack, options.settle_timeout)
    if not quiet:
        summary.failures.append(f"not quiescent after {options.settle_timeout:.0f}s")
    before = await verdict(stack)
    summary.pre_check = {
        "mismatches": len(before.mismatches),
        "wrongly_suspended": len(before.wrongly_suspended),
    }
    summary.pre_mismatches = before.mismatches
    stack.log(f"before the reconciliation: {summary.pre_check}")
    plan = await dry_run_plan(stack, summary)
    await save_diagnostics(stack, plan, before)
    await reconcile(stack, summary)
    quiet, _ = await settle(stack, 300)
    if not quiet:
        summary.failures.append("not quiescent after the reconciliation")
    after = await verdict(stack)
    summary.checked = after.checked
    summary.mismatches = after.mismatches
    summary.conflicts = after.conflicts
    summary.wrongly_suspended = after.wrongly_suspended


_RETRY = re.compile(r"retrying job in ([0-9.]+)s")
_FAILED = re.compile(r" ! \S+ failed, (\w+)")
# The service's own INFO line for a job it retries: "tenant=… user=… retry: <why>".
_CAUSES = (
    (re.compile(r"budget of tenant .* spent"), "Lucca budget"),
    (re.compile(r"(Lucca|Elevo) \S+ \S+ answered (\d+)"), "{0} {1}"),
    (re.compile(r"(Lucca|Elevo) \S+ \S+ failed: (\w+)"), "{0} {1}"),
)


_RUN_FAILED = re.compile(r"tenant=\S+ run=\S+ failed: (.*)")


def _retry_cause(message: str) -> str | None:
    if " retry: " not in message:
        return None
    why = message.split(" retry: ", 1)[1]
    for pattern, label in _CAUSES:
        if (found := pattern.search(why)) is not None:
            return label.format(*found.groups())
    return "other"


def _arq_lines(path: Path) -> set[tuple[str, str]]:
    """(hh:mm:ss, message) of every arq line of a worker's log, once: arq's own plain handler
    and the service's JSON one may both print it."""
    lines: set[tuple[str, str]] = set()
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
                record = orjson.loads(line)
                lines.add((str(record.get("time", ""))[11:19], str(record.get("message", ""))))
        elif re.match(r"\d\d:\d\d:\d\d: ", line):
            lines.add((line[:8], line[10:]))
    return lines


def scan_worker_logs(log_dir: Path) -> dict[str, Any]:
    """Retries and failed runs, as arq logs them (its job lines are at INFO whatever the
    service's LOG_LEVEL); only for the summary, nothing is decided on them."""
    delays: list[float] = []
    failed: Counter[str] = Counter()
    causes: Counter[str] = Counter()
    runs_failed: Counter[str] = Counter()
    started = 0
    for path in log_dir.glob("worker-*.log"):
        for _, message in _arq_lines(path):
            if (cause := _retry_cause(message)) is not None:
                causes[cause] += 1
            elif (found := _RUN_FAILED.search(message)) is not None:
                runs_failed[re.sub(r"[0-9.]+s\b", "…s", found[1])[:80]] += 1
            elif (found := _RETRY.search(message)) is not None:
                delays.append(float(found[1]))
            elif (found := _FAILED.search(message)) is not None:
                failed[found[1]] += 1
            elif " → " in message:
                started += 1
    found_out: dict[str, Any] = {
        "failed": sum(failed.values()),
        "failed_by": dict(failed),
        "runs_failed": dict(runs_failed),
    }
    if causes:  # only at LOG_LEVEL=INFO
        found_out["retry_causes"] = dict(causes.most_common())
    if not started:  # arq's INFO lines are not in the logs: retries cannot be counted
        return found_out
    return found_out | {
        "retries": len(delays),
        "retries_over_60s": sum(1 for d in delays if d > 60),
        "longest_retry_s": max(delays, default=0.0),
    }


async def run(options: ChaosOptions) -> Summary:
    """Run the suite; the summary (also printed unless `options.quiet`)."""
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
    (workdir / "logs").mkdir()
    summary = Summary(options)
    sup = Supervisor(workdir / "logs")
    ports = {name: free_port() for name in ("redis", "lucca", "scim", "proxy", "web")}
    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as http:
        stack = Stack(http, sup, workdir, ports)
        try:
            await _chaos(options, stack, summary)
        except (ChaosError, httpx.HTTPError, RedisError, OSError) as exc:
            summary.failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            if stack.redis is not None:
                await stack.redis.aclose()
            await sup.stop_all()
            for name, child in sup.children.items():
                if child.restart:
                    summary.restarts[name] = child.restarts
                if child.exits:
                    summary.exit_codes[name] = child.exits
            summary.jobs = scan_worker_logs(sup.log_dir)
    summary.wall_seconds = time.monotonic() - started
    if options.keep_logs or not summary.ok:
        summary.log_dir = str(workdir / "logs")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if not options.quiet:
        print(summary.render(), flush=True)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    defaults = ChaosOptions()
    parser.add_argument("--employees", type=int, default=defaults.employees)
    parser.add_argument("--changes", type=int, default=defaults.changes)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--keep-logs", action="store_true", help="keep the logs even on success")
    parser.add_argument("--worker-kills", type=int, default=defaults.worker_kills)
    parser.add_argument("--redis-restarts", type=int, default=defaults.redis_restarts)
    parser.add_argument("--pace", type=float, default=defaults.pace, help="changes per second")
    parser.add_argument("--streams", type=int, default=defaults.streams)
    parser.add_argument("--log-level", default=defaults.log_level, help="of web and workers")
    parser.add_argument(
        "--lucca-budget",
        type=int,
        default=defaults.lucca_budget,
        help="LUCCA_BUDGET_OVERRIDE (requests a minute); 0: the tenant's own",
    )
    args = parser.parse_args(argv)
    options = ChaosOptions(
        employees=args.employees,
        changes=args.changes,
        seed=args.seed,
        keep_logs=args.keep_logs,
        worker_kills=args.worker_kills,
        redis_restarts=args.redis_restarts,
        pace=args.pace,
        streams=args.streams,
        lucca_budget=args.lucca_budget,
        log_level=args.log_level,
    )
    summary = asyncio.run(run(options))
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
