"""The URLs a tenant config may name, where the service sends a credential or a signed notice
(SSRF): the Elevo SCIM URL (its token) and the alerts URL (notices signed with its secret).

A host is judged as the egress guard (app/clients/egress.py) judges a connection: a literal
address in any form a resolver reads (2130706433, 0x7f000001, 127.1, [::127.0.0.1], NAT64...)
and the loopback names are refused here unless the policy admits them; names are resolved by
the PUT's use case (app/service/destinations.py), and at every connection.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Final
from urllib.parse import urlsplit

from app.clients.egress import AddressNotAllowed, EgressPolicy, validate_host_literal
from app.schemas.errors import InvalidDocument

_HOST_RE: Final = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")
_IPV6_RE: Final = re.compile(r"[0-9a-f:.]+")
SCIM_URL_PATH: Final = "$.elevo.scim_url"
ALERTS_URL_PATH: Final = "$.alerts_url"
PRIVATE_ADDRESS: Final = "must not name a private or local address"


def scim_url(raw: str, *, allow_http: bool, egress: EgressPolicy | None) -> str:
    """The SCIM URL, normalised (lowercase scheme, no trailing slash); `InvalidDocument`
    otherwise. `egress` judges a host that spells an address; None skips that (a stored config
    read back: every connection checks it again)."""
    return outbound_url(raw, allow_http=allow_http, egress=egress, path=SCIM_URL_PATH)


def alerts_url(raw: str, *, allow_http: bool, egress: EgressPolicy | None) -> str:
    """The alerts URL, under the same rules as the SCIM URL (the same egress guard too)."""
    return outbound_url(raw, allow_http=allow_http, egress=egress, path=ALERTS_URL_PATH)


def outbound_url(raw: str, *, allow_http: bool, egress: EgressPolicy | None, path: str) -> str:
    """The URL, normalised; `InvalidDocument` naming `path` otherwise."""
    _refused = partial(_refusal, path)
    schemes = ("https", "http") if allow_http else ("https",)
    expected = "an absolute http(s) URL" if allow_http else "an absolute https URL"
    if any(ord(c) < 32 or ord(c) == 127 or c.isspace() for c in raw):
        raise _refused("must not contain spaces or control characters")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise _refused(f"must be {expected}") from None
    if parts.scheme.lower() not in schemes:
        raise _refused(f"must be {expected}")
    if "@" in parts.netloc:
        raise _refused("must not contain user information")
    if "?" in raw or "#" in raw:
        raise _refused("must not have a query or a fragment")
    host = parts.hostname or ""
    if not _valid_host(host):
        raise _refused(f"must be {expected} with a host")
    if egress is not None and not _host_allowed(host, egress):
        # A credential would be sent there: no loopback, private or metadata addresses.
        raise _refused(PRIVATE_ADDRESS)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    # Without a trailing slash, clients append "/Users" to it as they are.
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


def _refusal(path: str, rule: str) -> InvalidDocument:
    return InvalidDocument(f"{path} {rule}")


def _host_allowed(host: str, egress: EgressPolicy) -> bool:
    try:
        validate_host_literal(host, egress)
    except AddressNotAllowed:
        return False
    return True


def refused_address(path: str) -> InvalidDocument:
    """The refusal of a URL whose host resolves to an address the egress policy refuses."""
    return _refusal(path, PRIVATE_ADDRESS)


def _valid_host(host: str) -> bool:
    if ":" in host:  # an IPv6 literal, brackets already removed by urlsplit
        return bool(_IPV6_RE.fullmatch(host))
    return bool(_HOST_RE.fullmatch(host)) and ".." not in host
