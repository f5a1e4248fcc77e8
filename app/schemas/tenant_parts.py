"""The parts of a tenant's config body (app/schemas/tenant.py): the field types, the checks a
secret passes, and the nested bodies - `lucca` (with its `oauth`), `elevo` and `guard`.
msgspec Structs, pure, no I/O; errors are `InvalidDocument`s naming the path, never a value.
"""

from __future__ import annotations

from typing import Annotated, Final

from msgspec import UNSET, Meta, Struct, UnsetType

from app.core.tenant import LuccaDomain
from app.schemas.common import (
    FIELD_CODE_PATTERN,
    FIELD_NAME_PATTERN,
    FIELD_PATH_PATTERN,
    NIGHTLY_AT_PATTERN,
    OAUTH_CLIENT_ID_PATTERN,
    SCIM_URL_PATTERN,
    SECRET_PATTERN,
    SUBDOMAIN_PATTERN,
    TENANT_PATTERN,
    require,
    whole,
)
from app.secret import REDACTED

MAX_SECRET_LENGTH: Final = 4096
MAX_CUSTOM_FIELDS: Final = 100
MAX_FIELD_NAME_LENGTH: Final = 128
SecretText = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_SECRET_LENGTH,
        pattern=SECRET_PATTERN,
        description='A credential; "***" (what a GET shows) or omitted keeps the stored one.',
        extra_json_schema={"writeOnly": True},
    ),
]
TenantName = Annotated[str, Meta(pattern=TENANT_PATTERN)]
Subdomain = Annotated[
    str,
    Meta(
        pattern=SUBDOMAIN_PATTERN,
        description="One lowercase DNS label, never a URL or a host (SSRF).",
    ),
]
FieldCode = Annotated[str, Meta(pattern=FIELD_CODE_PATTERN)]
FieldName = Annotated[
    str, Meta(min_length=1, max_length=MAX_FIELD_NAME_LENGTH, pattern=FIELD_NAME_PATTERN)
]
FieldPath = Annotated[
    str,
    Meta(
        pattern=FIELD_PATH_PATTERN,
        description="A Lucca v3 field path, e.g. 'extendedData.e_cost_center'.",
    ),
]
CustomFields = Annotated[
    dict[FieldName, FieldPath],
    Meta(
        max_length=MAX_CUSTOM_FIELDS,
        description="Elevo custom field name -> Lucca v3 field path.",
    ),
]
NightlyAt = Annotated[
    str,
    Meta(
        pattern=NIGHTLY_AT_PATTERN,
        description=(
            "Local time 'HH:MM' of the nightly reconciliation. Omitted (or null): a minute"
            " of 01:00-04:59 derived from a stable hash of the tenant's name, so that"
            " tenants' nightly runs spread over the night."
        ),
    ),
]
Timezone = Annotated[str, Meta(description="An IANA time zone.")]
ScimUrl = Annotated[
    str,
    Meta(
        pattern=SCIM_URL_PATTERN,
        description=(
            "Absolute https URL with a host and no user info, query or fragment "
            "(http only with ALLOW_HTTP_ELEVO), whose host is no loopback, private, link-local "
            "or other internal address in any form, and resolves to none (loopback admitted "
            "with ALLOW_HTTP_ELEVO, the networks of ELEVO_ALLOWED_NETWORKS)."
        ),
    ),
]
AlertsUrl = Annotated[
    str,
    Meta(
        pattern=SCIM_URL_PATTERN,
        description=(
            "Where the tenant's alerts are POSTed, signed with alerts_secret: the Elevo SCIM "
            "URL's rules (https, a public host; http and loopback only with ALLOW_HTTP_ELEVO)."
        ),
    ),
]


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def check_secret(value: str, field: str) -> None:
    require(bool(value.strip()), f"`{field}` must not be empty")
    # Secrets end up in HTTP headers, where a control character is an injection or an error.
    require(not _has_control(value), f"`{field}` must not contain control characters")


def check_header_secret(value: str, field: str) -> None:
    """A credential sent in an HTTP header: printable ASCII, no space at either end (a header
    cannot carry the rest, and a pasted space would make every call fail later)."""
    check_secret(value, field)
    if value == REDACTED:
        return
    require(
        value == value.strip(), f"`{field}` must not start or end with spaces (a pasted extra?)"
    )
    require(
        value.isascii() and value.isprintable(),
        f"`{field}` must be printable ASCII characters: it travels in an HTTP header",
    )


class OAuthBody(Struct, forbid_unknown_fields=True):
    """An OAuth client of Lucca's current API, for the webhook endpoint (issue 15)."""

    client_id: Annotated[str, Meta(pattern=OAUTH_CLIENT_ID_PATTERN)]
    client_secret: SecretText | UnsetType = UNSET

    def __post_init__(self) -> None:
        require(
            whole(OAUTH_CLIENT_ID_PATTERN, self.client_id),
            "`oauth.client_id` must be 1 to 200 letters, digits and '._:-'",
        )
        if isinstance(self.client_secret, str):
            check_secret(self.client_secret, "oauth.client_secret")


class LuccaBody(Struct, forbid_unknown_fields=True):
    subdomain: Subdomain
    domain: LuccaDomain | None = None
    api_key: SecretText | UnsetType | None = UNSET
    webhook_secret: Annotated[
        SecretText | list[SecretText] | UnsetType | None,
        Meta(description="One secret or several (rotation), each once; null removes them."),
    ] = UNSET
    oauth: Annotated[
        OAuthBody | UnsetType | None,
        Meta(
            description="Lucca OAuth client (webhook endpoints, events); omitted keeps the "
            "stored one, null removes it."
        ),
    ] = UNSET

    def __post_init__(self) -> None:
        require(
            whole(SUBDOMAIN_PATTERN, self.subdomain),
            "`subdomain` must be a lowercase DNS label (a-z, 0-9 and inner '-', at most 63 "
            "characters), e.g. 'acme' for acme.ilucca.net",
        )
        require(self.api_key is not None, "`api_key` is required")
        if isinstance(self.api_key, str):
            check_header_secret(self.api_key, "api_key")
        secrets = self.webhook_secret
        if isinstance(secrets, str):
            check_secret(secrets, "webhook_secret")
        elif isinstance(secrets, list) and not all(item == REDACTED for item in secrets):
            # Which stored secret a "***" stands for would be a guess once the list changes.
            require(
                REDACTED not in secrets,
                "`webhook_secret` cannot mix '***' with new secrets: send every secret in clear",
            )
            for secret in secrets:
                check_secret(secret, "webhook_secret")
            require(len(set(secrets)) == len(secrets), "`webhook_secret` lists a secret twice")


class ElevoBody(Struct, forbid_unknown_fields=True):
    scim_url: ScimUrl
    token: SecretText | UnsetType | None = UNSET

    def __post_init__(self) -> None:
        require(self.token is not None, "`token` is required")
        if isinstance(self.token, str):
            check_header_secret(self.token, "token")


class GuardBody(Struct, forbid_unknown_fields=True):
    max_suspend_ratio: Annotated[float, Meta(ge=0, le=1)] | None = None
    max_suspend_count: Annotated[int, Meta(ge=0)] | None = None
