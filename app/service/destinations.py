"""Where a tenant's configuration sends its secrets (the Elevo token to the SCIM URL, signed
alerts to the alerts URL): judged when the configuration is PUT.

The schema refuses a host that spells a refused address; a name is resolved here, so that one
pointing at the metadata service or the operator's network (169.254.169.254.nip.io) is a 400
at once rather than a failing sync later. A name that does not resolve now is accepted: the
egress guard resolves and judges it again at every connection, which is the defence that holds
(a name may resolve elsewhere tomorrow).
"""

from __future__ import annotations

import logging
from ipaddress import ip_address
from typing import Final
from urllib.parse import urlsplit

import anyio

from app.clients.egress import AddressNotAllowed, literal_address
from app.core.tenant import TenantConfig
from app.schemas.urls import ALERTS_URL_PATH, SCIM_URL_PATH, refused_address
from app.service.resources import Resources

log = logging.getLogger(__name__)

LOOKUP_SECONDS: Final = 3.0


async def check_destinations(res: Resources, config: TenantConfig) -> None:
    """Raise the schema's `InvalidDocument` when the host of a URL the config sends a secret
    to (the SCIM URL, the alerts URL) resolves to an address the egress policy refuses."""
    await _check_url(res, config, config.elevo_scim_url, SCIM_URL_PATH)
    if config.alerts_url is not None:
        await _check_url(res, config, config.alerts_url, ALERTS_URL_PATH)


async def _check_url(res: Resources, config: TenantConfig, url: str, path: str) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host or literal_address(host) is not None:
        return  # a literal address was judged by the schema
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with anyio.fail_after(LOOKUP_SECONDS):
            answers = await res.resolver(host, port)
        addresses = [ip_address(answer) for answer in answers]
    except (OSError, TimeoutError, ValueError):
        log.info(
            "tenant=%s %s does not resolve now; checked at every connection", config.tenant, path
        )
        return
    policy = res.settings.egress_policy()
    try:
        for address in addresses:
            policy.check(address)
    except AddressNotAllowed:
        raise refused_address(path) from None
