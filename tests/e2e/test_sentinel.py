"""Redis without a single point of failure (docs/scaling.md): a primary, an asynchronous replica
and three sentinels on loopback, the web and worker processes reaching Redis through the
sentinels. Under webhook load the primary is killed (SIGKILL) half a second after its link to
the replica broke (the replica held still meanwhile, so that it cannot reconnect and catch up:
on loopback it is otherwise a millisecond behind, and a kill at a random moment rarely loses
anything). The sentinels promote the replica, the service follows, and one `changes` poll
brings Elevo back to Lucca. The test prints how many acknowledged (202) events the replica had
not received. `SENTINEL_LAG_SECONDS=0` kills the primary with its link intact instead."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from app.store import keys
from simulators.lucca.webhooks import WebhookSender
from stack.checks import ScimAccess, consistency
from stack.lucca_control import LuccaControl
from stack.ports import wait_until
from stack.processes import Child
from stack.service_api import ServiceApi
from stack.services import Credentials, Stack, service_env

MASTER = "sync"
TENANT = "sentinel"
EMPLOYEES = 60
SENDERS = 3  # webhooks in flight at once
# How long before the primary dies its replica's link breaks (0: the link is intact).
LAG_SECONDS = float(os.environ.get("SENTINEL_LAG_SECONDS", "0.5"))
# Lucca retries a refused delivery; sooner here, so that the test ends in time.
RETRY_DELAYS = (0.5, 1.0, 2.0, 3.0)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.no_cover,  # a wall-clock budget: coverage's tracing (scripts/test) would eat it
]


def say(line: str) -> None:
    """A figure of the run: shown with `pytest -s` (and on a failure)."""
    sys.stdout.write(f"{line}\n")


def _why_no_sentinel() -> str | None:
    if shutil.which("redis-sentinel") is None:
        return "redis-sentinel is not on PATH (apt-get install redis-sentinel; scripts/test does)"
    return None


@dataclass
class Topology:
    primary: Child
    replica: Child
    sentinels: list[Child]

    def sentinel_list(self) -> str:
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)


@dataclass
class Load:
    """Lucca's changes and their webhooks, sent side by side until told to stop."""

    lucca: LuccaControl
    sender: WebhookSender
    user_ids: list[int]
    acked: dict[str, float] = field(default_factory=dict)  # event id -> when it got its 202
    refused: list[str] = field(default_factory=list)  # every attempt failed
    retried: int = 0  # deliveries acknowledged after a refusal (503 while Redis was away)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        serial = itertools.count()
        await asyncio.gather(*(self._send(serial) for _ in range(SENDERS)))

    async def _send(self, serial: itertools.count[int]) -> None:
        while not self.stop.is_set():
            n = next(serial)
            user_id = self.user_ids[n % len(self.user_ids)]
            for event in await self.lucca.mutate("update", user_id=user_id, lastName=f"Load{n}"):
                delivery = await self.sender.send(event)
                if delivery.delivered:
                    self.acked[delivery.event_id] = time.monotonic()
                    self.retried += len(delivery.attempts) > 1
                else:
                    self.refused.append(delivery.event_id)

    async def acked_after(self, since: float, count: int, within: float) -> None:
        async def enough() -> bool:
            return sum(1 for at in self.acked.values() if at > since) >= count

        await wait_until(enough, f"{count} events acknowledged", within=within, every=0.05)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    reason = _why_no_sentinel()
    if reason is not None and os.environ.get("REQUIRE_SENTINEL"):
        pytest.fail(f"REQUIRE_SENTINEL is set but {reason}")
    if reason is not None:
        pytest.skip(reason)
    running = Stack(tmp_path / "logs")
    yield running
    await running.aclose()


async def start_topology(stack: Stack) -> Topology:
    primary = stack.redis(name="redis-primary")
    replica = stack.redis(name="redis-replica", replica_of=primary.port)
    direct = aioredis.Redis(port=replica.port)
    try:
        await wait_until(lambda: _replicating(direct), "the replica in sync", within=15)
    finally:
        await direct.aclose()
    sentinels = [
        stack.sentinel(primary.port, master=MASTER, name=f"sentinel-{n}") for n in (1, 2, 3)
    ]
    topology = Topology(primary, replica, sentinels)
    for child in sentinels:
        client = aioredis.Redis(port=child.port)
        try:
            await wait_until(lambda c=client: _sees_all(c), f"{child.name} ready", within=20)
        finally:
            await client.aclose()
    return topology


