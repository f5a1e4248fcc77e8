"""Test data as the outside world sends it: Lucca v3 items and events, Elevo SCIM Users.

Every factory is ``make_<thing>(**overrides)``: the defaults describe one consistent
employee, Camille Martin (Lucca id 416), so that the defaults of the different factories
agree with each other. In particular the desired attributes of ``make_lucca_user()`` (with
``manager_profile_id=MANAGER_PROFILE_ID`` and no custom fields) are exactly the attributes of
``make_profile()``: a test changes one side and states what it expects of the difference.

- Lucca factories keep ``None`` as JSON ``null``: Lucca sends nulls.
- SCIM factories drop attributes set to ``None``: a SCIM server leaves absent attributes out.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from app.core import scim
from app.core.lucca_user import LuccaUser, parse_user
from app.core.profile import ElevoProfile, profile_from_scim
from app.core.tenant import TenantConfig
from app.secret import Secret

TODAY = date(2025, 3, 14)
SKIP_FIELD = "e_skip_elevo_sync"

LUCCA_ID = "416"
MANAGER_LUCCA_ID = "12"
MAIL = "camille.martin@acme.example"
LOGIN = "cmartin"
PROFILE_ID = "2819c223-7f76-453a-919d-413861904646"
MANAGER_PROFILE_ID = "0b7c1a4e-5d2f-4e8a-9c3b-6f1d2e3a4b5c"
SCIM_BASE = "https://acme.elevo.example/scim/v2"
LUCCA_SOURCE = "https://acme.ilucca.net"
TENANT = "acme"


def make_lucca_item(**overrides: Any) -> dict[str, Any]:
    """One item of ``GET /api/v3/users`` with the sync's projection (lucca/README.md).

    Overrides replace top-level keys whole: ``make_lucca_item(manager=None)``,
    ``make_lucca_item(extendedData={SKIP_FIELD: True})``. Any extra key (``legalEntity``, ...)
    is added as given.
    """
    item: dict[str, Any] = {
        "id": int(LUCCA_ID),
        "firstName": "Camille",
        "lastName": "Martin",
        "mail": MAIL,
        "login": LOGIN,
        "jobTitle": "Développeuse",
        "employeeNumber": "00042",
        "dtContractStart": "2021-09-01T00:00:00",
        "dtContractEnd": None,
        "modifiedAt": "2025-01-02T08:45:23.120",
        "manager": {"id": int(MANAGER_LUCCA_ID), "name": "Hélène Dubois"},
        "department": {"id": 7, "name": "R&D"},
        "extendedData": {SKIP_FIELD: {"id": 1, "value": False}},
    }
    item.update(overrides)
    return item


def make_lucca_user(**overrides: Any) -> LuccaUser:
    """``parse_user(make_lucca_item(**overrides))``: the typed employee the core works on."""
    return parse_user(make_lucca_item(**overrides))


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _merged(default: dict[str, Any], override: Any) -> Any:
    """A dict override is merged into the default (None drops a key); anything else replaces."""
    if isinstance(override, dict):
        return _without_none(default | override)
    return override


def make_scim_user(**overrides: Any) -> dict[str, Any]:
    """A SCIM User as Elevo (or scim2-server) returns it: Camille's profile, managed by the sync.

    Top-level overrides replace attributes (``title="CTO"``); ``None`` leaves one out
    (``externalId=None`` is a hand-made profile). A dict given for ``name``, ``meta``,
    ``enterprise`` or ``elevo`` (short names for the two extension URNs, which may also be
    given by their URN) is merged into the default object, ``None`` again dropping a key:
    ``make_scim_user(elevo={"syncSource": None})`` is a released profile.
    """
    for short, urn in (("enterprise", scim.ENTERPRISE), ("elevo", scim.ELEVO)):
        if short in overrides:
            overrides[urn] = overrides.pop(short)
    profile_id = overrides.get("id", PROFILE_ID)
    defaults: dict[str, Any] = {
        "schemas": [scim.CORE_USER, scim.ENTERPRISE, scim.ELEVO],
        "id": PROFILE_ID,
        "externalId": LUCCA_ID,
        "userName": MAIL,
        "name": {"givenName": "Camille", "familyName": "Martin"},
        "title": "Développeuse",
        "active": True,
        "emails": [{"value": MAIL, "type": "work", "primary": True}],
        scim.ENTERPRISE: {
            "employeeNumber": "00042",
            "department": "R&D",
            "manager": {"value": MANAGER_PROFILE_ID},
        },
        scim.ELEVO: {"workStartDate": "2021-09-01", "syncSource": scim.SYNC_SOURCE_VALUE},
        "meta": {
            "resourceType": "User",
            "created": "2025-01-02T09:00:00Z",
            "lastModified": "2025-01-02T09:00:00Z",
            "location": f"{SCIM_BASE}/Users/{profile_id}",
            "version": 'W/"1"',
        },
    }
    resource = dict(defaults)
    for key, value in overrides.items():
        resource[key] = _merged(defaults[key], value) if key in defaults else value
    return _without_none(resource)


def make_profile(**overrides: Any) -> ElevoProfile:
    """``profile_from_scim(make_scim_user(**overrides))``, same overrides."""
    return profile_from_scim(make_scim_user(**overrides))


def make_event(topic: str, data: Any, /, **overrides: Any) -> dict[str, Any]:
    """A Lucca webhook event envelope around ``data`` (lucca/README.md, "Event body").

    ``data`` is used as given (it may be malformed on purpose); ``*.updated`` topics carry
    ``previousAttributes``. Overrides replace envelope keys (``id``, ``occurredAt``, even
    ``topic`` or ``data`` to make an odd event).
    """
    event_id = str(overrides.get("id", "7f0c6a1e-3b9d-4c2a-8e5f-1a2b3c4d5e6f"))
    event: dict[str, Any] = {
        "id": event_id,
        "type": "event",
        "url": f"{LUCCA_SOURCE}/lucca-api/events/{event_id}",
        "apiVersion": "2024-11-01",
        "topic": topic,
        "occurredAt": "2025-03-14T08:34:23.001Z",
        "source": LUCCA_SOURCE,
        "data": data,
    }
    if topic.endswith(".updated"):
        event["previousAttributes"] = {}
    event.update(overrides)
    return event


def lucca_ref(kind: str, ident: object) -> dict[str, str]:
    """A Lucca API reference ``{id, type, url}`` as events carry them (ids are strings)."""
    return {"id": str(ident), "type": kind, "url": f"{LUCCA_SOURCE}/lucca-api/{kind}s/{ident}"}


def make_tenant_config(**overrides: Any) -> TenantConfig:
    """Tenant ``acme``: its Lucca is ``acme`` under the test settings' URL template, its Elevo
    is ``SCIM_BASE``, its skip field ``SKIP_FIELD``, no custom fields (so that the other
    factories' defaults agree with what the sync wants)."""
    values: dict[str, Any] = {
        "tenant": TENANT,
        "lucca_subdomain": TENANT,
        "lucca_api_key": Secret("lucca-api-key-0123456789abcdef"),
        "elevo_scim_url": SCIM_BASE,
        "elevo_token": Secret("elevo-token-0123456789abcdef"),
        "skip_field": SKIP_FIELD,
    }
    values.update(overrides)
    return TenantConfig(**values)
