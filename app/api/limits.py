"""Every request's body is capped and must arrive in time: an ASGI middleware around the app.

A body over MAX_BODY_BYTES is refused with 413 `too_large`: at once when `Content-Length`
says so, else as soon as the bytes read pass the cap (what was read is dropped, the rest is
never read). A body not complete within REQUEST_BODY_TIMEOUT_SECONDS of the request head gets
408 `request_timeout`. Either answer closes the connection. Routes keep their own, smaller
caps (a webhook 256 KiB, a tenant configuration 64 KiB).
"""

from __future__ import annotations

from typing import Final

import anyio
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import ApiError, ErrorCode, error_response

# The largest body a route takes: a `POST /sync` naming 10,000 users is about 200 KiB.
MAX_BODY_BYTES: Final = 1024 * 1024


class _BodyRefused(Exception):
    def __init__(self, error: ApiError) -> None:
        super().__init__(error.detail)
        self.error = error


def _too_large() -> _BodyRefused:
    return _BodyRefused(ApiError.of(ErrorCode.TOO_LARGE, f"body over {MAX_BODY_BYTES} bytes"))


def _declared_length(scope: Scope) -> int | None:
    declared = Headers(scope=scope).get("content-length", "")
    # isdigit() alone admits "²", which int() refuses.
    return int(declared) if declared.isascii() and declared.isdigit() else None


class BodyGuard:
    """The cap and the deadline of every request body."""

    def __init__(self, app: ASGIApp, *, read_timeout: float) -> None:
        self.app = app
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > MAX_BODY_BYTES:
            await _answer(_too_large(), scope, receive, send)
            return
        deadline = anyio.current_time() + self.read_timeout
        read = 0
        complete = False
        started = False

        async def guarded_receive() -> Message:
            nonlocal read, complete
            if complete:  # only http.disconnect is left to wait for: no deadline
                return await receive()
            with anyio.move_on_after(deadline - anyio.current_time()) as late:
                message = await receive()
            if late.cancelled_caught:
                detail = f"the body did not arrive within {self.read_timeout:g} s"
                raise _BodyRefused(ApiError.of(ErrorCode.REQUEST_TIMEOUT, detail))
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > MAX_BODY_BYTES:
                    raise _too_large()
                complete = not message.get("more_body", False)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracked_send)
        except _BodyRefused as refused:
            if started:
                raise
            await _answer(refused, scope, receive, send)


async def _answer(refused: _BodyRefused, scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(refused.error)
    response.headers["Connection"] = "close"
    await response(scope, receive, send)
