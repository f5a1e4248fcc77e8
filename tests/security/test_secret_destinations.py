"""Issue 12, point 1: changing where a secret goes requires the secret again.

The probe: the admin token changed only `elevo.scim_url` to a listener of theirs, kept the token
as "***", started a full run and received the stored Elevo token. Every row of
`SECRET_DESTINATIONS` is tried here, over HTTP, each part of the destination on its own.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.schemas.tenant_update import SECRET_DESTINATIONS
from tests.security.support import (
    ACME_API_KEY,
    ACME_BODY,
    ACME_ELEVO_TOKEN,
    ADMIN,
    Served,
    leaked,
)

# A new value for each destination of the table: a row added there fails
# `test_every_destination_is_tried` until its destination gets one.
NEW_DESTINATIONS: dict[str, list[str]] = {
    "elevo.scim_url": [
        "https://listener.example/acme/scim/v2",  # host
        "https://elevo.example:8443/acme/scim/v2",  # port
        "https://elevo.example/other/scim/v2",  # path
        "https://elevo.example/acme/scim/v2/Users/..",  # path, again
    ],
    "lucca.subdomain": ["acme-listener"],
    "lucca.domain": ["ilucca-demo.net", "ilucca.ch"],
    "alerts_url": ["https://listener.example/acme/hook", "https://alerts.example/other"],
}
CASES = [
    (secret, destination, value)
    for secret, destinations in SECRET_DESTINATIONS.items()
    for destination in destinations
    for value in NEW_DESTINATIONS[destination]
]
# The secret as it is sent again: in clear, what the issue asks for.
AGAIN = {
    "lucca.api_key": "acme-lucca-key-rotated-1",
    "elevo.token": "acme-elevo-token-rotated-1",
    "alerts_secret": "acme-alerts-secret-rotated-1",
    "lucca.oauth.client_secret": "acme-oauth-secret-rotated-1",
}
OAUTH = {"client_id": "acme-sync", "client_secret": "acme-oauth-secret-0"}


async def shown_with_oauth(served: Served) -> dict[str, Any]:
    """acme's config as a GET shows it, once it carries an OAuth client (issue 15)."""
    body = copy.deepcopy(ACME_BODY)
    body["lucca"]["oauth"] = OAUTH
    assert (await served.put_tenant("acme", body)).status_code == 200
    shown: dict[str, Any] = (await served.client.get("/tenants/acme", headers=ADMIN)).json()
    return shown


def others_again(body: dict[str, Any], secret: str, destination: str) -> dict[str, Any]:
    """The other secrets sent to `destination`, sent again in clear."""
    for other, destinations in SECRET_DESTINATIONS.items():
        if other != secret and destination in destinations:
            body = with_value(body, other, AGAIN[other])
    return body


def with_value(body: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    *parents, leaf = path.split(".")
    node = changed
    for part in parents:
        node = node[part]
    node[leaf] = value
    return changed


def without(body: dict[str, Any], path: str) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    *parents, leaf = path.split(".")
    node = changed
    for part in parents:
        node = node[part]
    del node[leaf]
    return changed


def test_every_destination_is_tried() -> None:
    destinations = {path for paths in SECRET_DESTINATIONS.values() for path in paths}
    assert destinations == set(NEW_DESTINATIONS)
    assert set(SECRET_DESTINATIONS) == set(AGAIN)


@pytest.mark.parametrize("kept", ["***", None], ids=["redacted", "omitted"])
@pytest.mark.parametrize(("secret", "destination", "value"), CASES)
async def test_a_new_destination_without_its_secret_is_a_400_naming_it(
    served: Served, secret: str, destination: str, value: str, kept: str | None
) -> None:
    shown = await shown_with_oauth(served)
    moved = others_again(with_value(shown, destination, value), secret, destination)
    moved = without(moved, secret) if kept is None else with_value(moved, secret, kept)
    response = await served.put_tenant("acme", moved)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_body"
    assert f"$.{secret}" in response.json()["detail"]
    assert destination in response.json()["detail"]
    assert leaked(response.content) == []
    after = (await served.client.get("/tenants/acme", headers=ADMIN)).json()
    assert after == shown  # nothing stored


@pytest.mark.parametrize(("secret", "destination", "value"), CASES)
async def test_a_new_destination_with_its_secret_again_is_stored(
    served: Served, secret: str, destination: str, value: str
) -> None:
    shown = await shown_with_oauth(served)
    moved = with_value(with_value(shown, destination, value), secret, AGAIN[secret])
    response = await served.put_tenant("acme", others_again(moved, secret, destination))
    assert response.status_code == 200, response.text
    config = await served.resources.tenants.get("acme")
    assert config is not None
    stored = {
        "lucca.api_key": config.lucca_api_key,
        "elevo.token": config.elevo_token,
        "alerts_secret": config.alerts_secret,
        "lucca.oauth.client_secret": (
            None if config.lucca_oauth is None else config.lucca_oauth.client_secret
        ),
    }[secret]
    assert stored is not None
    assert stored.reveal() == AGAIN[secret]


async def test_the_probe_sends_nothing_to_the_listener(served: Served) -> None:
    """The issue's probe: the URL moved, the token kept as "***", then a full run."""
    shown = (await served.client.get("/tenants/acme", headers=ADMIN)).json()
    shown["elevo"]["scim_url"] = "https://listener.example/scim/v2"
    assert (await served.put_tenant("acme", shown)).status_code == 400
    started = await served.client.post("/sync/acme", json={}, headers=ADMIN)
    assert started.status_code == 202
    config = await served.resources.tenants.get("acme")
    assert config is not None
    # The run, whenever it runs, sends the token where it always went.
    assert config.elevo_scim_url == ACME_BODY["elevo"]["scim_url"]
    assert config.elevo_token.reveal() == ACME_ELEVO_TOKEN


async def test_an_unchanged_destination_keeps_its_secret_as_before(served: Served) -> None:
    shown = (await served.client.get("/tenants/acme", headers=ADMIN)).json()
    # The same URL spelt otherwise is the same destination (normalised: trailing slash, case).
    shown["elevo"]["scim_url"] = "HTTPS://elevo.example/acme/scim/v2/"
    shown["timezone"] = "Asia/Tokyo"
    assert (await served.put_tenant("acme", shown)).status_code == 200
    config = await served.resources.tenants.get("acme")
    assert config is not None
    assert config.lucca_api_key.reveal() == ACME_API_KEY
    assert config.elevo_token.reveal() == ACME_ELEVO_TOKEN


async def test_the_webhook_secrets_stay_with_a_new_subdomain(served: Served) -> None:
    """They are never sent anywhere (they check what Lucca sends us): only the API key, which
    goes to the new subdomain, is asked again."""
    shown = (await served.client.get("/tenants/acme", headers=ADMIN)).json()
    moved = with_value(with_value(shown, "lucca.subdomain", "acme2"), "lucca.api_key", "k-2")
    assert (await served.put_tenant("acme", moved)).status_code == 200
    after = (await served.client.get("/tenants/acme", headers=ADMIN)).json()
    assert after["lucca"]["webhook_secret"] == ["***", "***"]
