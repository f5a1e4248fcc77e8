"""Playing the changes: mutations in Lucca, their events as signed webhooks in concurrent
streams (duplicated, shuffled), and the disruptions meanwhile."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import orjson

from bench.chaos.changes import ChangeMaker
from bench.chaos.faults import (
    elevo_stall,
    kill_worker,
    lucca_429_burst,
    lucca_429_storm,
    restart_redis,
)
from bench.chaos.options import ChaosOptions, Summary
from bench.chaos.pieces import ChaosStack
from simulators.lucca.webhooks import Event, WebhookSender
from stack.lucca_control import MutationRefused


@dataclass
class Player:
    chaos: ChaosStack
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
            + ["stall"] * (self.options.elevo_stall_seconds > 0)
            + ["storm"] * (self.options.lucca_storm_seconds > 0)
        )
        low, high = max(1, n // 10), max(2, n * 9 // 10)
        for action in actions:
            spots.setdefault(self.rng.randrange(low, high), []).append(action)
        return spots

    async def play(self) -> None:
        maker = ChangeMaker(await self.chaos.lucca().dump(), self.rng)
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
            self.chaos.sup.check()
        self._send_window(window)
        for _ in streams:
            self.queue.put_nowait(None)
        await asyncio.gather(*streams, *self.background)
        self.summary.play_seconds = time.monotonic() - started
        (self.chaos.sup.log_dir / "changes.jsonl").write_bytes(b"\n".join(self.journal) + b"\n")

    async def _one_change(self, maker: ChangeMaker) -> list[Event]:
        change = maker.next()
        if change is None:
            self.summary.changes_skipped += 1
            return []
        try:
            events = await self.chaos.lucca().mutate(**change.body)
        except MutationRefused:  # an invalid change
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
            await kill_worker(self.chaos, self.summary, self.rng, index)
        elif action == "redis":
            restart = restart_redis(self.chaos, self.summary, self.options, index)
            self.background.append(asyncio.create_task(restart))
        elif action == "stall":
            stall = elevo_stall(self.chaos, self.summary, self.options, index)
            self.background.append(asyncio.create_task(stall))
        elif action == "storm":
            storm = lucca_429_storm(self.chaos, self.summary, self.options, index)
            self.background.append(asyncio.create_task(storm))
        else:
            await lucca_429_burst(self.chaos, self.options, index)
