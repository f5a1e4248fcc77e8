"""An ASGI app served by uvicorn in a thread of this process: a simulator whose state the
caller reads and changes directly (the e2e tests' Lucca, over their own Registry)."""

from __future__ import annotations

import threading
from typing import Any

import uvicorn

from stack.ports import free_port, wait_for_port


class ThreadedServer:
    """`app` on a free loopback port, in a daemon thread; `stop()` ends it."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for_port(self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
