"""The web process's HTTP protocol: uvicorn's h11 protocol with the deadlines it lacks.

uvicorn closes an idle keep-alive connection, caps a request head's size
(`--h11-max-incomplete-event-size`) and the number of connections it serves
(`--limit-concurrency`), but waits for ever for a head sent a byte at a time, and keeps reading
a body nobody will read after the answer went out. This protocol (the Procfile's `--http`)
closes a connection whose request head is not complete within REQUEST_HEADER_TIMEOUT_SECONDS,
and one answered before its body was read. The body's own deadline is app/api/limits.py's.

Closing a connection whose client is still sending would make the kernel reset it, and the
client would lose the answer (a 413) with it. So a close lingers (RFC 9112, 9.6): the answer
is sent, the write side shut, and what still comes is read and dropped for LINGER_SECONDS.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any, Final

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.settings import Settings

LINGER_SECONDS: Final = 2.0


@cache
def header_timeout_seconds() -> float:
    return Settings.from_env().request_header_timeout_seconds


class LingeringTransport(asyncio.Transport):
    """A transport whose `close` shuts the write side, drops what still comes for a while,
    then closes."""

    def __init__(self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._inner = inner
        self._loop = loop
        self.lingering = False

    def close(self) -> None:
        if self.lingering or self._inner.is_closing():
            return
        self.lingering = True
        if self._inner.can_write_eof():
            self._inner.write_eof()  # after the answer still buffered
        self._inner.resume_reading()  # flow control may have paused it: keep draining
        self._loop.call_later(LINGER_SECONDS, self._inner.close)

    def is_closing(self) -> bool:
        return self.lingering or self._inner.is_closing()

    def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
        self._inner.write(data)

    def pause_reading(self) -> None:
        if not self.lingering:
            self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def abort(self) -> None:
        self._inner.abort()

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def write_eof(self) -> None:
        self._inner.write_eof()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's H11Protocol, with a deadline on each request head."""

    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(LingeringTransport(transport, self.loop))
        self._await_head()

    def data_received(self, data: bytes) -> None:
        if isinstance(self.transport, LingeringTransport) and self.transport.lingering:
            return  # the answer is sent: what still comes is dropped
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_deadline()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            # Answered before its body was read (a refusal): the rest is never read, however
            # slowly it comes.
            self.conn.send(h11.ConnectionClosed())
            self.transport.close()
            return
        super().on_response_complete()
        self._await_head()  # the next request on this connection

    def _await_head(self) -> None:
        self._stop_head_deadline()
        self._head_deadline = self.loop.call_later(header_timeout_seconds(), self._head_late)

    def _stop_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_late(self) -> None:
        # IDLE: no request head complete since the deadline was set (a keep-alive connection
        # between requests is IDLE too; uvicorn's keep-alive timeout, shorter, closed it first).
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()
