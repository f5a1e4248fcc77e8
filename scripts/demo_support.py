"""Helpers of `scripts/demo.py`: child processes, waiting, printing, the simulator's control API.

Nothing here knows the story the demo tells; `demo.py` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

import httpx

from app.core.lucca_user import LuccaUser, parse_user
from app.core.rules import Standing, standing_of
from app.errors import InvalidLuccaUser

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
_VAR = re.compile(r"\$\{?([A-Z_][A-Z0-9_]*)\}?")


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why, in one sentence."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def procfile_command(kind: str, env: Mapping[str, str]) -> list[str]:
    """The Procfile's `kind:` line as argv, `$VARS` taken from `env`, the venv's executable."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == kind:
            argv = [_VAR.sub(lambda m: env[m[1]], word) for word in shlex.split(command)]
            argv[0] = str(VENV_BIN / argv[0])
            return argv
    raise DemoError(f"the Procfile has no {kind}: line")


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\n".join(f"    {line}" for line in text)


@dataclass
class Children:
    """Every process the demo starts, stopped together (last started, first stopped)."""

    log_dir: Path
    started: list[Child] = field(default_factory=list)
    _logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def pid_file(self) -> Path:
        return self.log_dir.parent / "pids.json"

    def start(self, name: str, argv: list[str], env: Mapping[str, str], url: str) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("wb")
        self._logs.append(log)
        # A session of its own: Ctrl-C reaches the demo only, which stops them in order.
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child = Child(name, process, log_path, url)
        self.started.append(child)
        self._write_pids()
        return child

    def check_alive(self) -> None:
        for child in self.started:
            code = child.process.poll()
            if code is not None:
                raise DemoError(
                    f"{child.name} exited with status {code}; its log ({child.log}):\n"
                    + child.tail()
                )

    def stop_all(self, timeout: float = 10.0) -> None:
        for child in reversed(self.started):
            if child.process.poll() is None:
                child.process.terminate()
                try:
                    child.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    child.process.wait(timeout)
        self.started.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
        self.pid_file.unlink(missing_ok=True)

    def stop_leftovers(self) -> int:
        """Stop what an earlier demo left behind (killed before it could clean up)."""
        try:
            recorded: dict[str, str] = json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return 0
        stopped = 0
        for pid_text, marker in recorded.items():
            pid = int(pid_text)
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline:  # the pid was not reused by something else
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGTERM)
                    stopped += 1
        time.sleep(0.5 if stopped else 0)
        self.pid_file.unlink(missing_ok=True)
        return stopped

    def _write_pids(self) -> None:
        pids = {str(c.process.pid): _marker(c.process) for c in self.started}
        self.pid_file.write_text(json.dumps(pids))


def _marker(process: subprocess.Popen[bytes]) -> str:
    args = process.args
    return " ".join(str(a) for a in args[:2]) if isinstance(args, list) else str(args)


async def wait_until(
    probe: Callable[[], Awaitable[bool]],
    what: str,
    *,
    timeout: float,
    interval: float = 0.05,
    children: Children | None = None,
) -> float:
    """Poll `probe` until it holds; the seconds it took. Raises DemoError after `timeout`."""
    start = time.monotonic()
    while True:
        try:
            if await probe():
                return time.monotonic() - start
        except (httpx.HTTPError, OSError):
            pass  # not answering yet
        if children is not None:
            children.check_alive()
        if time.monotonic() - start > timeout:
            raise DemoError(f"{what}: not within {timeout:.0f}s")
        await asyncio.sleep(interval)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


