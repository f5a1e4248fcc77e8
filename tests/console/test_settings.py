"""The settings page over ASGI: secrets masked and kept, errors at their field, an operator
kept off secrets and destinations, and Test connection against a stand-in Lucca and Elevo."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx

from app.service.access import Scope
from app.service.resources import Resources
from app.service.tokens import issue_token
from tests.conftest import TEST_ADMIN_TOKEN
from tests.factories import make_tenant_config


async def _sign_in(client: httpx.AsyncClient, token: str = TEST_ADMIN_TOKEN) -> str:
    await client.post("/console/sign-in", data={"token": token})
    page = await client.get("/console/t/acme/settings")
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def _form(page: str) -> dict[str, str]:
    inputs = re.findall(r'<input id="f-[^"]+" name="([^"]+)" type="[^"]+" value="([^"]*)"', page)
    area = re.search(r'name="custom_fields"[^>]*>([^<]*)</textarea>', page)
    return dict(inputs) | {"custom_fields": area.group(1) if area else ""}


async def test_secrets_are_masked_and_kept_when_left_as_stars(
    asgi_console: tuple[httpx.AsyncClient, Resources],
) -> None:
    client, res = asgi_console
    csrf = await _sign_in(client)
    page = (await client.get("/console/t/acme/settings")).text
    assert "lucca-api-key-0123456789abcdef" not in page
    assert "elevo-token-0123456789abcdef" not in page
    form = _form(page)
    assert form["lucca.api_key"] == "***"
    saved = await client.post(
        "/console/t/acme/settings", data=form | {"csrf": csrf, "skip_field": "e_other_skip"}
    )
    assert saved.status_code == 200
    assert "Saved" in saved.text
    config = await res.tenants.get("acme")
    assert config is not None
    assert config.skip_field == "e_other_skip"
    assert config.lucca_api_key.reveal() == "lucca-api-key-0123456789abcdef"


async def test_an_error_is_shown_at_its_field_and_no_secret_is_sent_back(
    asgi_console: tuple[httpx.AsyncClient, Resources],
) -> None:
    client, res = asgi_console
    csrf = await _sign_in(client)
    form = _form((await client.get("/console/t/acme/settings")).text)
    refused = await client.post(
        "/console/t/acme/settings",
        data=form | {"csrf": csrf, "nightly_at": "25:99", "elevo.token": "new-token-abcdef"},
    )
    assert refused.status_code == 422
    assert 'id="e-nightly_at"' in refused.text
    assert "new-token-abcdef" not in refused.text
    config = await res.tenants.get("acme")
    assert config is not None
    assert config.nightly_at != "25:99"


async def test_an_operator_cannot_change_secrets_or_destinations(
    asgi_console: tuple[httpx.AsyncClient, Resources],
) -> None:
    client, res = asgi_console
    operator = await issue_token(
        res, "acme", scope=Scope.OPERATOR, name="hr", lifetime=timedelta(hours=1), by="admin"
    )
    csrf = await _sign_in(client, operator.token)
    form = _form((await client.get("/console/t/acme/settings")).text)
    sneaky = {"elevo.scim_url": "https://evil.example/scim/v2", "lucca.api_key": "stolen-key-123"}
    saved = await client.post(
        "/console/t/acme/settings", data=form | sneaky | {"csrf": csrf, "timezone": "UTC"}
    )
    assert saved.status_code == 200
    config = await res.tenants.get("acme")
    assert config is not None
    assert config.timezone == "UTC"
    assert config.elevo_scim_url == make_tenant_config().elevo_scim_url
    assert config.lucca_api_key.reveal() == "lucca-api-key-0123456789abcdef"
