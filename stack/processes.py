"""Child processes, supervised: started with their own log, restarted when they should be,
stopped together in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stack.ports import StackError, wait_for_port
from stack.procfile import ROOT


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies, however it dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    """One supervised process: how to start it again, its log, and what became of it."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    port: int = 0
    # restart=always, like a process supervisor; else its exit is fatal...
    restart: bool = False
    # ...unless it is a tool that ends by itself.
    one_shot: bool = False
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    exits: list[int] = field(default_factory=list)
    # Set while it is stopped on purpose: its exit is no failure.
    stopping: bool = False
    next_start: float | None = None
    backoff: float = 0.5

    @property
    def popen(self) -> subprocess.Popen[bytes]:
        if self.process is None:
            raise StackError(f"{self.name} is not running")
        return self.process

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 15) -> str:
        """The end of its log, indented, for an error message."""
        try:
            text = self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\n".join(f"    {line}" for line in text)


class Supervisor:
    """Starts children, restarts the restart=always ones when they exit, stops them all."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: dict[str, Child] = {}
        self.fatal: str | None = None
        self._started: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        port: int = 0,
        restart: bool = False,
        one_shot: bool = False,
        wait: bool = True,
    ) -> Child:
        """Start `argv` as `name`; with `port` and `wait`, return once it listens there.

        `restart`: started again whenever it exits; `one_shot`: its exit is no failure.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._started[name] = again = self._started.get(name, 0) + 1
        # A name started again (a worker with other settings) gets a log of its own.
        log = self.log_dir / (f"{name}.log" if again == 1 else f"{name}-{again}.log")
        log.write_bytes(b"")
        child = Child(name, list(argv), dict(env), log, port, restart, one_shot)
        self.children[name] = child
        self.spawn(child)
        if wait and port:
            wait_for_port(port, check=self.check)
        return child

    def spawn(self, child: Child) -> None:
        """Start (or start again) a child, appending to its log."""
        # The child writes to its own copy of the file descriptor: ours closes at once.
        with child.log.open("ab") as log:
            child.process = subprocess.Popen(  # noqa: S603 - the project's own command lines
                child.argv,
                cwd=ROOT,
                env=child.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # A session of its own: Ctrl-C reaches the parent alone, which stops them in order.
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        child.started_at = time.monotonic()
        child.next_start = None
        child.stopping = False

    def watch(self) -> None:
        """Tend the children in the background (restarts happen there) until `aclose`."""
        if self._task is None:
            self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            self.tend()
            await asyncio.sleep(0.1)

    def tend(self) -> None:
        now = time.monotonic()
        for child in list(self.children.values()):
            self._tend(child, now)

    def _tend(self, child: Child, now: float) -> None:
        process = child.process
        if process is None or child.stopping:
            return
        if child.next_start is not None:
            if now >= child.next_start:
                child.restarts += 1
                self.spawn(child)
            return
        code = process.poll()
        if code is None:
            return
        child.exits.append(code)
        if child.one_shot:  # a tool that ends by itself (a profiler): no longer tended
            child.stopping = True
            return
        if not child.restart:
            self.fatal = self.fatal or (
                f"{child.name} exited with {code}; the end of {child.log}:\n{child.tail()}"
            )
            child.process = None
            return
        # Like a supervisor: quick when it ran a while, backing off when it keeps failing.
        uptime = now - child.started_at
        child.backoff = 0.5 if uptime > 10 else min(5.0, child.backoff * 2)
        child.next_start = now + child.backoff

    def check(self) -> None:
        """StackError when a child that must not exit has exited."""
        self.tend()
        if self.fatal:
            raise StackError(self.fatal)

    def kill(
        self, name: str, sig: signal.Signals = signal.SIGKILL, *, for_good: bool = False
    ) -> int:
        """Signal a child (a supervised one comes back, unless killed `for_good`: then its exit
        is no failure either); its pid, 0 when it was down."""
        child = self.children[name]
        if not child.running():
            return 0
        child.stopping = child.stopping or for_good
        os.kill(child.pid, sig)
        return child.pid

    def stop(self, child: Child, within: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `within` seconds; its exit is no failure."""
        child.stopping = True
        process = child.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                process.wait(within)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def stop_all(self, within: float = 10.0) -> None:
        """Stop every child, the last started first (the service before its Redis)."""
        for child in reversed(list(self.children.values())):
            self.stop(child, within)

    async def aclose(self, within: float = 10.0) -> None:
        """Stop watching, then stop every child."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self.stop_all, within)
