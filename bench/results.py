"""Statistics, tables and the JSON result files every benchmark writes (bench/results/)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from stack.procfile import ROOT

RESULTS = ROOT / "bench" / "results"
LOGS = RESULTS / "logs"


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
