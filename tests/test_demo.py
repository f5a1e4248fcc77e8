"""The README's first command, in a reduced mode: a small company, the summary only.

The demo starts its own processes (the Procfile's lines), plays its ~20 changes and exits 0 only
when Elevo holds what the sync rules say Lucca implies. It empties its Redis database first, so
it gets one of its own (not the tests' database, which other test sessions may be using), and
its logs go to the test's temporary directory (not `.demo/`, where a live demo may be running).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from stack.procfile import ROOT
from tests.conftest import TEST_REDIS_URL

pytestmark = pytest.mark.e2e

_TEST_URL = urlsplit(TEST_REDIS_URL)
TEST_DB = int(_TEST_URL.path.strip("/") or 0)
DEMO_DB = int(os.environ.get("DEMO_TEST_REDIS_DB", "6"))
DEMO_REDIS_URL = urlunsplit(_TEST_URL._replace(path=f"/{DEMO_DB}"))


def test_the_demo_ends_consistent(tmp_path: Path) -> None:
    assert DEMO_DB != TEST_DB
    argv = [
        sys.executable,
        "scripts/demo.py",
        "--size",
        "40",
        "--quiet",
        "--run-dir",
        str(tmp_path),
    ]
    demo = subprocess.Popen(  # noqa: S603 - the project's own script
        [*argv, "--redis-url", DEMO_REDIS_URL],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = demo.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        demo.terminate()  # SIGTERM: the demo stops the processes it started
        output, _ = demo.communicate(timeout=30)
    assert demo.returncode == 0, output
    assert "mismatches: 0" in output
    assert "20 played" in output
