"""What /proc tells about a child: CPU time and memory, for the benchmarks (Linux)."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from stack.processes import Child

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(child: Child) -> float:
    """User + system CPU time of the process so far (threads included); NaN once it is gone."""
    try:
        fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _status_kb(child: Child, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{child.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rss_mb(child: Child) -> float:
    return _status_kb(child, "VmRSS") / 1024


def peak_rss_mb(child: Child) -> float:
    """VmHWM: the peak resident set since start or since `reset_peak`."""
    return _status_kb(child, "VmHWM") / 1024


def reset_peak(child: Child) -> bool:
    """Reset VmHWM to the current RSS (write 5 to clear_refs); False if refused."""
    try:
        Path(f"/proc/{child.pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@contextlib.contextmanager
def cpu_meter(children: Mapping[str, Child]) -> Iterator[dict[str, float]]:
    """CPU seconds each child used inside the block (`<name>_cpu_s`), and the wall time."""
    before = {name: cpu_seconds(child) for name, child in children.items()}
    started = time.perf_counter()
    used: dict[str, float] = {}
    try:
        yield used
    finally:
        used["wall_s"] = time.perf_counter() - started
        for name, child in children.items():
            used[f"{name}_cpu_s"] = round(cpu_seconds(child) - before[name], 2)
