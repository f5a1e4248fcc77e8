"""The machinery under `scripts/demo.py`: child processes, waiting, printing, and typed views of
the Lucca simulator (its control API) and of Elevo (SCIM) for the demo's story to use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import secrets
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
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from app.clients.elevo import ElevoClient
from app.core import scim
from app.core.errors import InvalidLuccaUser
from app.core.lucca_user import LuccaUser, parse_user
from app.core.profile import ElevoProfile
from app.core.rules import Standing, standing_of
from simulators.consistency import Report, check

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent  # not resolved: the venv's bin, not the base Python's
TENANT = "acme"
OWNER_KEY = "demo:owner"  # held while a demo runs: two demos must not share a database
_VAR = re.compile(r"\$\{?([A-Z_][A-Z0-9_]*)\}?")

Check = Callable[[ElevoProfile], bool]
Probe = Callable[[], Awaitable[bool]]


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def procfile_command(kind: str, env: Mapping[str, str]) -> list[str]:
    """The Procfile's `kind:` line as argv, `$VARS` taken from `env`, run from the venv."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == kind:
            argv = [_VAR.sub(lambda m: env[m[1]], word) for word in shlex.split(command)]
            return [str(VENV_BIN / argv[0]), *argv[1:]]
    raise DemoError(f"the Procfile has no {kind}: line")


# -- child processes --------------------------------------------------------------------------


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
    """Every process the demo starts, and their stop, together."""

    log_dir: Path
    started: list[Child] = field(default_factory=list)
    _logs: list[IO[bytes]] = field(default_factory=list)
    _markers: dict[str, str] = field(default_factory=dict)

    @property
    def pid_file(self) -> Path:
        return self.log_dir.parent / "pids.json"

    def start(self, name: str, argv: list[str], env: Mapping[str, str], url: str) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("wb")
        self._logs.append(log)
        # A session of its own: Ctrl-C reaches the demo alone, which stops them in order.
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(Child(name, process, log_path, url))
        # What stop_leftovers needs to recognise them, should this demo die without cleaning up.
        self._markers[str(process.pid)] = " ".join(argv[:2])
        self.pid_file.write_text(json.dumps({"owner": os.getpid(), "children": self._markers}))
        return self.started[-1]

    def check_alive(self) -> None:
        for child in self.started:
            code = child.process.poll()
            if code is not None:
                raise DemoError(
                    f"{child.name} exited ({code}); the end of {child.log}:\n{child.tail()}"
                )

    def stop_all(self, wait: float = 15.0) -> None:
        """SIGTERM to every child at once, SIGKILL to those still up after `wait` seconds."""
        # A second Ctrl-C must not cut the stop short and leave some running.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for child in self.started:
                if child.process.poll() is None:
                    child.process.terminate()
            deadline = time.monotonic() + wait
            for child in self.started:
                try:
                    child.process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    child.process.wait()
            if self.started:  # else the pid file is another demo's, or none
                self.pid_file.unlink(missing_ok=True)
            self.started.clear()
            self._markers.clear()
            for log in self._logs:
                log.close()
            self._logs.clear()
        finally:
            signal.signal(signal.SIGINT, previous)

    def stop_leftovers(self) -> int:
        """Stop what an earlier demo left running (killed before it could clean up).

        Refuses while that demo is still alive: two demos of one checkout would share logs.
        """
        try:
            recorded = json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return 0
        owner = recorded.get("owner")
        if owner and f"{owner}" != str(os.getpid()) and "demo.py" in _cmdline(owner):
            raise DemoError(f"another demo (pid {owner}) runs from this checkout: wait for it")
        stopped = 0
        for pid, marker in recorded.get("children", {}).items():
            if marker in _cmdline(pid):  # still ours, not a reused pid
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(int(pid), signal.SIGTERM)
                    stopped += 1
        if stopped:
            time.sleep(1)
        self.pid_file.unlink(missing_ok=True)
        return stopped


def _cmdline(pid: object) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


async def wait_until(
    probe: Probe, what: str, *, within: float, every: float = 0.05, children: Children | None = None
) -> float:
    """Poll `probe` until it holds; the seconds that took. DemoError after `within` seconds."""
    start = time.monotonic()
    while True:
        with contextlib.suppress(httpx.HTTPError, OSError):
            if await probe():
                return time.monotonic() - start
        if children is not None:
            children.check_alive()
        if time.monotonic() - start > within:
            raise DemoError(f"{what}: not within {within:.0f}s")
        await asyncio.sleep(every)


