"""What every benchmark shares: processes on loopback, the service's env, results, tables.

Every benchmark starts its own redis-server on a free port (the shared Redis on 6379 belongs
to others), its own simulators and the service's processes exactly as the Procfile runs them,
and stops all of them on exit. Results go to bench/results/ (gitignored) as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
LOGS = RESULTS / "logs"
BIN = Path(sys.executable).parent
PY = sys.executable

ADMIN_TOKEN = "bench-admin-token"  # noqa: S105 - local processes only
# A fixed local-only Fernet key (the one in .env.example).
SECRETS_KEY = "UklKCFNoQ5hUdjRChI1dwhYELKyLsOGG02qJN7-cfWw="
SCIM_TOKEN = "bench-scim-token"  # noqa: S105
WEBHOOK_SECRET = "whsec-bench-0123456789abcdef"  # noqa: S105
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}: see {proc.log}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


# -- processes --------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the benchmark dies, however it dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Proc:
    """One child process, its log file, and what /proc tells about it."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (threads included)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return math.nan
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def _status(self, key: str) -> int:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def rss_mb(self) -> float:
        return self._status("VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        """VmHWM: the peak resident set since start or since `reset_peak`."""
        return self._status("VmHWM") / 1024

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs); False if refused."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)


class Stack:
    """Processes started by one benchmark, stopped in reverse order (also on errors)."""

    def __init__(self, run_name: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.run_name = f"{run_name}-{stamp}"
        self.procs: list[Proc] = []
        LOGS.mkdir(parents=True, exist_ok=True)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        port: int = 0,
        wait: bool = True,
    ) -> Proc:
        log = LOGS / f"{self.run_name}-{name}.log"
        restarts = 1
        while log.exists():  # a process started again under the same name keeps its own log
            restarts += 1
            log = LOGS / f"{self.run_name}-{name}-{restarts}.log"
        handle = log.open("wb")
        full_env = {**os.environ, **(env or {})}
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        popen = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=full_env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # children die with the benchmark
        )
        handle.close()
        proc = Proc(name, popen, log, port)
        self.procs.append(proc)
        if wait and port:
            wait_for_port(port, proc=proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop()
        self.procs.clear()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the components ---------------------------------------------------------------------

    def redis(self, name: str = "redis") -> Proc:
        if shutil.which("redis-server") is None:
            raise SystemExit("redis-server is not on PATH (apt-get install redis-server)")
        port = free_port()
        argv = [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            "--loglevel",
            "warning",
        ]
        return self.start(name, argv, port=port)

    def lucca(self, name: str = "lucca") -> Proc:
        port = free_port()
        argv = [PY, "-m", "simulators.lucca", "--port", str(port), "--rate-limit", "0"]
        return self.start(name, argv, port=port)

    def scim(self, kind: str, name: str = "") -> Proc:
        """`scim2` (the contract's scim2-server) or `fast` (simulators/fastscim.py)."""
        port = free_port()
        if kind == "scim2":
            argv = [
                str(BIN / "scim2-server"),
                "--schema",
                str(ROOT / "contracts/elevo/schemas.json"),
                "--resource-type",
                str(ROOT / "contracts/elevo/resource-types.json"),
                "--bearer-token",
                SCIM_TOKEN,
                "--dynamic-tenants",
                "--port",
                str(port),
            ]
        elif kind == "fast":
            argv = [PY, "-m", "simulators.fastscim", "--port", str(port), "--token", SCIM_TOKEN]
        else:
            raise ValueError(f"unknown SCIM server {kind!r}")
        return self.start(name or f"scim-{kind}", argv, port=port)

    def web(self, env: Mapping[str, str], name: str = "web") -> Proc:
        """The Procfile's web line (bound to loopback)."""
        port = int(env["PORT"])
        argv = [
            str(BIN / "uvicorn"),
            "--factory",
            "app.main:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "10",
        ]
        return self.start(name, argv, env=env, port=port)

    def worker(self, env: Mapping[str, str], name: str = "worker") -> Proc:
        """The Procfile's worker line; ready once its metrics port answers."""
        port = int(env.get("WORKER_METRICS_PORT", "0"))
        return self.start(
            name, [str(BIN / "arq"), "workers.settings.WorkerSettings"], env=env, port=port
        )


def service_env(redis: Proc, lucca: Proc, **overrides: str) -> dict[str, str]:
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "SECRETS_KEY": SECRETS_KEY,
        "LUCCA_URL_TEMPLATE": f"http://127.0.0.1:{lucca.port}/{{subdomain}}",
        "ALLOW_HTTP_ELEVO": "true",
        "PORT": str(free_port()),
        "WORKER_METRICS_PORT": str(free_port()),
        "LOG_LEVEL": "INFO",
        "LUCCA_BUDGET_OVERRIDE": "0",
    }
    env.update(overrides)
    return env


# -- tenants and companies -----------------------------------------------------------------


def far_nightly() -> str:
    """A nightly time 12 h away, so that no nightly run starts during a benchmark."""
    later = datetime.now(ZoneInfo("Europe/Paris")) + timedelta(hours=12)
    return later.strftime("%H:%M")


@dataclass
class Tenant:
    name: str
    subdomain: str
    api_key: str
    scim_base: str
    web_url: str
    lucca_url: str
    secret: str = WEBHOOK_SECRET
    per_minute: int = 40

    @property
    def scim_url(self) -> str:
        return f"{self.scim_base}/{self.name}/v2"

    @property
    def webhook_url(self) -> str:
        return f"{self.web_url}/webhooks/lucca/{self.name}"


async def create_company(
    http: httpx.AsyncClient, lucca_url: str, subdomain: str, size: int, seed: int = 1
) -> str:
    api_key = f"key-{secrets.token_hex(6)}"
    response = await http.put(
        f"{lucca_url}/_control/{subdomain}",
        json={"api_key": api_key, "size": size, "seed": seed, "rate_limit": None},
        timeout=600,
    )
    response.raise_for_status()
    return api_key


async def add_tenant(
    http: httpx.AsyncClient,
    *,
    name: str,
    web_url: str,
    lucca_url: str,
    scim_base: str,
    size: int,
    seed: int = 1,
    per_minute: int = 40,
) -> Tenant:
    """A generated Lucca company and the service's tenant reading it, writing to SCIM."""
    subdomain = name
    api_key = await create_company(http, lucca_url, subdomain, size, seed)
    tenant = Tenant(name, subdomain, api_key, scim_base, web_url, lucca_url, per_minute=per_minute)
    body = {
        "lucca": {"subdomain": subdomain, "api_key": api_key, "webhook_secret": tenant.secret},
        "elevo": {"scim_url": tenant.scim_url, "token": SCIM_TOKEN},
        "nightly_at": far_nightly(),
        "lucca_requests_per_minute": per_minute,
    }
    response = await http.put(
        f"{web_url}/tenants/{name}",
        json=body,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    if response.status_code not in (200, 201):
        raise RuntimeError(f"PUT /tenants/{name}: {response.status_code} {response.text}")
    return tenant


async def lucca_counters(http: httpx.AsyncClient, tenant: Tenant, reset: bool = False) -> Any:
    url = f"{tenant.lucca_url}/_control/{tenant.subdomain}/counters"
    response = await (http.delete(url) if reset else http.get(url))
    response.raise_for_status()
    return response.json()


async def full_sync(
    http: httpx.AsyncClient, tenant: Tenant, within: float = 1800.0, poll: float = 0.2
) -> dict[str, Any]:
    """POST /sync/{tenant} {"mode": "full"} and wait for its end; the run and the wall time."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    started = time.perf_counter()
    response = await http.post(
        f"{tenant.web_url}/sync/{tenant.name}", json={"mode": "full"}, headers=headers
    )
    if response.status_code != 202:
        raise RuntimeError(f"POST /sync: {response.status_code} {response.text}")
    run_id = response.json()["run"]
    deadline = started + within
    while True:
        run = (
            await http.get(f"{tenant.web_url}/sync/{tenant.name}/runs/{run_id}", headers=headers)
        ).json()
        if run.get("state") in {"done", "failed", "held"}:
            run["wall_seconds"] = time.perf_counter() - started
            return dict(run)
        if time.perf_counter() > deadline:
            # A run stuck in "running" (a step that died without failing the run) ends here.
            log(f"run {run_id} not done within {within:.0f} s: still {run.get('state')}")
            run["wall_seconds"] = time.perf_counter() - started
            run["state"] = f"not done within {within:.0f} s ({run.get('state')})"
            return dict(run)
        await asyncio.sleep(poll)


# -- webhooks ---------------------------------------------------------------------------------


def signed_headers(secret: str, body: bytes, now: datetime | None = None) -> dict[str, str]:
    from simulators.lucca.webhooks import lucca_timestamp, sign

    timestamp = lucca_timestamp(now or datetime.now(UTC))
    return {
        "Content-Type": "application/json",
        "Lucca-Timestamp": timestamp,
        "Lucca-Signature": sign(secret, timestamp, body),
    }


async def mutate(http: httpx.AsyncClient, tenant: Tenant, **op: Any) -> list[dict[str, Any]]:
    """Apply one HR change in the Lucca simulator; the webhook events Lucca would send."""
    response = await http.post(f"{tenant.lucca_url}/_control/{tenant.subdomain}/mutations", json=op)
    response.raise_for_status()
    events: list[dict[str, Any]] = response.json()["events"]
    return events


async def post_event(
    http: httpx.AsyncClient, tenant: Tenant, event: Mapping[str, Any]
) -> tuple[float, int, str | None]:
    """Sign and POST one event; (wall-clock send time, status, run id)."""
    body = orjson.dumps(event)
    headers = signed_headers(tenant.secret, body)
    sent = time.time()
    response = await http.post(tenant.webhook_url, content=body, headers=headers)
    run = None
    if response.status_code == 202:
        run = response.json().get("run")
    return sent, response.status_code, run


def iso_seconds(value: bytes | str | None) -> float | None:
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# -- worker metrics ---------------------------------------------------------------------------


@dataclass
class Metrics:
    """A scrape of one worker's /metrics."""

    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def total(self, name: str, **labels: str) -> float:
        return sum(
            value
            for sample, got, value in self.samples
            if sample == name and all(got.get(k) == v for k, v in labels.items())
        )

    def buckets(self, name: str) -> list[tuple[float, float]]:
        """Cumulative (upper bound, count) pairs of a histogram, +Inf last."""
        found = [
            (float(labels["le"]), value)
            for sample, labels, value in self.samples
            if sample == f"{name}_bucket"
        ]
        return sorted(found)


async def scrape(http: httpx.AsyncClient, port: int) -> Metrics:
    text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    metrics = Metrics()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            metrics.samples.append((sample.name, dict(sample.labels), float(sample.value)))
    return metrics


def bucket_delta(
    after: Sequence[tuple[float, float]], before: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    earlier = dict(before)
    return [(bound, count - earlier.get(bound, 0.0)) for bound, count in after]


def histogram_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket."""
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return buckets[-1][0]


# -- statistics and output ---------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds of latencies given in seconds."""
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 2),
        "p95_ms": round(percentile(values, 95) * 1000, 2),
        "p99_ms": round(percentile(values, 99) * 1000, 2),
        "max_ms": round(max(values) * 1000, 2) if values else math.nan,
    }


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            if math.isnan(value):
                return "-"
            return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def git_state() -> tuple[str, list[str]]:
    """The HEAD commit, and the service files (app/, workers/) changed but not committed."""
    commit = "?"
    dirty: list[str] = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=False, cwd=ROOT, timeout=5,
        ).stdout.strip()  # fmt: skip
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "app", "workers"],
            capture_output=True, text=True, check=False, cwd=ROOT, timeout=5,
        ).stdout  # fmt: skip
        dirty = [line[3:] for line in status.splitlines()]
    return commit, dirty