async def _replicating(replica: aioredis.Redis) -> bool:
    info = await replica.info("replication")
    return bool(info.get("master_link_status") == "up")


async def _sees_all(sentinel: aioredis.Redis) -> bool:
    """The sentinel knows the replica and both other sentinels: a failover can be agreed."""
    state = await sentinel.sentinel_master(MASTER)  # type: ignore[no-untyped-call]
    return bool(state["num-slaves"] == 1 and state["num-other-sentinels"] == 2)


async def cut_replica_link(stack: Stack, topology: Topology) -> None:
    """The replica stops (SIGSTOP: it cannot reconnect), then the primary drops its link: from
    now on the primary acknowledges writes that no replica receives."""
    stack.sup.kill("redis-replica", signal.SIGSTOP)
    primary = aioredis.Redis(port=topology.primary.port)
    try:
        command = ("CLIENT", "KILL", "TYPE", "replica")
        await primary.execute_command(*command)  # type: ignore[no-untyped-call]
    finally:
        await primary.aclose()


async def master_port(topology: Topology) -> int:
    client = aioredis.Redis(port=topology.sentinels[0].port)
    try:
        ask = client.sentinel_get_master_addr_by_name
        _, port = await ask(MASTER)  # type: ignore[no-untyped-call]
        return int(port)
    finally:
        await client.aclose()


def start_service(stack: Stack, topology: Topology, lucca: Child, creds: Credentials) -> None:
    env = service_env(
        # Only its database counts: the address comes from the sentinels.
        redis_url="redis://unused.invalid:1/0",
        lucca_url=lucca.url,
        admin_token=creds.admin_token,
        REDIS_SENTINELS=topology.sentinel_list(),
        REDIS_SENTINEL_MASTER=MASTER,
        USER_COOLDOWN_SECONDS="0.3",
        # A sync that was running when the primary died holds its employee's lock, in the
        # replica's copy, for this + 10 s: short, so that the repairing poll ends in time.
        SYNC_JOB_TIMEOUT_SECONDS="10",
        LUCCA_BUDGET_OVERRIDE="100000",
        WEBHOOK_EVENTS_PER_MINUTE="100000000",  # every event on its own path, with its mark
    )
    # restart=always: a worker whose Redis vanished under it exits, and its supervisor
    # starts it again, as in production.
    stack.web(env, restart=True)
    stack.worker(env, restart=True)


async def register(api: ServiceApi, creds: Credentials, scim: Child) -> None:
    await api.put_tenant(
        TENANT,
        {
            "lucca": {
                "subdomain": TENANT,
                "api_key": creds.lucca_api_key,
                "webhook_secret": creds.webhook_secret,
            },
            "elevo": {"scim_url": f"{scim.url}/{TENANT}/v2", "token": creds.scim_token},
        },
    )


async def run(api: ServiceApi, stack: Stack, body: dict[str, str], within: float) -> dict[str, Any]:
    run_id = await api.start_run(TENANT, body)
    return await api.wait_run(TENANT, run_id, within=within, check=stack.sup.check)


async def lost_marks(port: int, event_ids: list[str]) -> list[str]:
    """The acknowledged events whose dedupe mark (written with their jobs) the new primary
    lacks: the ones the replica had not received."""
    client = aioredis.Redis(port=port, db=0)
    try:
        present = [await client.exists(keys.event(TENANT, e)) for e in event_ids]
    finally:
        await client.aclose()
    return [e for e, found in zip(event_ids, present, strict=True) if not found]


@dataclass
class Outage:
    """What the primary's death cost: when the link broke and the primary died, how long the
    sentinels took, and which acknowledged events the new primary lacks."""

    acked_before_kill: dict[str, float]
    cut: float
    failover: float  # seconds from the kill until the sentinels name the replica
    ready: float  # ... until the web process's /readyz answers 200 again
    lost: list[str]

    def report(self, load: Load) -> str:
        in_lag = sum(1 for at in self.acked_before_kill.values() if at > self.cut)
        early = sum(1 for e in self.lost if self.acked_before_kill[e] <= self.cut)
        return (
            f"» primary killed {LAG_SECONDS}s after its replica's link broke (0: intact);"
            f" failover in {self.failover:.1f}s, the web process ready again {self.ready:.1f}s"
            f" after the kill. Events acknowledged: {len(load.acked)}, {load.retried} of them"
            f" after a refusal, {len(self.acked_before_kill)} before the kill ({in_lag} after"
            f" the link broke); refused for good: {len(load.refused)}. Acknowledged events the"
            f" replica had not received: {len(self.lost)} ({early} acknowledged before the"
            f" link broke)"
        )


