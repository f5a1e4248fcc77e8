"""Where outbound connections may go: public addresses only, checked at every connection.

A tenant configures URLs the worker then fetches (its Elevo SCIM URL, its Lucca domain) with a
token attached. Left alone, it could point them at the cloud metadata service, Redis or anything
else on the operator's network. So the HTTP transport resolves each host itself, refuses the
connection unless the :class:`EgressPolicy` allows every address the host resolves to, and then
connects to one of those checked addresses: never a second lookup, which could answer
differently (DNS rebinding). TLS SNI and the Host header still name the host.

Whatever fails, the caller learns one thing: ``could not reach <host>``, followed by
``: address not allowed`` when the policy refused it. A closed port, a filtered one and an open
one that speaks no TLS read the same, and the resolved address is never named, so the errors
cannot be used to scan the operator's network.
"""

# httpcore's backend and stream interfaces take a `timeout` argument: these implement them.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any, Final

import anyio
import httpcore
import httpx

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
# (host, port) -> the addresses the host resolves to, as text; OSError when it does not resolve.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

_NAT64_WELL_KNOWN: Final = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL_USE: Final = IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE: Final = IPv6Network("::/96")
# Characters of the legacy IPv4 forms inet_aton accepts (2130706433, 0x7f000001, 0177.0.0.1, 127.1).
_LEGACY_IPV4: Final = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)
_LOOPBACK_NAMES: Final = frozenset(
    {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
)
_LOOPBACK: Final = IPv4Address("127.0.0.1")


class AddressNotAllowed(ValueError):
    """An address the egress policy refuses, or a host name that can only mean one."""


def parse_allowed_networks(text: str) -> tuple[IPNetwork, ...]:
    """Comma-separated CIDRs (``10.0.0.0/8, fd00::/8``); ValueError names the first bad one."""
    networks: list[IPNetwork] = []
    for item in text.split(","):
        cidr = item.strip()
        if not cidr:
            continue
        try:
            networks.append(ip_network(cidr))
        except ValueError:
            raise ValueError(
                f"{cidr!r} is not a network in CIDR notation with no host bits, e.g. 10.0.0.0/8"
            ) from None
    return tuple(networks)


def embedded_ipv4(address: IPv6Address) -> tuple[IPv4Address, ...]:
    """The IPv4 hosts a packet to this IPv6 address is really bound for, in transition forms.

    IPv4-mapped and IPv4-compatible addresses, NAT64 (well-known and local-use prefixes), 6to4
    and Teredo (its server and client) embed them; any other address gives ``()``.
    """
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    # :: and ::1 are the unspecified and loopback addresses, not IPv4-compatible ones.
    if address in _NAT64_WELL_KNOWN or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return (IPv4Address(int(address) & 0xFFFF_FFFF),)
    if address in _NAT64_LOCAL_USE:
        # RFC 6052 with a /48 prefix: 16 bits of the IPv4 address, the zero u-octet, 16 bits.
        value = int(address)
        return (IPv4Address(((value >> 64) & 0xFFFF) << 16 | (value >> 40) & 0xFFFF),)
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:
        return address.teredo
    return ()


def is_public(address: IPAddress) -> bool:
    """Globally routable: Python's ``is_global`` minus what it lets through.

    ``is_global`` holds for multicast, for the IPv6 reserved ranges (where the IPv4-mapped,
    -compatible and NAT64 forms live) and for deprecated site-local addresses.
    """
    if isinstance(address, IPv6Address) and address.is_site_local:
        return False
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
    )


def _judged(address: IPAddress) -> tuple[IPAddress, ...]:
    """The addresses that decide whether a connection to ``address`` is allowed."""
    if isinstance(address, IPv4Address):
        return (address,)
    embedded = embedded_ipv4(address)
    if address.sixtofour is not None or address.teredo is not None:
        # These live in global unicast space: the address and the hosts it embeds must all pass.
        return (address, *embedded)
    return embedded or (address,)


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Which addresses an outbound connection may reach.

    Public addresses always; loopback too when ``allow_loopback`` (ALLOW_HTTP_ELEVO=true, local
    use); and whatever lies in ``allowed_networks`` (ELEVO_ALLOWED_NETWORKS).
    """

    allow_loopback: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    def check(self, address: IPAddress) -> None:
        """Return if ``address`` may be reached; else raise :class:`AddressNotAllowed`."""
        if self._listed(address):
            return
        for judged in _judged(address):
            if self._listed(judged) or is_public(judged):
                continue
            if self.allow_loopback and judged.is_loopback:
                continue
            reaches = "" if judged == address else f" (it reaches {judged})"
            raise AddressNotAllowed(f"{address} is not a public address{reaches}")

    def _listed(self, address: IPAddress) -> bool:
        # A network of the other IP version never contains the address (no TypeError).
        return any(address in network for network in self.allowed_networks)


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells out, in any form a resolver reads as one; None for a name.

    Besides the dotted quad and IPv6 (bracketed or not), resolvers accept the legacy IPv4 forms
    of ``inet_aton``: ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``, ``0``.
    """
    bare = host.strip().lower()
    if bare.startswith("[") and bare.endswith("]"):
        bare = bare[1:-1]
    if ":" in bare:
        try:
            return ip_address(bare)
        except ValueError:
            return None
    bare = bare.removesuffix(".")
    # The pattern first: glibc's inet_aton ignores whatever follows a space.
    if not _LEGACY_IPV4.fullmatch(bare):
        return None
    try:
        return IPv4Address(socket.inet_aton(bare))
    except OSError:
        return None


