"""py-spy profiles of a running process, summarised by function."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from bench.common import log
from bench.results import RESULTS
from stack.processes import Child
from stack.procfile import ROOT, VENV_BIN, child_env
from stack.services import Stack


def start_profile(
    stack: Stack, proc: Child, seconds: float, label: str, rate: int = 100
) -> tuple[Child, Path] | None:
    """py-spy on a running process for `seconds`, `rate` samples a second, collapsed stacks to
    bench/results/.

    None when py-spy is not installed (`.venv/bin/pip install py-spy`).
    """
    spy = VENV_BIN / "py-spy"
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
        str(rate),
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    return stack.sup.start(f"pyspy-{label}", argv, child_env(), one_shot=True), out


def finish_profile(started: tuple[Child, Path] | None, top: int = 25) -> dict[str, Any] | None:
    """Wait for py-spy, then the functions with the most samples (inclusive and self)."""
    if started is None:
        return None
    proc, out = started
    try:
        proc.popen.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.popen.terminate()
        proc.popen.wait(timeout=10)
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
