"""Where a tenant's configuration sends its secrets: judged when the configuration is PUT.

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
from app.schemas.urls import refused_address
from app.service.resources import Resources

log = logging.getLogger(__name__)

LOOKUP_SECONDS: Final = 3.0


async def check_destinations(res: Resources, config: TenantConfig) -> None:
    """Raise the schema's `InvalidDocument` when the SCIM URL's host resolves to an address
    the egress policy refuses."""
    parts = urlsplit(config.elevo_scim_url)
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
            "tenant=%s elevo host does not resolve now; checked at every connection", config.tenant
        )
        return
    policy = res.settings.egress_policy()
    try:
        for address in addresses:
            policy.check(address)
    except AddressNotAllowed:
        raise refused_address() from None
