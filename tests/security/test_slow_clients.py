"""No slow or large client holds the web process (issue 12, point 4).

The web process is started with the Procfile's own command line (stack/), with short head and
body deadlines, and probed over raw sockets: a large body is refused without being held in
memory, a trickled body or head is cut at its deadline, a body answered before it was read is
never read. What uvicorn cannot bound (connections opened and left silent before the deadline,
TLS, the total of connections across processes) is the reverse proxy's, README "Deployment".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from arq.connections import ArqRedis

from stack.processes import Child
from stack.procfile import procfile_command
from stack.services import Stack, service_env
from tests.conftest import TEST_ADMIN_TOKEN, TEST_REDIS_URL
from tests.security.support import ACME_BODY, ADMIN

DEADLINE = 1.0  # REQUEST_HEADER_TIMEOUT_SECONDS and REQUEST_BODY_TIMEOUT_SECONDS here
SLACK = 4.0  # a busy two-core machine
MB = 1024 * 1024


@dataclass
class Web:
    child: Child

    @property
    def port(self) -> int:
        return self.child.port

    def rss(self) -> int:
        """The process's resident memory, in bytes."""
        status = Path(f"/proc/{self.child.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1]) * 1024


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with Stack(tmp_path) as running:
        yield running


@pytest.fixture
async def web(redis: ArqRedis, stack: Stack) -> Web:
    env = service_env(
        redis_url=TEST_REDIS_URL,
        lucca_url="http://127.0.0.1:9",
        admin_token=TEST_ADMIN_TOKEN,
        ALLOW_HTTP_ELEVO="false",
        REQUEST_HEADER_TIMEOUT_SECONDS=str(DEADLINE),
        REQUEST_BODY_TIMEOUT_SECONDS=str(DEADLINE),
    )
    served = Web(stack.web(env))
    async with httpx.AsyncClient(base_url=served.child.url) as http:
        response = await http.put("/tenants/acme", json=ACME_BODY, headers=ADMIN)
        assert response.status_code == 201, response.text
    return served


async def connect(web: Web) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", web.port)


def head(target: str, *headers: str) -> bytes:
    lines = [f"POST {target} HTTP/1.1", "Host: sync", f"Authorization: Bearer {TEST_ADMIN_TOKEN}"]
    return ("\r\n".join([*lines, *headers]) + "\r\n\r\n").encode()


async def answer(reader: asyncio.StreamReader, within: float) -> tuple[int, bytes]:
    """The status and the whole answer, read until the server closes the connection (a reset
    after the answer, once the server stopped reading what this client still sent, included)."""
    raw = b""
    async with asyncio.timeout(within):
        try:
            while chunk := await reader.read(65536):
                raw += chunk
        except ConnectionResetError:
            pass
    status = int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0
    return status, raw


async def test_the_procfile_caps_connections_and_head_sizes() -> None:
    argv = procfile_command("web", {"PORT": "8000"})
    flags = dict(zip(argv, [*argv[1:], ""], strict=True))
    assert flags["--http"] == "app.server:GuardedH11Protocol"
    assert int(flags["--limit-concurrency"]) > 0
    assert int(flags["--timeout-keep-alive"]) <= 5
    assert int(flags["--h11-max-incomplete-event-size"]) <= 16 * 1024


async def test_an_80_mb_body_is_refused_without_being_read(web: Web) -> None:
    reader, writer = await connect(web)
    before = web.rss()
    writer.write(head("/sync/acme", "Content-Type: application/json", f"Content-Length: {80 * MB}"))
    sent = 0
    try:
        while sent < 80 * MB:  # answered at once; what follows is dropped, then cut
            writer.write(b"x" * MB)
            await asyncio.wait_for(writer.drain(), 5)
            sent += MB
    except (ConnectionError, TimeoutError):
        pass
    status, raw = await answer(reader, SLACK)
    assert status == 413
    assert b'"error":"too_large"' in raw
    assert web.rss() - before < 20 * MB
    writer.close()


async def test_an_80_mb_chunked_body_is_cut_at_the_cap(web: Web) -> None:
    reader, writer = await connect(web)
    before = web.rss()
    writer.write(head("/sync/acme", "Content-Type: application/json", "Transfer-Encoding: chunked"))
    chunk = f"{MB:x}\r\n".encode() + b" " * MB + b"\r\n"
    sent = 0
    try:
        while sent < 80 * MB:
            writer.write(chunk)
            await asyncio.wait_for(writer.drain(), 5)
            sent += MB
    except (ConnectionError, TimeoutError):
        pass
    status, _ = await answer(reader, SLACK)
    assert status == 413
    assert web.rss() - before < 20 * MB
    writer.close()


async def test_uploads_to_an_unknown_tenant_are_never_read(web: Web) -> None:
    before = web.rss()
    for _ in range(20):
        reader, writer = await connect(web)
        writer.write(
            head(
                "/webhooks/lucca/ghost",
                "Content-Type: application/json",
                "Content-Length: 900000",  # under the 1 MiB every route takes
            )
            + b"{" * 200_000
        )
        await writer.drain()
        status, _ = await answer(reader, SLACK)  # answered, then closed: the rest is not read
        assert status == 404
        writer.close()
    assert web.rss() - before < 20 * MB


async def test_a_trickled_body_is_cut_at_the_body_deadline(web: Web) -> None:
    reader, writer = await connect(web)
    writer.write(head("/sync/acme", "Content-Type: application/json", "Content-Length: 100"))
    started = time.monotonic()

    async def trickle() -> None:
        for _ in range(100):
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.2)

    trickling = asyncio.create_task(trickle())
    try:
        status, raw = await answer(reader, DEADLINE + SLACK)
    finally:
        trickling.cancel()
    assert status == 408
    assert b'"error":"request_timeout"' in raw
    assert DEADLINE - 0.1 <= time.monotonic() - started < DEADLINE + SLACK
    writer.close()


async def test_trickled_heads_are_cut_at_the_head_deadline(web: Web) -> None:
    connections = [await connect(web) for _ in range(50)]
    started = time.monotonic()

    async def trickle(writer: asyncio.StreamWriter) -> None:
        writer.write(b"POST /sync/acme HTTP/1.1\r\n")
        for _ in range(100):
            writer.write(b"X-Slow: 1\r\n")
            await writer.drain()
            await asyncio.sleep(0.2)

    tasks = [asyncio.create_task(trickle(writer)) for _, writer in connections]
    try:
        closed = await asyncio.gather(
            *(answer(reader, DEADLINE + SLACK) for reader, _ in connections)
        )
    finally:
        for task in tasks:
            task.cancel()
    assert all(raw == b"" for _, raw in closed)  # closed without an answer
    assert time.monotonic() - started < DEADLINE + SLACK
    for _, writer in connections:
        writer.close()


async def test_a_keep_alive_connection_still_serves_request_after_request(web: Web) -> None:
    async with httpx.AsyncClient(base_url=web.child.url) as http:
        for _ in range(3):
            assert (await http.get("/sync/acme", headers=ADMIN)).status_code == 200
            await asyncio.sleep(DEADLINE / 2)