# -- the stack ----------------------------------------------------------------------------------


@dataclass
class Stack:
    """The running pieces, their addresses and the credentials that tie them together."""

    http: httpx.AsyncClient
    children: Children
    redis_url: str
    redis: aioredis.Redis = field(init=False)
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    api_key: str = field(default_factory=lambda: f"lucca-{secrets.token_hex(12)}")
    scim_token: str = field(default_factory=lambda: f"elevo-{secrets.token_hex(12)}")
    webhook_secret: str = field(default_factory=lambda: f"whsec-{secrets.token_hex(16)}")
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.redis = aioredis.Redis.from_url(self.redis_url)
        self._heartbeat: asyncio.Task[None] | None = None

    async def claim_redis(self) -> None:
        """Empty the demo's database, unless another demo is using it right now."""
        owner = await self.redis.get(OWNER_KEY)
        if owner is not None:
            raise DemoError(
                f"another demo (pid {owner.decode()}) is using {self.redis_url}: wait for it,"
                " or give this one another database (DEMO_REDIS_DB)"
            )
        await self.redis.flushdb()

        async def beat() -> None:
            while True:
                await self.redis.set(OWNER_KEY, os.getpid(), ex=30)
                await asyncio.sleep(10)

        self._heartbeat = asyncio.create_task(beat())

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            await self.redis.delete(OWNER_KEY)
        await self.redis.aclose()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def scim_url(self) -> str:
        return f"{self.url('elevo')}/{TENANT}/v2"

    async def start(self, size: int, seed: int) -> None:
        """Empty the demo's Redis database, start the four processes, wait until they answer."""
        await self.claim_redis()
        self.ports = {name: free_port() for name in ("lucca", "elevo", "web", "metrics")}
        base = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        company = f"{TENANT}:{size}:{seed}:{self.api_key}"
        lucca = [sys.executable, "-m", "simulators.lucca", "--port", str(self.ports["lucca"])]
        lucca += ["--company", company, "--rate-limit", "50"]
        self.children.start("lucca", lucca, base, self.url("lucca"))
        contracts = ROOT / "contracts" / "elevo"
        scim = [str(VENV_BIN / "scim2-server"), "--bearer-token", self.scim_token]
        scim += ["--schema", str(contracts / "schemas.json"), "--dynamic-tenants"]
        scim += ["--resource-type", str(contracts / "resource-types.json")]
        self.children.start(
            "elevo", [*scim, "--port", str(self.ports["elevo"])], base, self.url("elevo")
        )
        env = base | {
            "REDIS_URL": self.redis_url,
            "ADMIN_TOKEN": self.admin_token,
            "SECRETS_KEY": Fernet.generate_key().decode(),
            "LUCCA_URL_TEMPLATE": f"{self.url('lucca')}/{{subdomain}}",
            "ALLOW_HTTP_ELEVO": "true",
            "PORT": str(self.ports["web"]),
            "WORKER_METRICS_PORT": str(self.ports["metrics"]),
            "LOG_LEVEL": "WARNING",
        }
        self.children.start("web", procfile_command("web", env), env, self.url("web"))
        self.children.start("worker", procfile_command("worker", env), env, self.url("metrics"))

    def readiness(self) -> dict[str, Probe]:
        """How each child shows it is ready (the worker: ARQ's health-check key)."""

        async def answers(url: str, token: str | None = None) -> bool:
            headers = {"Authorization": f"Bearer {token}"} if token else None
            return (await self.http.get(url, headers=headers)).status_code == 200

        async def worker() -> bool:
            return bool(await self.redis.exists("arq:queue:health-check"))

        return {
            "lucca": lambda: answers(f"{self.url('lucca')}/_control/{TENANT}"),
            "elevo": lambda: answers(f"{self.scim_url}/Users?count=1", self.scim_token),
            "web": lambda: answers(f"{self.url('web')}/readyz"),
            "worker": worker,
        }

    async def run(
        self,
        run_id: str,
        *,
        within: float,
        progress: Callable[[str], None] = lambda _: None,
        strict: bool = True,
    ) -> dict[str, Any]:
        """Poll `GET /sync/{tenant}/runs/{id}` until the run has ended; its record.

        After `within` seconds: DemoError, or the record as it stands when not `strict`.
        """
        url = f"{self.url('web')}/sync/{TENANT}/runs/{run_id}"
        deadline = time.monotonic() + within
        while True:
            run: dict[str, Any] = (await self.http.get(url, headers=self.admin)).json()
            if run.get("state") in {"done", "failed", "held"} or (
                not strict and time.monotonic() > deadline
            ):
                return run
            if time.monotonic() > deadline:
                raise DemoError(f"run {run_id} still {run.get('state')} after {within:.0f}s")
            self.children.check_alive()
            progress(
                f"  run {run_id}: {run.get('state')}, {run.get('processed', 0)} users processed"
            )
            await asyncio.sleep(0.2)

    async def keep(self, say: Callable[[str], None]) -> None:
        """Keep the services up until Ctrl-C (or one of them exits), saying how to reach them."""
        say("\nThe services keep running (--keep) until Ctrl-C:")
        for child in self.children.started:
            say(f"  {child.name:<7} {child.url}")
        say(f"  ADMIN_TOKEN={self.admin_token}  (status: GET {self.url('web')}/sync/{TENANT})")
        say(f"  Elevo token {self.scim_token}  (profiles: GET {self.scim_url}/Users)")
        while True:
            self.children.check_alive()
            await asyncio.sleep(1)

    async def metric(self, name: str) -> float:
        """The sum of one worker metric over its labels (Prometheus text format)."""
        text = (await self.http.get(f"{self.url('metrics')}/metrics")).text
        pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", re.MULTILINE)
        return sum(float(value) for value in pattern.findall(text))


