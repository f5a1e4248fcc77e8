"""The demo's stack (see `stack/`): the four processes on an own Redis database, their
readiness, runs, and cleaning up after an earlier demo that was killed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from demo_support import TENANT, DemoError

from stack.ports import Probe, wait_until
from stack.processes import Child
from stack.procfile import ROOT
from stack.service_api import ServiceApi
from stack.services import Credentials, Stack, service_env

OWNER_KEY = "demo:owner"  # held while a demo runs: two demos must not share a database

# -- what an earlier demo left running ----------------------------------------------------------


@dataclass
class PidFile:
    """The demo's children by pid, so that a demo killed before it could clean up is cleaned
    up by the next one."""

    path: Path

    def record(self, children: list[Child]) -> None:
        markers = {str(c.pid): " ".join(c.argv[:2]) for c in children if c.process is not None}
        self.path.write_text(json.dumps({"owner": os.getpid(), "children": markers}))

    def stop_leftovers(self) -> int:
        """Stop what an earlier demo left running (killed before it could clean up).

        Refuses while that demo is still alive: two demos of one checkout would share logs.
        """
        try:
            recorded = json.loads(self.path.read_text())
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
        self.path.unlink(missing_ok=True)
        return stopped


def _cmdline(pid: object) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def stop_all(stack: Stack, pid_file: PidFile, wait: float = 15.0) -> None:
    """Stop every child, a second Ctrl-C notwithstanding (it must not leave some running)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if stack.sup.children:  # else the pid file is another demo's, or none
            stack.sup.stop_all(wait)
            pid_file.path.unlink(missing_ok=True)
    finally:
        signal.signal(signal.SIGINT, previous)


# -- the stack ----------------------------------------------------------------------------------


@dataclass
class DemoStack:
    """The running pieces, their addresses and the credentials that tie them together."""

    http: httpx.AsyncClient
    stack: Stack
    pid_file: PidFile
    redis_url: str
    redis: aioredis.Redis = field(init=False)
    creds: Credentials = field(default_factory=Credentials)
    pieces: dict[str, Child] = field(default_factory=dict)

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
        return self.pieces[name].url

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.creds.admin_token}"}

    @property
    def api(self) -> ServiceApi:
        return ServiceApi(self.http, self.url("web"), self.creds.admin_token)

    @property
    def scim_url(self) -> str:
        return f"{self.url('elevo')}/{TENANT}/v2"

    def check_alive(self) -> None:
        self.stack.sup.check()

    async def start(self, size: int, seed: int, say: Callable[[str], None]) -> None:
        """Empty the demo's Redis database, start the four processes, wait until they answer."""
        await self.claim_redis()
        company = f"{TENANT}:{size}:{seed}:{self.creds.lucca_api_key}"
        await self._start(
            "lucca", partial(self.stack.lucca, companies=[company], rate_limit=50), say
        )
        scim_token = self.creds.scim_token
        await self._start(
            "elevo", partial(self.stack.elevo, "scim2", token=scim_token, name="elevo"), say
        )
        env = service_env(
            redis_url=self.redis_url,
            lucca_url=self.url("lucca"),
            admin_token=self.creds.admin_token,
            LOG_LEVEL="WARNING",
        )
        await self._start("web", partial(self.stack.web, env), say)
        await self._start("worker", partial(self.stack.worker, env), say)

    async def _start(
        self, name: str, start: Callable[[], Child], say: Callable[[str], None]
    ) -> None:
        began = time.monotonic()
        self.pieces[name] = child = start()
        self.pid_file.record(list(self.stack.sup.children.values()))
        await wait_until(self.readiness()[name], f"{name} answers", check=self.check_alive)
        took = time.monotonic() - began
        log = child.log.relative_to(ROOT) if child.log.is_relative_to(ROOT) else child.log
        say(f"  {name:<7} {child.url:<24} ready in {took:3.1f}s  log: {log}")

    def readiness(self) -> dict[str, Probe]:
        """How each child shows it is ready (the worker: ARQ's health-check key)."""

        async def answers(url: str, token: str | None = None) -> bool:
            headers = {"Authorization": f"Bearer {token}"} if token else None
            return (await self.http.get(url, headers=headers)).status_code == 200

        async def worker() -> bool:
            return bool(await self.redis.exists("arq:queue:health-check"))

        return {
            "lucca": lambda: answers(f"{self.url('lucca')}/_control/{TENANT}"),
            "elevo": lambda: answers(f"{self.scim_url}/Users?count=1", self.creds.scim_token),
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
        """Poll the run until it has ended; its record.

        After `within` seconds: StackError, or the record as it stands when not `strict`.
        """

        def show(run: dict[str, Any]) -> None:
            processed = run.get("processed", 0)
            progress(f"  run {run_id}: {run.get('state')}, {processed} users processed")

        return await self.api.wait_run(
            TENANT, run_id, within=within, strict=strict, poll=0.2,
            check=self.check_alive, progress=show,
        )  # fmt: skip

    async def keep(self, say: Callable[[str], None]) -> None:
        """Keep the services up until Ctrl-C (or one of them exits), saying how to reach them."""
        say("\nThe services keep running (--keep) until Ctrl-C:")
        for name, child in self.pieces.items():
            say(f"  {name:<7} {child.url}")
        token = self.creds.admin_token
        say(f"  ADMIN_TOKEN={token}  (status: GET {self.url('web')}/sync/{TENANT})")
        say(f"  Elevo token {self.creds.scim_token}  (profiles: GET {self.scim_url}/Users)")
        while True:
            self.check_alive()
            await asyncio.sleep(1)

    async def metric(self, name: str) -> float:
        """The sum of one worker metric over its labels (Prometheus text format)."""
        text = (await self.http.get(f"{self.url('worker')}/metrics")).text
        pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", re.MULTILINE)
        return sum(float(value) for value in pattern.findall(text))