GIT_AT_START = git_state()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def machine() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    redis_version = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        redis_version = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=False, timeout=5
        ).stdout.strip()
    commit, dirty = git_state()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "redis_server": redis_version,
        # The service's code when the benchmark started (its processes loaded that one)...
        "git_commit": GIT_AT_START[0],
        "git_uncommitted": GIT_AT_START[1],
        # ...and when it ended (others may commit meanwhile).
        "git_commit_at_end": commit,
        "git_uncommitted_at_end": dirty,
        "packages": {
            name: _version(name)
            for name in (
                "starlette",
                "uvicorn",
                "httpx",
                "arq",
                "redis",
                "hiredis",
                "orjson",
                "scim2-server",
                "prometheus-client",
                "cryptography",
            )
        },
    }


def write_results(name: str, data: Mapping[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {"benchmark": name, "date": stamp, "machine": machine(), **data}
    path = RESULTS / f"{name}-{stamp}.json"
    blob = json.dumps(document, indent=2, default=str)
    path.write_text(blob)
    (RESULTS / f"{name}-latest.json").write_text(blob)
    print(f"\nresults: {path.relative_to(ROOT)}")
    return path


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


@contextlib.contextmanager
def cpu_meter(procs: Mapping[str, Proc]) -> Iterator[dict[str, float]]:
    """CPU seconds each process used inside the block, and the wall time."""
    before = {name: proc.cpu_seconds() for name, proc in procs.items()}
    started = time.perf_counter()
    used: dict[str, float] = {}
    try:
        yield used
    finally:
        used["wall_s"] = time.perf_counter() - started
        for name, proc in procs.items():
            used[f"{name}_cpu_s"] = round(proc.cpu_seconds() - before[name], 2)


# -- profiles -----------------------------------------------------------------------------------


def start_profile(stack: Stack, proc: Proc, seconds: float, label: str) -> tuple[Proc, Path] | None:
    """py-spy on a running process for `seconds`, collapsed stacks to bench/results/.

    None when py-spy is not installed (`.venv/bin/pip install py-spy`).
    """
    spy = BIN / "py-spy"
    if not spy.exists():
        log("py-spy not installed: no profile (.venv/bin/pip install py-spy)")
        return None
    out = RESULTS / f"profile-{label}.txt"
    argv = [
        str(spy),
        "record",
        "--pid",
        str(proc.pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        "100",
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    return stack.start(f"pyspy-{label}", argv, wait=False), out


def finish_profile(started: tuple[Proc, Path] | None, top: int = 25) -> dict[str, Any] | None:
    """Wait for py-spy, then the functions with the most samples (inclusive and self)."""
    if started is None:
        return None
    proc, out = started
    try:
        proc.popen.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.stop()
    if not out.exists():
        return {"file": str(out), "error": "py-spy wrote nothing: see its log"}
    return summarise_collapsed(out, top)


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)".
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path, _, _line = where.rpartition(":")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def summarise_collapsed(path: Path, top: int = 25) -> dict[str, Any]:
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";")]
        total += count
        leaf = frames[-1]
        if leaf.startswith(("select (", "poll (", "epoll", "_run_once")) or "selectors.py" in leaf:
            idle += count
        own[leaf] = own.get(leaf, 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count

    def ranked(table: dict[str, int], limit: int = top) -> list[tuple[str, float]]:
        best = sorted(table.items(), key=lambda item: -item[1])[:limit]
        return [(name, round(100 * n / max(1, total), 1)) for name, n in best]

    ours = {
        name: n
        for name, n in inclusive.items()
        if "(app/" in name or "(workers/" in name or "(bench/" in name
    }
    return {
        "file": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
        "samples": total,
        "idle_pct": round(100 * idle / max(1, total), 1),
        "inclusive_pct": ranked(inclusive),
        "project_inclusive_pct": ranked(ours, 40),
        "self_pct": ranked(own),
    }


async def redis_commands(url: str) -> dict[str, int]:
    """Calls per command since the server started (INFO commandstats)."""
    client = redis_client(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if isinstance(value, dict)
    }


def command_delta(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    delta = {name: calls - before.get(name, 0) for name, calls in after.items()}
    return {name: calls for name, calls in sorted(delta.items()) if calls > 0}


def redis_client(url: str) -> aioredis.Redis:
    return aioredis.Redis(connection_pool=aioredis.ConnectionPool.from_url(url))
