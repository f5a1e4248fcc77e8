"""An alerts endpoint for tests: a tiny Starlette app on loopback that keeps what it receives."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stack.inprocess import ThreadedServer


@dataclass
class Receiver:
    """What the alerts endpoint received: each POST's headers and body, in order."""

    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_next: int = 0  # answer 503 to this many POSTs first
    url: str = ""  # where it listens, once running

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.received.append((dict(request.headers), await request.body()))
            if self.fail_next:
                self.fail_next -= 1
                return Response(status_code=503)
            return Response(status_code=204)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    def notices(self) -> list[dict[str, Any]]:
        return [orjson.loads(body) for _, body in self.received]


@contextmanager
def receiving() -> Iterator[Receiver]:
    """A Receiver listening on a free loopback port (its `url`) until the block ends."""
    receiver = Receiver()
    server = ThreadedServer(receiver.app())
    receiver.url = f"{server.url}/hook"
    try:
        yield receiver
    finally:
        server.stop()
