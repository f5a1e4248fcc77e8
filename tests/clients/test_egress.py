"""Outbound connections reach public addresses only, checked when connecting (issue 12.3).

There is no DNS here: every test injects the resolver, and most the network too (a recording
fake), so that "refused" also proves nothing was connected to.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from app.clients.egress import (
    AddressNotAllowed,
    EgressPolicy,
    EgressRefused,
    GuardedBackend,
    Unreachable,
    embedded_ipv4,
    literal_address,
    parse_allowed_networks,
    validate_host_literal,
)
from tests.clients.egress_fakes import (
    LOCAL,
    STRICT,
    FakeResolver,
    RecordingNetwork,
    client,
    refusal,
)

PUBLIC_IP = "93.184.215.14"

# Every host the issue found accepted, as a URL spells it; httpx itself rejects 0177.0.0.1.
ISSUE_LITERALS = [
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "127.1",
    "0",
    "[::127.0.0.1]",
    "[64:ff9b::a9fe:a9fe]",
]
ISSUE_NAMES = {"169.254.169.254.nip.io": "169.254.169.254", "localhost.localdomain": "127.0.0.1"}

REFUSED = [
    "127.0.0.1",  # loopback
    "::1",
    "10.0.0.1",  # private
    "172.16.5.4",
    "192.168.1.1",
    "fc00::1",
    "169.254.169.254",  # link-local, the metadata service
    "fe80::1",
    "224.0.0.1",  # multicast
    "ff02::1",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "0.0.0.0",  # noqa: S104  (unspecified: a destination here, not a bind)
    "::",
    "100.64.0.1",  # shared address space
    "198.18.0.1",  # benchmarking
    "192.0.2.1",  # documentation
    "2001:db8::1",
    "fec0::1",  # site-local
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::127.0.0.1",  # IPv4-compatible
    "::a9fe:a9fe",
    "64:ff9b::7f00:1",  # NAT64, well-known prefix
    "64:ff9b::a9fe:a9fe",
    "64:ff9b:1:7f00:0:100::",  # NAT64, local-use prefix
    "2002:7f00:1::1",  # 6to4
    "2002:a9fe:a9fe::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]
NOT_LOOPBACK = ["10.0.0.1", "169.254.169.254", "0.0.0.0", "::", "fe80::1"]  # noqa: S104
PUBLIC = [PUBLIC_IP, "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]

# --- the policy ---------------------------------------------------------------------------


@pytest.mark.parametrize("address", REFUSED)
def test_a_non_public_address_is_refused(address: str) -> None:
    with pytest.raises(AddressNotAllowed, match="not a public address"):
        STRICT.check(ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_a_public_address_is_allowed(address: str) -> None:
    STRICT.check(ip_address(address))


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_allow_loopback_admits_loopback(address: str) -> None:
    LOCAL.check(ip_address(address))


@pytest.mark.parametrize("address", NOT_LOOPBACK)
def test_allow_loopback_admits_nothing_else(address: str) -> None:
    with pytest.raises(AddressNotAllowed):
        LOCAL.check(ip_address(address))


def test_allowed_networks_admit_their_addresses_only() -> None:
    policy = EgressPolicy(allowed_networks=parse_allowed_networks("10.0.0.0/8, fd00::/8"))
    policy.check(IPv4Address("10.1.2.3"))
    policy.check(IPv6Address("::ffff:10.1.2.3"))
    policy.check(IPv6Address("fd12::1"))
    for address in ("192.168.1.1", "127.0.0.1", "fc00::1"):
        with pytest.raises(AddressNotAllowed):
            policy.check(ip_address(address))


def test_embedded_ipv4_of_each_transition_form() -> None:
    def embedded(text: str) -> list[str]:
        return [str(a) for a in embedded_ipv4(IPv6Address(text))]

    assert embedded("::ffff:169.254.169.254") == ["169.254.169.254"]
    assert embedded("::127.0.0.1") == ["127.0.0.1"]
    assert embedded("64:ff9b::a9fe:a9fe") == ["169.254.169.254"]
    assert embedded("64:ff9b:1:c000:2:2100::") == ["192.0.2.33"]  # RFC 6052's /48 example
    assert embedded("2002:7f00:1::1") == ["127.0.0.1"]
    assert embedded("2001:0:4136:e378:8000:63bf:3fff:fdd2") == ["65.54.227.120", "192.0.2.45"]
    assert embedded("::1") == embedded("::") == embedded("2606:4700::1") == []


def test_parse_allowed_networks() -> None:
    assert parse_allowed_networks("") == ()
    assert [str(n) for n in parse_allowed_networks(" 10.0.0.0/8 ,, fd00::/8 ")] == [
        "10.0.0.0/8",
        "fd00::/8",
    ]
    for bad in ("10.0.0.1/8", "nonsense", "10.0.0.0/33"):
        with pytest.raises(ValueError, match=bad.replace(".", r"\.")):
            parse_allowed_networks(f"192.168.0.0/16,{bad}")


# --- the configuration-time check ---------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        *ISSUE_LITERALS,
        "localhost",
        "LOCALHOST.",
        "app.localhost",
        "localhost.localdomain",
        "169.254.169.254",
        "[::ffff:169.254.169.254]",
        "10.1.2.3",
        "127.0.0.1.",
    ],
)
def test_a_literal_internal_host_is_refused_when_configured(host: str) -> None:
    with pytest.raises(AddressNotAllowed):
        validate_host_literal(host, STRICT)


@pytest.mark.parametrize(
    "host", ["elevo.example", "8.8.8.8", "[2606:4700::1]", "cafe", "169.254.169.254.nip.io"]
)
def test_a_name_or_public_literal_passes_the_configuration_time_check(host: str) -> None:
    validate_host_literal(host, STRICT)  # names are checked when connecting


def test_the_configuration_time_check_follows_the_policy() -> None:
    for host in ("localhost", "127.1", "[::1]", "2130706433"):
        validate_host_literal(host, LOCAL)
    with pytest.raises(AddressNotAllowed):
        validate_host_literal("10.0.0.1", LOCAL)
    validate_host_literal(
        "10.0.0.1", EgressPolicy(allowed_networks=parse_allowed_networks("10.0.0.0/8"))
    )


def test_literal_address_reads_what_inet_aton_reads() -> None:
    assert literal_address("0x7f.1") == IPv4Address("127.0.0.1")
    assert literal_address("[::1]") == IPv6Address("::1")
    assert literal_address("1.2.3.4 extra") is None  # glibc's inet_aton would say 1.2.3.4
    assert literal_address("elevo.example") is None
    assert literal_address("deadbeef") is None


# --- the transport ------------------------------------------------------------------------


@pytest.mark.parametrize("host", [h for h in ISSUE_LITERALS if h != "0177.0.0.1"])
async def test_each_issue_literal_is_refused_by_the_transport(host: str) -> None:
    network, resolver = RecordingNetwork(), FakeResolver({})
    error = await refusal(client(STRICT, resolver, network), f"https://{host}/scim/v2/Users")
    assert str(error).endswith(": address not allowed")
    assert isinstance(error.__cause__, EgressRefused)
    assert network.connects == []
    assert resolver.asked == []  # a literal needs no lookup


@pytest.mark.parametrize("host", ISSUE_LITERALS)
async def test_each_issue_literal_is_refused_by_the_backend(host: str) -> None:
    # As httpcore hands the host over; 0177.0.0.1 never gets this far through httpx.
    network = RecordingNetwork()
    with pytest.raises(EgressRefused):
        await GuardedBackend(STRICT, FakeResolver({}), network).connect_tcp(host.strip("[]"), 443)
    assert network.connects == []


@pytest.mark.parametrize(
    ("name", "address"),
    [
        *ISSUE_NAMES.items(),
        *(("tenant.example", address) for address in REFUSED),
    ],
)
async def test_a_name_resolving_to_an_internal_address_is_refused(name: str, address: str) -> None:
    network = RecordingNetwork()
    resolver = FakeResolver({name: [address]})
    error = await refusal(client(STRICT, resolver, network), f"https://{name}/scim/v2/Users")
    assert str(error) == f"could not reach {name}: address not allowed"
    # A loopback name means loopback whatever a resolver says: it is not looked up.
    assert resolver.asked == ([] if name == "localhost.localdomain" else [name])
    assert network.connects == []


async def test_one_internal_address_among_public_ones_is_refused() -> None:
    network = RecordingNetwork()
    resolver = FakeResolver({"elevo.example": [PUBLIC_IP, "10.0.0.7"]})
    await refusal(client(STRICT, resolver, network), "https://elevo.example/")
    assert network.connects == []


async def test_a_public_address_is_connected_to_as_resolved_with_the_name_kept() -> None:
    network = RecordingNetwork()
    resolver = FakeResolver({"elevo.example": [PUBLIC_IP]})
    async with client(STRICT, resolver, network) as http:
        response = await http.get("https://elevo.example/scim/v2/Users")
    assert response.status_code == 200
    assert network.connects == [(PUBLIC_IP, 443)]  # the checked address: no second lookup
    assert network.tls_names == ["elevo.example"]  # SNI
    assert b"\r\nHost: elevo.example\r\n" in network.sent
    assert resolver.asked == ["elevo.example"]


async def test_allowed_networks_through_the_transport() -> None:
    policy = EgressPolicy(allowed_networks=parse_allowed_networks("10.0.0.0/8"))
    network = RecordingNetwork()
    resolver = FakeResolver({"inside.example": ["10.1.2.3"], "other.example": ["192.168.1.1"]})
    async with client(policy, resolver, network) as http:
        assert (await http.get("https://inside.example/")).status_code == 200
    await refusal(client(policy, resolver, network), "https://other.example/")
    assert network.connects == [("10.1.2.3", 443)]


async def test_a_name_that_does_not_resolve_is_unreachable_not_refused() -> None:
    error = await refusal(client(STRICT), "https://nowhere.example/")
    assert str(error) == "could not reach nowhere.example"
    assert type(error.__cause__) is Unreachable


async def test_a_unix_socket_is_refused() -> None:
    with pytest.raises(EgressRefused):
        await GuardedBackend(LOCAL).connect_unix_socket("/run/redis.sock")
