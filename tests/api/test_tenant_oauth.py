"""`lucca.oauth` in a tenant's config (issue 15): kept like every secret, shown as "***",
encrypted at rest, and needed again when the Lucca host changes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from arq.connections import ArqRedis

from app.crypto import SecretBox
from app.schemas.errors import InvalidDocument
from app.schemas.tenant import parse_tenant, tenant_view
from app.schemas.tenant_update import parse_tenant_update
from app.secret import Secret
from app.store import keys
from app.store.tenants import TenantStore
from tests.api.test_schemas import body
from tests.conftest import TEST_SECRETS_KEY

CLIENT_SECRET = "oauth-client-secret-7e6d5c"
OAUTH = {"client_id": "elevo-sync", "client_secret": CLIENT_SECRET}


def parsed(document: dict[str, Any], existing: Any = None) -> Any:
    return parse_tenant("acme", document, existing=existing, allow_http_elevo=True, egress=None)


def test_oauth_is_read_and_shown_redacted() -> None:
    config = parsed(body(lucca={"oauth": OAUTH}))
    assert config.lucca_oauth.client_id == "elevo-sync"
    assert config.lucca_oauth.client_secret == Secret(CLIENT_SECRET)
    view = tenant_view(config)
    assert view["lucca"]["oauth"] == {"client_id": "elevo-sync", "client_secret": "***"}
    assert CLIENT_SECRET not in orjson.dumps(view).decode()


def test_a_tenant_without_oauth_shows_none() -> None:
    assert "oauth" not in tenant_view(parsed(body()))["lucca"]


def test_the_view_sent_back_keeps_the_secret_and_null_removes_it() -> None:
    stored = parsed(body(lucca={"oauth": OAUTH}))
    again = parsed(tenant_view(stored), stored)
    assert again.lucca_oauth == stored.lucca_oauth
    omitted = parsed(body(), stored)
    assert omitted.lucca_oauth == stored.lucca_oauth
    removed = parsed(body(lucca={"oauth": None}), stored)
    assert removed.lucca_oauth is None


def test_a_new_oauth_client_needs_its_secret() -> None:
    with pytest.raises(InvalidDocument, match=r"lucca\.oauth\.client_secret is required"):
        parsed(body(lucca={"oauth": {"client_id": "elevo-sync"}}))


@pytest.mark.parametrize("client_id", ["", "has space", "x" * 201])
def test_a_malformed_client_id_is_refused(client_id: str) -> None:
    with pytest.raises(InvalidDocument):
        parsed(body(lucca={"oauth": {"client_id": client_id, "client_secret": "s"}}))


def test_a_new_lucca_subdomain_needs_the_client_secret_again() -> None:
    stored = parsed(body(lucca={"oauth": OAUTH}))
    moved = body(lucca={"subdomain": "evil", "oauth": {"client_id": "elevo-sync"}})
    moved["lucca"]["api_key"] = "another-api-key"
    with pytest.raises(InvalidDocument, match=r"lucca\.oauth\.client_secret is required"):
        parse_tenant_update(
            "acme", orjson.dumps(moved), existing=stored, allow_http_elevo=True, egress=None
        )
    moved["lucca"]["oauth"]["client_secret"] = "new-secret"
    update = parse_tenant_update(
        "acme", orjson.dumps(moved), existing=stored, allow_http_elevo=True, egress=None
    )
    assert "lucca.oauth.client_secret" in update.guarded


async def test_the_client_secret_is_encrypted_at_rest(redis: ArqRedis) -> None:
    store = TenantStore(redis, SecretBox((Secret(TEST_SECRETS_KEY),)))
    config = parsed(body(lucca={"oauth": OAUTH}))
    await store.put(config)
    raw = await redis.get(keys.tenant_config("acme"))
    assert raw is not None
    assert CLIENT_SECRET.encode() not in raw
    read = await store.get("acme")
    assert read is not None
    assert read.lucca_oauth == config.lucca_oauth
    assert await store.reencrypt_all() == 1
    again = await store.get("acme")
    assert again is not None
    assert again.lucca_oauth == config.lucca_oauth