class Out:
    """The demo's voice: phase headers, one line per step, a transient progress line."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stdout.isatty()
        self._transient = False

    def header(self, title: str) -> None:
        if not self.quiet:
            self._clear()
            print(f"\n== {title}", flush=True)

    def line(self, text: str, *, always: bool = False) -> None:
        if always or not self.quiet:
            self._clear()
            print(text, flush=True)

    def progress(self, text: str) -> None:
        """A line that the next one replaces (on a terminal only)."""
        if self.tty and not self.quiet:
            sys.stdout.write(f"\r\033[K{text}")
            sys.stdout.flush()
            self._transient = True

    def _clear(self) -> None:
        if self._transient:
            sys.stdout.write("\r\033[K")
            self._transient = False


class LuccaControl:
    """The simulator's control API for one company (simulators/lucca/control.py)."""

    def __init__(self, http: httpx.AsyncClient, base: str, subdomain: str) -> None:
        self._http = http
        self._base = f"{base}/_control/{subdomain}"

    async def mutate(self, op: str, **arguments: Any) -> list[dict[str, Any]]:
        response = await self._http.post(f"{self._base}/mutations", json={"op": op, **arguments})
        if response.status_code != 200:
            raise DemoError(f"the simulator refused {op}: {response.status_code} {response.text}")
        events: list[dict[str, Any]] = response.json()["events"]
        return events

    async def dump(self) -> dict[str, Any]:
        return await self._get("users")

    async def counters(self) -> dict[str, Any]:
        return await self._get("counters")

    async def _get(self, resource: str) -> dict[str, Any]:
        response = await self._http.get(f"{self._base}/{resource}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


@dataclass
class Directory:
    """A Lucca dump read through the sync's own rules, for picking who the story changes."""

    dump: dict[str, Any]
    skip_field: str
    managed: set[str]  # Lucca ids with an active profile managed by the sync
    today: date = field(init=False)
    items: dict[str, dict[str, Any]] = field(init=False)
    users: dict[str, LuccaUser] = field(init=False)
    standing: dict[str, Standing] = field(init=False)
    reports: dict[str, list[str]] = field(init=False)
    taken: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.today = date.fromisoformat(self.dump["today"])
        self.items = {str(item["id"]): item for item in self.dump["users"]}
        self.users, self.standing, self.reports = {}, {}, {}
        for uid, item in self.items.items():
            with contextlib.suppress(InvalidLuccaUser):
                user = parse_user(item)
                self.users[uid] = user
                self.standing[uid] = standing_of(user, skip_field=self.skip_field, today=self.today)
                if user.manager_id:
                    self.reports.setdefault(user.manager_id, []).append(uid)
        names = [u.user_name.casefold() for u in self.users.values() if u.user_name]
        self._shared = {name for name in names if names.count(name) > 1}

    def name(self, uid: str) -> str:
        user = self.users[uid]
        return f"{user.first_name} {user.last_name}"

    def unique_name(self, uid: str) -> bool:
        user_name = self.users[uid].user_name
        return bool(user_name) and user_name.casefold() not in self._shared  # type: ignore[union-attr]

    def synced(self, uid: str) -> bool:
        """Active, started, with a managed profile: a plain employee to change."""
        user = self.users[uid]
        started = user.contract_start is not None and user.contract_start <= self.today
        return self.standing[uid] is Standing.ACTIVE and uid in self.managed and started

    def pick(self, rng: random.Random, want: Callable[[str], bool], fallback: str = "") -> str:
        """A user no other change took, for whom `want` holds; `fallback` when none."""
        found = [uid for uid in sorted(self.users, key=int) if uid not in self.taken and want(uid)]
        if not found:
            if fallback:
                return fallback
            raise DemoError("the company is too small for the demo's story; try a larger --size")
        uid = rng.choice(found)
        self.taken.add(uid)
        return uid

    def leaf(self, uid: str) -> bool:
        return self.synced(uid) and not self.reports.get(uid) and self.unique_name(uid)

    def departments(self) -> dict[str, str]:
        return {str(d["id"]): str(d["name"]) for d in self.dump["departments"]}

    def members(self, dept_id: str) -> list[str]:
        return [uid for uid, u in self.users.items() if u.department_id == dept_id]

    def fresh_mail(self, first: str, last: str, domain: str) -> str:
        taken = {(u.mail or "").casefold() for u in self.users.values()}
        local = f"{_slug(first)}.{_slug(last)}"
        for n in range(1, 100):
            mail = f"{local}{n if n > 1 else ''}@{domain}"
            if mail.casefold() not in taken:
                return mail
        raise DemoError(f"no free address for {first} {last}")


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in ascii_text.lower() if c.isalnum() or c == "-")