# -- printing ---------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * int(q) // 100) - 1)]


class Out:
    """The demo's voice: phase headers, one line per step, a transient progress line."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stdout.isatty()
        self._transient = False

    def header(self, title: str) -> None:
        self.line(f"\n== {title}")

    def line(self, text: str, *, always: bool = False) -> None:
        if always or not self.quiet:
            self._clear()
            print(text, flush=True)

    def progress(self, text: str) -> None:
        """A line the next one replaces (on a terminal only)."""
        if self.tty and not self.quiet:
            sys.stdout.write(f"\r\033[K{text}")
            sys.stdout.flush()
            self._transient = True

    def _clear(self) -> None:
        if self._transient:
            sys.stdout.write("\r\033[K")
            self._transient = False


# -- Lucca and Elevo, as the story sees them ----------------------------------------------------


class LuccaControl:
    """The simulator's control API for one company (simulators/lucca/control.py)."""

    def __init__(self, http: httpx.AsyncClient, base: str) -> None:
        self._http = http
        self._base = f"{base}/_control/{TENANT}"

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


async def all_profiles(elevo: ElevoClient) -> list[ElevoProfile]:
    found: list[ElevoProfile] = []
    while True:
        page = await elevo.list_page(start_index=len(found) + 1, count=1000)
        found.extend(page.profiles)
        if not page.profiles or len(found) >= page.total:
            return found


async def consistency(
    lucca: LuccaControl, elevo: ElevoClient, skip_field: str, custom_fields: Mapping[str, str]
) -> tuple[Report, int]:
    """simulators.consistency over the whole Lucca dump and every Elevo profile."""
    dump = await lucca.dump()
    profiles = await all_profiles(elevo)
    today = date.fromisoformat(dump["today"])
    found = check(
        dump["users"], profiles, skip_field=skip_field, custom_fields=custom_fields, today=today
    )
    return found, len(profiles)


def counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{action} {n}" for action, n in sorted(counts.items(), key=lambda i: -i[1]))


def field_is(path: str, value: str) -> Check:
    def holds(profile: ElevoProfile) -> bool:
        return bool(profile.attributes.get(path) == value)

    return holds


def managed_active(profile: ElevoProfile) -> bool:
    return profile.managed and profile.active


def suspended(profile: ElevoProfile) -> bool:
    return profile.managed and not profile.active


def released(profile: ElevoProfile) -> bool:
    return not profile.managed and profile.active


