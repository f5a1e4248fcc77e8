"""Test doubles for the egress guard: an injected resolver and recording or silent networks."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpcore
import httpx
import pytest

from app.clients.egress import EgressPolicy, Resolver, guarded_transport

STRICT = EgressPolicy()  # ALLOW_HTTP_ELEVO=false, no ELEVO_ALLOWED_NETWORKS
LOCAL = EgressPolicy(allow_loopback=True)  # ALLOW_HTTP_ELEVO=true


@dataclass
class FakeResolver:
    answers: Mapping[str, Sequence[str]]
    asked: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


class RecordingStream(httpcore.AsyncMockStream):
    def __init__(self, network: RecordingNetwork) -> None:
        super().__init__([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
        self._network = network

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._network.sent += buffer

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self._network.tls_names.append(server_hostname)
        return self


@dataclass
class RecordingNetwork(httpcore.AsyncNetworkBackend):
    """Answers 200 to whatever connects, and records where it was asked to connect."""

    connects: list[tuple[str, int]] = field(default_factory=list)
    tls_names: list[str | None] = field(default_factory=list)
    sent: bytes = b""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        return RecordingStream(self)


class FilteredNetwork(httpcore.AsyncNetworkBackend):
    """A firewall dropping every packet: connecting times out, as anyio's backend reports it."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                await anyio.sleep_forever()
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        raise AssertionError("unreachable")


def client(
    policy: EgressPolicy,
    resolver: Resolver | None = None,
    network: httpcore.AsyncNetworkBackend | None = None,
    connect_timeout: float = 5.0,
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=guarded_transport(policy, resolver or FakeResolver({}), network=network),
        timeout=httpx.Timeout(5.0, connect=connect_timeout),
    )


async def refusal(http: httpx.AsyncClient, url: str) -> httpx.ConnectError:
    async with http:
        with pytest.raises(httpx.ConnectError) as caught:
            await http.get(url)
    return caught.value
