"""No internal address through `elevo.scim_url` (issue 12, point 3).

Every form the issue found accepted is refused by `PUT /tenants/{tenant}`, judged as the egress
guard judges a connection (a name through the injected resolver: there is no DNS here); a
configuration written to Redis behind the API's back is refused at use, before anything is
sent. `ALLOW_HTTP_ELEVO=true` admits http and loopback, nothing else; `ELEVO_ALLOWED_NETWORKS`
admits its networks. That a refused, closed, filtered or TLS-less port all fail alike is
proven in tests/clients/test_egress_local_server.py.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import pytest
from arq.connections import ArqRedis

from app.clients.errors import ElevoUnavailable
from app.store import keys
from tests.clients.egress_fakes import FakeResolver
from tests.clients.test_egress_local_server import LocalServer, local_server  # noqa: F401
from tests.conftest import make_settings
from tests.security.support import ACME_BODY, ADMIN, Served, serve

# Every host the issue found accepted with ALLOW_HTTP_ELEVO=false, and the address it reaches.
ISSUE_HOSTS = {
    "2130706433": "127.0.0.1",
    "0x7f000001": "127.0.0.1",
    "0177.0.0.1": "127.0.0.1",
    "127.1": "127.0.0.1",
    "0": "0.0.0.0",  # noqa: S104 - a destination here
    "[::127.0.0.1]": "127.0.0.1",
    "[64:ff9b::a9fe:a9fe]": "169.254.169.254",
    "169.254.169.254.nip.io": "169.254.169.254",
    "localhost.localdomain": "127.0.0.1",
}
RESOLVER = FakeResolver(
    {
        "169.254.169.254.nip.io": ["169.254.169.254"],
        "elevo.example": ["93.184.215.14"],
        "inside.example": ["10.1.2.3"],
        "lan.example": ["192.168.1.10"],
        "dual.example": ["93.184.215.14", "10.0.0.7"],
    }
)
REFUSED_DETAIL = "$.elevo.scim_url must not name a private or local address"


@asynccontextmanager
async def app_with(**settings: str) -> AsyncIterator[Served]:
    async with serve(make_settings(**settings), resolver=RESOLVER) as served:
        yield served


async def put_scim_url(served: Served, url: str, scheme: str = "https") -> tuple[int, str]:
    body = copy.deepcopy(ACME_BODY)
    body["elevo"]["scim_url"] = f"{scheme}://{url}/scim/v2"
    response = await served.put_tenant("acme", body)
    return response.status_code, response.json().get("detail", "")


@pytest.mark.parametrize("host", ISSUE_HOSTS)
async def test_each_form_the_issue_found_is_refused_at_put(redis: ArqRedis, host: str) -> None:
    async with app_with(ALLOW_HTTP_ELEVO="false") as served:
        assert await put_scim_url(served, host) == (400, REFUSED_DETAIL)
        assert not await redis.exists(keys.tenant_config("acme"))


@pytest.mark.parametrize("host", ["10.0.0.1", "dual.example", "[::ffff:10.0.0.1]", "localhost"])
async def test_private_addresses_and_names_are_refused_at_put(redis: ArqRedis, host: str) -> None:
    async with app_with(ALLOW_HTTP_ELEVO="false") as served:
        assert await put_scim_url(served, host) == (400, REFUSED_DETAIL)


async def test_a_public_name_or_one_that_does_not_resolve_yet_is_accepted(
    redis: ArqRedis,
) -> None:
    async with app_with(ALLOW_HTTP_ELEVO="false") as served:
        assert (await put_scim_url(served, "elevo.example"))[0] == 201
        # Checked again at every connection: the name may resolve anywhere tomorrow.
        assert (await put_scim_url(served, "not-yet.example"))[0] == 200


@pytest.mark.parametrize(("host", "reaches"), ISSUE_HOSTS.items())
async def test_allow_http_elevo_admits_http_and_loopback_only(
    redis: ArqRedis, host: str, reaches: str
) -> None:
    async with app_with(ALLOW_HTTP_ELEVO="true") as served:
        status, _ = await put_scim_url(served, host, scheme="http")
        assert status == (201 if reaches == "127.0.0.1" else 400)


async def test_allow_http_elevo_admits_no_private_network(redis: ArqRedis) -> None:
    async with app_with(ALLOW_HTTP_ELEVO="true") as served:
        for host in ("10.0.0.1", "lan.example", "169.254.169.254"):
            assert await put_scim_url(served, host, scheme="http") == (400, REFUSED_DETAIL)


async def test_elevo_allowed_networks_admit_the_networks_named(redis: ArqRedis) -> None:
    async with app_with(ALLOW_HTTP_ELEVO="false", ELEVO_ALLOWED_NETWORKS="10.0.0.0/8") as served:
        assert (await put_scim_url(served, "10.1.2.3"))[0] == 201
        assert (await put_scim_url(served, "inside.example"))[0] == 200
        for host in ("lan.example", "127.1", "169.254.169.254.nip.io"):
            assert await put_scim_url(served, host) == (400, REFUSED_DETAIL)


@pytest.mark.parametrize("host", ["2130706433", "127.1", "[::127.0.0.1]", "localhost.localdomain"])
async def test_a_stored_configuration_is_refused_at_use_before_anything_is_sent(
    redis: ArqRedis,
    local_server: LocalServer,  # noqa: F811 - the fixture
    host: str,
) -> None:
    async with app_with(ALLOW_HTTP_ELEVO="false") as served:
        assert (await served.put_tenant("acme", ACME_BODY)).status_code == 201
        # Written behind the API's back (an older version, a restored backup, a hand edit).
        document = orjson.loads(await redis.get(keys.tenant_config("acme")) or b"")
        document["elevo"]["scim_url"] = f"https://{host}:{local_server.port}/scim/v2"
        await redis.set(keys.tenant_config("acme"), orjson.dumps(document))
        served.resources.contexts.forget("acme")
        tenant_ctx = await served.resources.contexts.get("acme")
        assert tenant_ctx is not None
        with pytest.raises(ElevoUnavailable, match="address not allowed"):
            await tenant_ctx.elevo.list_page(start_index=1, count=1)
        # Shown as stored, so the operator sees what to fix.
        shown = await served.client.get("/tenants/acme", headers=ADMIN)
        assert str(local_server.port) in shown.json()["elevo"]["scim_url"]
    assert local_server.connections == 0