def validate_host_literal(host: str, policy: EgressPolicy) -> None:
    """Refuse, when a URL is configured, a host that can only mean a refused address.

    Catches what needs no lookup: literal addresses in every form and the loopback names.
    Other names are resolved and checked at every connection by the guarded transport.
    Raises :class:`AddressNotAllowed`.
    """
    address = literal_address(host)
    if address is not None:
        policy.check(address)
        return
    if _is_loopback_name(host):
        try:
            policy.check(_LOOPBACK)
        except AddressNotAllowed:
            raise AddressNotAllowed(f"{host} names the loopback interface") from None


def _is_loopback_name(host: str) -> bool:
    name = host.strip().lower().removesuffix(".")
    return name in _LOOPBACK_NAMES or name.endswith(".localhost")


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host``, in its order of preference."""
    loop = asyncio.get_running_loop()
    answers = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(sockaddr[0]) for *_, sockaddr in answers]


class Unreachable(httpcore.ConnectError):
    """The one error of a failed connection: silent on the port's state and on the address."""

    def __init__(self, host: str, detail: str = "") -> None:
        super().__init__(f"could not reach {host}{detail}")


class EgressRefused(Unreachable):
    """The host resolves to an address the egress policy refuses: nothing was sent to it."""

    def __init__(self, host: str) -> None:
        super().__init__(host, ": address not allowed")


class GuardedStream(httpcore.AsyncNetworkStream):
    """A connected stream whose TLS handshake fails as a closed port does.

    An open port that speaks no TLS, or TLS with another certificate, would otherwise answer
    differently from a closed one. The cause stays chained for the operator's logs.
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream, host: str) -> None:
        self._inner = inner
        self._host = host

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            return await self._inner.start_tls(ssl_context, server_hostname, timeout)
        except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
            raise Unreachable(self._host) from exc

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to addresses the policy allows.

    ``resolver`` defaults to the system's (``getaddrinfo``); ``network`` is the backend that
    really connects, anyio's by default.
    """

    def __init__(
        self,
        policy: EgressPolicy,
        resolver: Resolver | None = None,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolve = resolver or system_resolver
        self._network = network or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # One budget for the lookup and every address tried, as httpx's connect timeout means.
        deadline = None if timeout is None else anyio.current_time() + timeout
        failure: Exception | None = None
        for address in await self._allowed_addresses(host, port, deadline):
            try:
                stream = await self._network.connect_tcp(
                    str(address),
                    port,
                    timeout=_remaining(deadline),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # refused or timed out alike: try the next address
                continue
            return GuardedStream(stream, host)
        raise Unreachable(host) from failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused(path)  # a local socket is never a tenant's destination

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)

    async def _allowed_addresses(
        self, host: str, port: int, deadline: float | None
    ) -> list[IPAddress]:
        literal = literal_address(host)
        if literal is not None:
            addresses = [literal]
        elif _is_loopback_name(host):
            addresses = [_LOOPBACK]  # whatever a resolver would say, it means this host
        else:
            try:
                with anyio.fail_after(_remaining(deadline)):
                    answers = await self._resolve(host, port)
                addresses = [ip_address(answer) for answer in dict.fromkeys(answers)]
            except (OSError, TimeoutError, ValueError) as exc:
                raise Unreachable(host) from exc
        if not addresses:
            raise Unreachable(host)
        try:
            # Every address, not just the first: which one a later lookup favours is not ours.
            for address in addresses:
                self._policy.check(address)
        except AddressNotAllowed as exc:
            raise EgressRefused(host) from exc
        return addresses


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - anyio.current_time())


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over a connection pool of :class:`GuardedBackend` connections."""

    def __init__(self, pool: httpcore.AsyncConnectionPool) -> None:
        # httpx 0.28 offers no way to give its transport a network backend; the transport
        # reaches the network only through ``self._pool``, so it gets a pool built with ours.
        self._pool = pool


def guarded_transport(
    policy: EgressPolicy,
    resolver: Resolver | None = None,
    *,
    network: httpcore.AsyncNetworkBackend | None = None,
    verify: ssl.SSLContext | bool = True,
    limits: httpx.Limits | None = None,
    http1: bool = True,
    http2: bool = False,
    retries: int = 0,
) -> httpx.AsyncHTTPTransport:
    """An ``httpx.AsyncHTTPTransport`` whose every connection the egress policy checks.

    The keyword arguments mean what they mean to ``httpx.AsyncHTTPTransport``; ``limits``
    defaults to httpx's. There is no proxy and no Unix socket: either would bypass the check.
    ``network`` replaces the backend that really connects (tests).
    """
    limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
    pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=http1,
        http2=http2,
        retries=retries,
        network_backend=GuardedBackend(policy, resolver, network),
    )
    return GuardedTransport(pool)
