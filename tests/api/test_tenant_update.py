"""What a PUT changes (app/schemas/tenant_update.py): the paths it reports, the ones only the
admin may change, and a destination that moves without its secret (issue 12, point 1)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.core.tenant import TenantConfig
from app.schemas.errors import InvalidDocument
from app.schemas.tenant import parse_tenant, tenant_view
from app.schemas.tenant_update import TenantUpdate, parse_tenant_update
from tests.api.test_schemas import API_KEY, ELEVO_TOKEN, WEBHOOK, body

STORED = parse_tenant(
    "acme",
    body(lucca={"webhook_secret": WEBHOOK}, elevo={"scim_url": "http://scim.example/acme/v2"}),
    existing=None,
    allow_http_elevo=True,
    egress=None,
)


def update(document: dict[str, Any], existing: TenantConfig | None = STORED) -> TenantUpdate:
    raw = orjson.dumps(document)
    return parse_tenant_update("acme", raw, existing=existing, allow_http_elevo=True, egress=None)


def shown(**changes: Any) -> dict[str, Any]:
    """What a GET shows of STORED, with some settings changed."""
    view = tenant_view(STORED)
    for path, value in changes.items():
        section, _, leaf = path.partition("__")
        if leaf:
            view[section][leaf] = value
        else:
            view[section] = value
    return view


def test_the_view_sent_back_changes_nothing() -> None:
    assert update(shown()).changed == ()
    assert update(shown()).config == STORED


def test_settings_changed_are_named_by_path() -> None:
    changed = update(
        shown(
            timezone="UTC", guard__max_suspend_count=9, custom_fields={"site": "legalEntity.name"}
        )
    )
    assert changed.changed == ("custom_fields.site", "guard.max_suspend_count", "timezone")
    assert changed.guarded == ()


def test_a_new_tenant_changes_everything_and_is_guarded() -> None:
    created = update(body(lucca={"webhook_secret": WEBHOOK}), existing=None)
    assert {"lucca.api_key", "elevo.token", "elevo.scim_url", "timezone"} <= set(created.changed)
    assert {"lucca.api_key", "elevo.token", "elevo.scim_url"} <= set(created.guarded)


@pytest.mark.parametrize(
    "url",
    [
        "https://scim.example/acme/v2",  # scheme
        "http://scim2.example/acme/v2",  # host
        "http://scim.example:8080/acme/v2",  # port
        "http://scim.example/acme/v3",  # path
        "http://127.0.0.1/acme/v2",  # an address for the host
    ],
)
def test_any_part_of_the_scim_url_is_a_new_destination(url: str) -> None:
    with pytest.raises(InvalidDocument, match=r"^\$\.elevo\.token is required") as info:
        update(shown(elevo__scim_url=url))
    assert "elevo.scim_url" in str(info.value)
    moved = update(shown(elevo__scim_url=url, elevo__token="new-token"))
    assert moved.config.elevo_token.reveal() == "new-token"
    assert moved.guarded == ("elevo.scim_url", "elevo.token")


@pytest.mark.parametrize(
    ("destination", "value"), [("subdomain", "acme2"), ("domain", "ilucca-test.net")]
)
def test_a_new_lucca_host_needs_the_api_key(destination: str, value: str) -> None:
    with pytest.raises(InvalidDocument, match=r"^\$\.lucca\.api_key is required"):
        update(shown(**{f"lucca__{destination}": value}))
    moved = update(shown(**{f"lucca__{destination}": value, "lucca__api_key": "key-2"}))
    assert moved.guarded == ("lucca.api_key", f"lucca.{destination}")
    assert moved.config.webhook_secrets == STORED.webhook_secrets


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("lucca__api_key", API_KEY),  # the stored value: still a change (no oracle)
        ("elevo__token", ELEVO_TOKEN),
        ("lucca__webhook_secret", "another"),
        ("lucca__webhook_secret", None),  # removed
        ("lucca__webhook_secret", [WEBHOOK, "added"]),
    ],
)
def test_a_secret_sent_or_removed_is_a_guarded_change(path: str, value: object) -> None:
    changed = update(shown(**{path: value}))
    assert changed.guarded == (path.replace("__", "."),)