async def kill_the_primary(stack: Stack, topology: Topology, load: Load, api: ServiceApi) -> Outage:
    """Under load: the replica's link breaks, the primary dies LAG_SECONDS later, the
    sentinels promote the replica, and the service acknowledges events again."""
    await load.acked_after(0, 30, within=20)
    cut = time.monotonic()
    if LAG_SECONDS:
        await cut_replica_link(stack, topology)
        await asyncio.sleep(LAG_SECONDS)
    stack.sup.kill("redis-primary", signal.SIGKILL, for_good=True)
    killed = time.monotonic()
    if LAG_SECONDS:
        stack.sup.kill("redis-replica", signal.SIGCONT)
    acked = dict(load.acked)

    async def promoted() -> bool:
        return await master_port(topology) == topology.replica.port

    async def ready() -> bool:
        return (await api.http.get(f"{api.web_url}/readyz")).status_code == 200

    failover, back = await asyncio.gather(
        wait_until(promoted, "the sentinels' failover", within=20),
        wait_until(ready, "the web process ready again", within=20, every=0.05),
    )
    # The service follows: events are acknowledged again, by the new primary.
    await load.acked_after(killed + failover, 10, within=20)
    lost = await lost_marks(topology.replica.port, list(acked))
    return Outage(acked, cut, failover, back, lost)


async def test_the_primary_dies_under_load_and_one_poll_repairs_what_the_replica_missed(
    stack: Stack,
) -> None:
    started = time.monotonic()
    creds = Credentials()
    topology = await start_topology(stack)
    lucca = stack.lucca(companies=[f"{TENANT}:{EMPLOYEES}:7:{creds.lucca_api_key}"])
    scim = stack.elevo("scim2", token=creds.scim_token, name="scim2-server")
    start_service(stack, topology, lucca, creds)
    stack.sup.watch()
    async with httpx.AsyncClient(timeout=10) as http:
        web = stack.sup.children["web"].url
        api = ServiceApi(http, web, creds.admin_token)
        await register(api, creds, scim)
        assert (await run(api, stack, {"mode": "full"}, within=60))["state"] == "done"
        # The watermark the repairing poll starts from, set before the load.
        assert (await run(api, stack, {"mode": "changes"}, within=30))["state"] == "done"
        lucca_control = LuccaControl(http, lucca.url, TENANT)
        users = [int(u["id"]) for u in (await lucca_control.dump())["users"]]
        url = f"{web}/webhooks/lucca/{TENANT}"
        sender = WebhookSender(http, url, creds.webhook_secret, retry_delays=RETRY_DELAYS)
        load = Load(lucca_control, sender, users)
        say(f"\n» stack up and synced in {time.monotonic() - started:.1f}s")

        sending = asyncio.create_task(load.run())
        try:
            outage = await kill_the_primary(stack, topology, load, api)
        finally:
            load.stop.set()
            await sending
        say(outage.report(load))

        # Syncs that were running when the primary died hold their employees' locks in the
        # replica's copy until SYNC_JOB_TIMEOUT_SECONDS + 10 s after they began.
        poll = await run(api, stack, {"mode": "changes"}, within=40)
        elevo = ScimAccess(http, f"{scim.url}/{TENANT}/v2", creds.scim_token)
        after = await consistency(
            lucca_control, elevo, skip_field="e_skip_elevo_sync", custom_fields={}
        )
        say(
            f"» the poll: {poll['state']}, {poll['counts']}; Elevo against Lucca after it:"
            f" {len(after.report.mismatches)} mismatches; the test took"
            f" {time.monotonic() - started:.1f}s"
        )
        assert poll["state"] == "done", poll
        assert after.report.mismatches == []
        if LAG_SECONDS:
            assert outage.lost, "the replica missed no acknowledged event: the loss went untested"
