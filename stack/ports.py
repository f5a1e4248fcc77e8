"""Loopback ports: a free one, and waiting until something answers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable

import httpx
from redis.exceptions import RedisError


class StackError(RuntimeError):
    """A piece of the stack did not start, died, or did not answer in time; says which."""


def free_port() -> int:
    """A port nothing listens on right now (another program may take it before we do)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 30.0, *, check: Callable[[], None] | None = None
) -> None:
    """Block until something accepts connections on `port`.

    `check` raises when the process meant to listen has died, so that a crash is reported as
    such rather than as a timeout.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check is not None:
            check()
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise StackError(f"nothing listens on port {port} after {timeout:.0f}s")


Probe = Callable[[], Awaitable[bool]]


async def wait_until(
    probe: Probe,
    what: str,
    *,
    within: float = 60.0,
    every: float = 0.1,
    check: Callable[[], None] | None = None,
) -> float:
    """Poll `probe` until it holds; the seconds that took. StackError after `within` seconds.

    A probe that fails to connect (the piece is still starting) counts as not holding yet.
    """
    started = time.monotonic()
    while True:
        with contextlib.suppress(httpx.HTTPError, OSError, RedisError):
            if await probe():
                return time.monotonic() - started
        if check is not None:
            check()
        if time.monotonic() - started > within:
            raise StackError(f"{what}: not within {within:.0f}s")
        await asyncio.sleep(every)
