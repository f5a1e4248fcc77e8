"""HTTP load for the webhook endpoint, from a process of its own, over loopback.

Raw asyncio streams and HTTP/1.1 keep-alive: far cheaper per request than an httpx client, so
the generator is not what limits a single-process server. Each request is a Lucca
`employee.updated` event with its own id (the service dedupes on it) for one of `--users`
users, signed with a fresh `Lucca-Timestamp` as Lucca does.

Two modes:
- closed: `--connections` loops, each sends as soon as its previous answer came (max
  throughput);
- open: a fixed `--rate`; each request's latency is counted from the time it was *due*, so a
  server that falls behind is charged for the wait (no coordinated omission).

    python -m bench.loadgen --url http://127.0.0.1:8000/webhooks/lucca/acme --secret S \
        --mode open --rate 1000 --duration 15 --out /tmp/load.json

Prints one JSON document (also written to --out).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import random
import resource
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from bench.results import percentile
from simulators.lucca.webhooks import make_event


def _template(subdomain: str) -> tuple[bytes, bytes, bytes]:
    """An event body with placeholders for its id and its user."""
    source = f"https://{subdomain}.ilucca.net"
    data = {
        "id": "__UID__",
        "type": "employee",
        "url": f"{source}/lucca-api/employees/__UID__",
        "givenName": "Camille",
        "familyName": "Martin",
        "email": "camille.martin@acme.example",
        "employeeNumber": "E__UID__",
        "remoteId": None,
        "status": "active",
    }
    event = make_event(
        "employee.updated",
        data,
        subdomain=subdomain,
        occurred_at=datetime.now(UTC),
        previous={"givenName": "Camile"},
        event_id="__EID__",
    )
    return orjson.dumps(event), b"__EID__", b"__UID__"


@dataclass
class Signer:
    secret: bytes
    host: str
    path: str
    users: int
    prefix: str = field(default_factory=lambda: secrets.token_hex(4))
    count: int = 0
    _stamp_at: int = -1
    _stamp: bytes = b""

    def __post_init__(self) -> None:
        self.template, self.eid_marker, self.uid_marker = _template("acme")

    def request(self) -> bytes:
        self.count += 1
        now = int(time.time())
        if now != self._stamp_at:
            self._stamp_at = now
            self._stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
        user = str(random.randint(1, self.users)).encode()
        body = self.template.replace(self.eid_marker, f"{self.prefix}-{self.count}".encode())
        body = body.replace(self.uid_marker, user)
        mac = hmac.new(self.secret, self._stamp + b"." + body, hashlib.sha256).digest()
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\n"
            "Content-Type: application/json\r\n"
            f"Lucca-Timestamp: {self._stamp.decode()}\r\n"
            f"Lucca-Signature: {base64.b64encode(mac).decode()}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def send(self, data: bytes) -> int:
        if self.writer is None or self.reader is None:
            await self.open()
        assert self.writer is not None
        assert self.reader is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"content-length:")
        if at >= 0:
            end = lower.find(b"\r\n", at)
            length = int(lower[at + 15 : end])
            if length:
                await self.reader.readexactly(length)
        if b"connection: close" in lower:
            self.close()
        return status


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


async def _send(conn: Conn, data: bytes, tally: Tally, measured: bool) -> float:
    try:
        status = await conn.send(data)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        conn.close()
        if measured:
            tally.errors[type(exc).__name__] += 1
        return time.perf_counter()
    done = time.perf_counter()
    if measured:
        tally.statuses[status] += 1
    return done


async def closed_loop(
    signer: Signer, host: str, port: int, connections: int, warmup: float, duration: float
) -> tuple[Tally, float]:
    tally = Tally()
    start = time.perf_counter()
    measure_from = start + warmup
    end = measure_from + duration

    async def loop() -> None:
        conn = Conn(host, port)
        while True:
            sent = time.perf_counter()
            if sent >= end:
                break
            measured = sent >= measure_from
            done = await _send(conn, signer.request(), tally, measured)
            if measured:
                tally.latencies.append(done - sent)
        conn.close()

    await asyncio.gather(*(loop() for _ in range(connections)))
    return tally, duration


async def open_loop(
    signer: Signer,
    host: str,
    port: int,
    connections: int,
    rate: float,
    warmup: float,
    duration: float,
) -> tuple[Tally, float]:
    tally = Tally()
    idle: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(connections):
        conn = Conn(host, port)
        await conn.open()
        idle.put_nowait(conn)
    total = int(rate * (warmup + duration))
    measured_from = int(rate * warmup)
    tasks: set[asyncio.Task[None]] = set()

    async def one(due: float, measured: bool) -> None:
        conn = await idle.get()
        data = signer.request()
        started = time.perf_counter()
        done = await _send(conn, data, tally, measured)
        idle.put_nowait(conn)
        if measured:
            tally.latencies.append(done - due)
            tally.lags.append(started - due)

    start = time.perf_counter() + 0.05
    issued = 0
    while issued < total:
        now = time.perf_counter()
        due = start + issued / rate
        if due > now:
            await asyncio.sleep(due - now)
            continue
        while issued < total and start + issued / rate <= now:
            task = asyncio.create_task(one(start + issued / rate, issued >= measured_from))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            issued += 1
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    elapsed = time.perf_counter() - (start + warmup)
    return tally, elapsed


def report(
    tally: Tally, elapsed: float, args: argparse.Namespace, sent_total: int
) -> dict[str, Any]:
    lat = tally.latencies
    usage = resource.getrusage(resource.RUSAGE_SELF)
    ok = sum(n for status, n in tally.statuses.items() if 200 <= status < 300)
    result: dict[str, Any] = {
        "mode": args.mode,
        "connections": args.connections,
        "rate": args.rate if args.mode == "open" else None,
        "duration_s": round(elapsed, 2),
        "requests": len(lat),
        "sent_total": sent_total,
        "ok": ok,
        "rps": round(len(lat) / elapsed, 1) if elapsed > 0 else 0.0,
        "ok_rps": round(ok / elapsed, 1) if elapsed > 0 else 0.0,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "errors": dict(tally.errors),
        "p50_ms": round(percentile(lat, 50) * 1000, 2),
        "p90_ms": round(percentile(lat, 90) * 1000, 2),
        "p99_ms": round(percentile(lat, 99) * 1000, 2),
        "p999_ms": round(percentile(lat, 99.9) * 1000, 2),
        "max_ms": round(max(lat) * 1000, 2) if lat else None,
        "loadgen_cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
    }
    if tally.lags:
        result["send_lag_p99_ms"] = round(percentile(tally.lags, 99) * 1000, 2)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--url", required=True, help="the webhook URL (http only)")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--mode", choices=("closed", "open"), default="closed")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=1000.0, help="open mode: requests/s")
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument("--users", type=int, default=100_000, help="distinct user ids")
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    url = urlsplit(args.url)
    if url.scheme != "http" or url.hostname is None or url.port is None:
        raise SystemExit("--url must be http://host:port/path")
    signer = Signer(args.secret.encode(), url.netloc, url.path, args.users)
    if args.mode == "closed":
        run = closed_loop(
            signer, url.hostname, url.port, args.connections, args.warmup, args.duration
        )
    else:
        run = open_loop(
            signer,
            url.hostname,
            url.port,
            args.connections,
            args.rate,
            args.warmup,
            args.duration,
        )
    tally, elapsed = asyncio.run(run)
    result = report(tally, elapsed, args, signer.count)
    blob = json.dumps(result)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(blob)
    sys.stdout.write(blob + "\n")


if __name__ == "__main__":
    main()
