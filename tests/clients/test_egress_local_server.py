"""The egress guard against a real HTTP server on loopback: what it reaches, how it fails."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from app.clients.egress import EgressPolicy, guarded_transport, system_resolver
from app.clients.http import new_http_client
from tests.clients.egress_fakes import LOCAL, STRICT, FakeResolver, FilteredNetwork, client, refusal
from tests.conftest import make_settings


@dataclass
class LocalServer:
    port: int = 0
    connections: int = 0


async def serve(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: LocalServer
) -> None:
    seen.connections += 1
    data = await reader.read(4096)
    if data.startswith(b"GET"):
        while b"\r\n\r\n" not in data:
            data += await reader.read(4096)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    else:  # a TLS handshake: this port is open but speaks no TLS
        writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
    await writer.drain()
    writer.close()
    await writer.wait_closed()


@pytest.fixture
async def local_server() -> AsyncIterator[LocalServer]:
    seen = LocalServer()
    server = await asyncio.start_server(lambda r, w: serve(r, w, seen), "127.0.0.1", 0)
    seen.port = server.sockets[0].getsockname()[1]
    async with server:
        yield seen


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_loopback_is_reached_only_when_allowed(local_server: LocalServer) -> None:
    resolver = FakeResolver({"elevo.local": ["127.0.0.1"]})
    async with client(LOCAL, resolver) as http:
        by_address = await http.get(f"http://127.0.0.1:{local_server.port}/scim/v2/Users")
        by_name = await http.get(f"http://elevo.local:{local_server.port}/scim/v2/Users")
    assert (by_address.status_code, by_name.status_code) == (200, 200)
    assert by_name.text == "ok"
    assert local_server.connections == 2

    for url in (
        f"http://127.0.0.1:{local_server.port}/",
        f"http://elevo.local:{local_server.port}/",
        f"http://2130706433:{local_server.port}/",
    ):
        await refusal(client(STRICT, resolver), url)
    assert local_server.connections == 2  # the refused requests never connected


async def test_closed_filtered_and_non_tls_ports_fail_alike(local_server: LocalServer) -> None:
    resolver = FakeResolver({"tenant.example": ["127.0.0.1"]})
    closed = await refusal(client(LOCAL, resolver), f"https://tenant.example:{closed_port()}/")
    filtered = await refusal(
        client(LOCAL, resolver, FilteredNetwork(), connect_timeout=0.2),
        "https://tenant.example:9/",
    )
    open_but_not_tls = await refusal(
        client(LOCAL, resolver), f"https://tenant.example:{local_server.port}/"
    )
    assert local_server.connections == 1
    errors = [closed, filtered, open_but_not_tls]
    assert {(type(e), str(e)) for e in errors} == {
        (httpx.ConnectError, "could not reach tenant.example")
    }


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback here")
async def test_ipv6_loopback_with_allow_loopback() -> None:
    seen = LocalServer()
    server = await asyncio.start_server(lambda r, w: serve(r, w, seen), "::1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        async with client(LOCAL) as http:
            assert (await http.get(f"http://[::1]:{port}/")).status_code == 200
        await refusal(client(STRICT), f"http://[::1]:{port}/")
    assert seen.connections == 1


async def test_the_system_resolver_by_default(local_server: LocalServer) -> None:
    # localhost comes from /etc/hosts: no DNS needed.
    assert {"127.0.0.1", "::1"} & set(await system_resolver("localhost", local_server.port))
    async with client_with_system_resolver(LOCAL) as http:
        response = await http.get(f"http://localhost:{local_server.port}/")
    assert response.status_code == 200
    await refusal(client_with_system_resolver(STRICT), f"http://localhost:{local_server.port}/")
    assert local_server.connections == 1


def client_with_system_resolver(policy: EgressPolicy) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=guarded_transport(policy))


async def test_the_service_http_client_checks_every_connection(local_server: LocalServer) -> None:
    """`new_http_client` (Lucca and Elevo, stored configurations included) carries the guard:
    loopback only with ALLOW_HTTP_ELEVO=true."""
    url = f"http://127.0.0.1:{local_server.port}/scim/v2/Users"
    strict = new_http_client(make_settings(ALLOW_HTTP_ELEVO="false"))
    try:
        with pytest.raises(httpx.ConnectError, match="address not allowed"):
            await strict.get(url)
    finally:
        await strict.aclose()
    assert local_server.connections == 0
    local = new_http_client(make_settings(ALLOW_HTTP_ELEVO="true"))
    try:
        assert (await local.get(url)).status_code == 200
    finally:
        await local.aclose()
    assert local_server.connections == 1