@dataclass
class Directory:
    """A Lucca dump read through the sync's own rules, to pick whom the story changes."""

    dump: dict[str, Any]
    skip_field: str
    managed: set[str]  # Lucca ids with an active profile the sync manages
    taken: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.today = date.fromisoformat(self.dump["today"])
        self.items = {str(item["id"]): item for item in self.dump["users"]}
        self.departments = {str(d["id"]): str(d["name"]) for d in self.dump["departments"]}
        self.users: dict[str, LuccaUser] = {}
        self.standing: dict[str, Standing] = {}
        self.reports: dict[str, list[str]] = {}
        for uid, item in self.items.items():
            with contextlib.suppress(InvalidLuccaUser):
                user = self.users[uid] = parse_user(item)
                self.standing[uid] = standing_of(user, skip_field=self.skip_field, today=self.today)
                if user.manager_id:
                    self.reports.setdefault(user.manager_id, []).append(uid)
        names = [(u.user_name or "").casefold() for u in self.users.values()]
        self._shared = {name for name in names if names.count(name) > 1}

    def name(self, uid: str) -> str:
        user = self.users[uid]
        return f"{user.first_name} {user.last_name}"

    def unique_name(self, uid: str) -> bool:
        return (
            bool(self.users[uid].user_name)
            and (self.users[uid].user_name or "").casefold() not in self._shared
        )

    def synced(self, uid: str) -> bool:
        """Active, started, with a managed profile: a plain employee to change."""
        start = self.users[uid].contract_start
        started = start is not None and start <= self.today
        return self.standing.get(uid) is Standing.ACTIVE and uid in self.managed and started

    def leaf(self, uid: str) -> bool:
        """A synced employee who manages nobody and shares no mailbox."""
        return self.synced(uid) and not self.reports.get(uid) and self.unique_name(uid)

    def excluded_active(self, uid: str) -> bool:
        end = self.users[uid].contract_end
        excluded = self.standing.get(uid) is Standing.EXCLUDED
        return excluded and (end is None or end >= self.today) and self.unique_name(uid)

    def former(self, uid: str) -> bool:
        left = self.standing.get(uid) is Standing.LEFT
        return left and uid not in self.managed and self.unique_name(uid)

    def pick(self, rng: random.Random, want: Callable[[str], bool], fallback: str = "") -> str:
        """A user no other change took, for whom `want` holds; else `fallback`."""
        found = [u for u in sorted(self.users, key=int) if u not in self.taken and want(u)]
        if not found and not fallback:
            raise DemoError("the company is too small for the demo's story: try a larger --size")
        uid = rng.choice(found) if found else fallback
        self.taken.add(uid)
        return uid

    def members(self, dept_id: str) -> list[str]:
        return [uid for uid, u in self.users.items() if u.department_id == dept_id]

    def fresh_mail(self, first: str, last: str) -> str:
        taken = {(u.mail or "").casefold() for u in self.users.values()}
        local = f"{_slug(first)}.{_slug(last)}"
        candidates = (f"{local}{n if n > 1 else ''}@{TENANT}.example" for n in range(1, 100))
        return next(m for m in candidates if m not in taken)


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in ascii_text.lower() if c.isalnum() or c == "-")


class ElevoWatch:
    """Probes that hold once Elevo shows something: what the demo times."""

    def __init__(self, elevo: ElevoClient, directory: Directory) -> None:
        self.elevo, self.dir = elevo, directory

    def shows(self, uid: str, want: Check) -> Probe:
        async def probe() -> bool:
            found = await self.elevo.find_by_external_id(uid)
            return found is not None and want(found)

        return probe

    def reports_to(self, uid: str, manager: str) -> Probe:
        """Managed, active, and its manager is the manager's own profile."""

        async def probe() -> bool:
            found = await self.elevo.find_by_external_id(uid)
            boss = await self.elevo.find_by_external_id(manager)
            if found is None or boss is None:
                return False
            return managed_active(found) and found.attributes[scim.MANAGER] == boss.id

        return probe

    def department_shows(self, dept_id: str, name: str) -> Probe:
        """Every managed profile of the department's members shows its new name."""

        async def probe() -> bool:
            members = set(self.dir.members(dept_id))
            profiles = [p for p in await all_profiles(self.elevo) if p.external_id in members]
            held = [p for p in profiles if p.managed]
            return bool(held) and all(p.attributes[scim.DEPARTMENT] == name for p in held)

        return probe
