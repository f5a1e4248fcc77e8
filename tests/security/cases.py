"""Every bad input the security tests send, what the service must answer, and the docs table.

`test_bad_inputs.py` sends each case to the app and checks its status and `error` code;
`docs/security.md` holds the table `python -m tests.security.cases` prints, and
`test_docs.py` keeps the two identical.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.api.limits import MAX_BODY_BYTES
from app.api.routes.tenants import MAX_BODY_BYTES as TENANT_MAX_BODY_BYTES
from app.api.routes.webhooks import MAX_BODY_BYTES as WEBHOOK_MAX_BODY_BYTES
from tests.conftest import TEST_ADMIN_TOKEN
from tests.security.support import (
    ACME_API_KEY,
    ACME_ELEVO_TOKEN,
    ACME_WEBHOOK,
    ACME_WEBHOOK_OLD,
    ADMIN,
    BETA_WEBHOOK,
    lucca_timestamp,
    sign,
    signed_headers,
    tenant_body,
)


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None


@dataclass(frozen=True)
class BadInput:
    route: str
    what: str  # markdown, one line
    status: int
    error: str | None  # the answer's `error` code; None for a non-JSON answer
    build: Callable[[], Sent]  # called at send time: timestamps are fresh
    queues: bool = False  # whether the service may queue work for it (a valid signed event)


# -- webhooks ---------------------------------------------------------------------------------

WEBHOOK = "POST /webhooks/lucca/{tenant}"


def event(**overrides: Any) -> bytes:
    """A Lucca `employee.updated` event for user 2, with a fresh id."""
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "type": "event",
        "topic": "employee.updated",
        "data": {"id": "2", "type": "employee"},
        "previousAttributes": {},
    }
    body.update(overrides)
    return orjson.dumps(body)


def hook(
    body: bytes | None = None,
    *,
    tenant: str = "acme",
    secret: str = ACME_WEBHOOK,
    offset: float = 0.0,
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
) -> Callable[[], Sent]:
    """A webhook signed with `secret`, `offset` seconds off, then `headers` and `drop` applied."""

    def build() -> Sent:
        raw = event() if body is None else body
        sent = signed_headers(secret, raw, offset_seconds=offset)
        sent.pop("Content-Type")
        if content_type is not None:
            sent["Content-Type"] = content_type
        sent.update(headers or {})
        for name in drop:
            sent.pop(name, None)
        return Sent("POST", f"/webhooks/lucca/{tenant}", sent, raw)

    return build


def resigned_over(other_body: bytes) -> Callable[[], Sent]:
    """Headers signed over one body, sent with another."""

    def build() -> Sent:
        sent = hook(other_body)()
        return Sent(sent.method, sent.path, sent.headers, event())

    return build


def replayed_signature() -> Sent:
    """A signature made 10 minutes ago, sent again under a fresh timestamp."""
    raw = event()
    old = lucca_timestamp(-600)
    headers = {
        "Content-Type": "application/json",
        "Lucca-Timestamp": lucca_timestamp(),
        "Lucca-Signature": sign(ACME_WEBHOOK, old, raw),
    }
    return Sent("POST", "/webhooks/lucca/acme", headers, raw)


def timestamped(timestamp: Callable[[], str]) -> Callable[[], Sent]:
    """Correctly signed over `timestamp()`, which is sent as the `Lucca-Timestamp`."""

    def build() -> Sent:
        raw, sent_at = event(), timestamp()
        headers = {
            "Content-Type": "application/json",
            "Lucca-Timestamp": sent_at,
            "Lucca-Signature": sign(ACME_WEBHOOK, sent_at, raw),
        }
        return Sent("POST", "/webhooks/lucca/acme", headers, raw)

    return build


def hex_signature() -> Sent:
    """The right HMAC, hex-encoded instead of base64."""
    raw, sent_at = event(), lucca_timestamp()
    mac = hmac.new(ACME_WEBHOOK.encode(), sent_at.encode() + b"." + raw, hashlib.sha256)
    headers = {
        "Content-Type": "application/json",
        "Lucca-Timestamp": sent_at,
        "Lucca-Signature": mac.hexdigest(),
    }
    return Sent("POST", "/webhooks/lucca/acme", headers, raw)


def lying_content_length() -> Sent:
    sent = hook()()
    return Sent(
        sent.method,
        sent.path,
        {**sent.headers, "Content-Length": str(WEBHOOK_MAX_BODY_BYTES + 1)},
        sent.content,
    )


OVERSIZE = b'{"id": "big", "topic": "ping"}' + b" " * WEBHOOK_MAX_BODY_BYTES

WEBHOOK_CASES = [
    BadInput(WEBHOOK, f"signed body of {WEBHOOK_MAX_BODY_BYTES} + 30 bytes", 413, "too_large",
             hook(OVERSIZE)),
    BadInput(WEBHOOK, "small body, `Content-Length` over the limit", 413, "too_large",
             lying_content_length),
    BadInput(WEBHOOK, "signed, `Content-Type: text/plain`", 415, "unsupported_media_type",
             hook(content_type="text/plain")),
    BadInput(WEBHOOK, "signed, `application/x-www-form-urlencoded`", 415,
             "unsupported_media_type", hook(content_type="application/x-www-form-urlencoded")),
    BadInput(WEBHOOK, "signed, no `Content-Type`", 415, "unsupported_media_type",
             hook(content_type=None)),
    BadInput(WEBHOOK, "validly signed body that is not JSON (`{\"id\": 1,`)", 400, "bad_json",
             hook(b'{"id": 1,')),
    BadInput(WEBHOOK, "validly signed JSON array `[]`", 400, "bad_json", hook(b"[]")),
    BadInput(WEBHOOK, "validly signed JSON string", 400, "bad_json", hook(b'"employee.updated"')),
    BadInput(WEBHOOK, "validly signed invalid UTF-8", 400, "bad_json", hook(b'{"id": "\xff\xfe"}')),
    BadInput(WEBHOOK, "validly signed empty body", 400, "bad_json", hook(b"")),
    BadInput(WEBHOOK, "no `Lucca-Signature`", 401, "bad_signature",
             hook(drop=("Lucca-Signature",))),
    BadInput(WEBHOOK, "no `Lucca-Timestamp`", 401, "bad_signature",
             hook(drop=("Lucca-Timestamp",))),
    BadInput(WEBHOOK, "timestamp 5 min 10 s old (stale)", 401, "bad_signature",
             hook(offset=-310)),
    BadInput(WEBHOOK, "timestamp 5 min 10 s ahead (future)", 401, "bad_signature",
             hook(offset=310)),
    BadInput(WEBHOOK, "timestamp 10 days old", 401, "bad_signature", hook(offset=-864_000)),
    BadInput(WEBHOOK, "timestamp as unix seconds (now), signed over it", 401, "bad_signature",
             timestamped(lambda: str(int(time.time())))),
    BadInput(WEBHOOK, "timestamp `not-a-date`, signed over it", 401, "bad_signature",
             timestamped(lambda: "not-a-date")),
    BadInput(WEBHOOK, "signature made over another body", 401, "bad_signature",
             resigned_over(b'{"id": "other"}')),
    BadInput(WEBHOOK, "old signature re-sent under a fresh timestamp", 401, "bad_signature",
             replayed_signature),
    BadInput(WEBHOOK, "signed with the other tenant's (beta's) secret", 401, "bad_signature",
             hook(secret=BETA_WEBHOOK)),
    BadInput(WEBHOOK, "signed with acme's Lucca API key", 401, "bad_signature",
             hook(secret=ACME_API_KEY)),
    BadInput(WEBHOOK, "random base64 signature", 401, "bad_signature",
             hook(headers={"Lucca-Signature": "c2lnbmF0dXJlIG9mIG5vdGhpbmcgYXQgYWxsIQ=="})),
    BadInput(WEBHOOK, "the right HMAC, hex-encoded instead of base64", 401, "bad_signature",
             hex_signature),
    BadInput(WEBHOOK, "empty signature", 401, "bad_signature",
             hook(headers={"Lucca-Signature": ""})),
    BadInput(WEBHOOK, "unknown tenant `ghost`", 404, "unknown_tenant", hook(tenant="ghost")),
    BadInput(WEBHOOK, "invalid tenant name `ACME`", 404, "unknown_tenant", hook(tenant="ACME")),
    BadInput(WEBHOOK, "tenant name `acme.evil.com`", 404, "unknown_tenant",
             hook(tenant="acme.evil.com")),
    BadInput(WEBHOOK, "validly signed, `data` of an unexpected shape", 202, None,
             hook(event(data=["not", "an", "object"])), queues=True),
    BadInput(WEBHOOK, "validly signed with the previous secret (rotation)", 202, None,
             hook(secret=ACME_WEBHOOK_OLD), queues=True),
]  # fmt: skip

# -- admin authentication ---------------------------------------------------------------------


def admin(
    method: str, path: str, authorization: str | None, body: Any = None
) -> Callable[[], Sent]:
    def build() -> Sent:
        headers = {} if authorization is None else {"Authorization": authorization}
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = orjson.dumps(body)
        return Sent(method, path, headers, content)

    return build


BEARER = f"Bearer {TEST_ADMIN_TOKEN}"
AUTH_CASES = [
    BadInput("GET /tenants", "no `Authorization`", 401, "unauthorized",
             admin("GET", "/tenants", None)),
    BadInput("GET /tenants", "wrong bearer token", 401, "unauthorized",
             admin("GET", "/tenants", "Bearer not-the-admin-token")),
    BadInput("GET /tenants", "admin token with a suffix", 401, "unauthorized",
             admin("GET", "/tenants", BEARER + "x")),
    BadInput("GET /tenants", "admin token, scheme `Basic`", 401, "unauthorized",
             admin("GET", "/tenants", f"Basic {TEST_ADMIN_TOKEN}")),
    BadInput("GET /tenants", "admin token without a scheme", 401, "unauthorized",
             admin("GET", "/tenants", TEST_ADMIN_TOKEN)),
    BadInput("GET /tenants", "admin token in the query string", 401, "unauthorized",
             admin("GET", f"/tenants?access_token={TEST_ADMIN_TOKEN}", None)),
    BadInput("GET /tenants/{tenant}", "beta's config, acme's webhook secret as bearer", 401,
             "unauthorized", admin("GET", "/tenants/beta", f"Bearer {ACME_WEBHOOK}")),
    BadInput("GET /tenants/{tenant}", "beta's config, acme's Lucca API key as bearer", 401,
             "unauthorized", admin("GET", "/tenants/beta", f"Bearer {ACME_API_KEY}")),
    BadInput("PUT /tenants/{tenant}", "overwrite beta, acme's Elevo token as bearer", 401,
             "unauthorized",
             admin("PUT", "/tenants/beta", f"Bearer {ACME_ELEVO_TOKEN}",
                   tenant_body("beta", "k", "w", "t"))),
    BadInput("DELETE /tenants/{tenant}", "no `Authorization`", 401, "unauthorized",
             admin("DELETE", "/tenants/beta", None)),
    BadInput("GET /sync/{tenant}", "beta's status, acme's webhook secret as bearer", 401,
             "unauthorized", admin("GET", "/sync/beta", f"Bearer {ACME_WEBHOOK}")),
    BadInput("POST /sync/{tenant}", "no `Authorization`", 401, "unauthorized",
             admin("POST", "/sync/beta", None, {"mode": "full"})),
    BadInput("GET /sync/{tenant}/runs/{run_id}", "wrong bearer token", 401, "unauthorized",
             admin("GET", "/sync/acme/runs/20260101T000000-abcdef", "Bearer nope")),
    BadInput("GET /sync/{tenant}/users/{user_id}", "no `Authorization`", 401, "unauthorized",
             admin("GET", "/sync/acme/users/2", None)),
]  # fmt: skip

# -- tenant configs: SSRF and other bad values --------------------------------------------------

PUT_TENANT = "PUT /tenants/{tenant}"


def put(body: Any, *, tenant: str = "gamma", raw: bytes | None = None) -> Callable[[], Sent]:
    def build() -> Sent:
        content = raw if raw is not None else orjson.dumps(body)
        headers = {**ADMIN, "Content-Type": "application/json"}
        return Sent("PUT", f"/tenants/{tenant}", headers, content)

    return build


def gamma(**changes: Any) -> dict[str, Any]:
    """A valid new tenant body with `lucca.X` / `elevo.X` / top-level keys changed."""
    body = tenant_body("gamma", "gamma-key", "gamma-whsec", "gamma-token")
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            body[section][name] = value
        else:
            body[section] = value
    return body


SUBDOMAINS = [
    ("evil.com/x", "a host and a path"),
    ("a.b", "two labels"),
    ("127.0.0.1", "an IP address"),
    ("acme@evil", "user info"),
    ("acme:80", "a port"),
    ("..", "dots"),
    ("acme/", "a slash"),
    ("acme?x=1", "a query"),
    ("acme#x", "a fragment"),
    ("acme%2eevil.com", "percent-encoding"),
    ("acme\n", "a newline"),
    ("", "empty"),
    ("ACME", "uppercase"),
    ("-acme", "a leading hyphen"),
    ("acme-", "a trailing hyphen"),
    ("a" * 64, "64 characters"),
    ("\u0430cme", "Cyrillic a (U+0430) lookalike"),
    ("\uff41\uff43\uff4d\uff45", "fullwidth letters"),
    ("acme\u3002evil", "ideographic full stop (IDNA maps it to `.`)"),
    ("acme\uff0eevil", "fullwidth full stop"),
    ("acme\u2024evil", "one-dot leader"),
]

SCIM_URLS = [
    ("http://elevo.example/scim/v2", "http without ALLOW_HTTP_ELEVO"),
    ("https://user:pass@elevo.example/scim/v2", "user info"),
    ("https://elevo.example@evil.com/scim/v2", "user info hiding the real host"),
    ("file:///etc/passwd", "`file://`"),
    ("gopher://elevo.example/", "`gopher://`"),
    ("https:///scim/v2", "no host"),
    ("https://", "scheme only"),
    ("//evil.com/scim/v2", "scheme-relative"),
    ("elevo.example/scim/v2", "no scheme"),
    ("https://elevo.example/scim/v2?redirect=http://evil", "a query"),
    ("https://elevo.example/scim/v2#x", "a fragment"),
    ("https://elevo.example:99999/scim/v2", "port out of range"),
    ("https://elevo.example/scim v2", "a space"),
    ("https://elevo.example/\r\nHost: evil", "CR LF"),
    ("https://ev..il/scim", "empty DNS label"),
    ("javascript:alert(1)", "`javascript:`"),
]
# Hosts that spell an internal address (issue 12.3): the admin API refuses them; the client-side
# URL check leaves them to the egress guard (tests/security/test_internal_addresses.py).
INTERNAL_SCIM_URLS = [
    ("https://2130706433/scim/v2", "loopback as one decimal number"),
    ("https://0x7f000001/scim/v2", "loopback in hex"),
    ("https://0177.0.0.1/scim/v2", "loopback in octal"),
    ("https://127.1/scim/v2", "loopback, short form"),
    ("https://0/scim/v2", "the unspecified address"),
    ("https://[::127.0.0.1]/scim/v2", "IPv4-compatible loopback"),
    ("https://[64:ff9b::a9fe:a9fe]/scim/v2", "the metadata service through NAT64"),
    ("https://localhost.localdomain/scim/v2", "a loopback name"),
    ("https://169.254.169.254/latest", "the metadata service"),
    ("https://10.0.0.8/scim/v2", "a private address"),
]


def _md(value: str) -> str:
    if len(value) > 40:
        return f'`"{value[0]}" * {len(value)}`'
    shown = value.encode("unicode_escape").decode() if not value.isprintable() else value
    return f"`{shown}`" if shown else '`""`'


CONFIG_CASES = [
    *[
        BadInput(PUT_TENANT, f"`lucca.subdomain` {_md(v)} ({why})", 400, "invalid_body",
                 put(gamma(lucca__subdomain=v)))
        for v, why in SUBDOMAINS
    ],
    *[
        BadInput(PUT_TENANT, f"`elevo.scim_url` {_md(v)} ({why})", 400, "invalid_body",
                 put(gamma(elevo__scim_url=v)))
        for v, why in SCIM_URLS + INTERNAL_SCIM_URLS
    ],
    BadInput(PUT_TENANT, "`lucca.domain` `evil.com`", 400, "invalid_body",
             put(gamma(lucca__domain="evil.com"))),
    BadInput(PUT_TENANT, "`lucca.api_key` with CR LF (header injection)", 400, "invalid_body",
             put(gamma(lucca__api_key="key\r\nX-Evil: 1"))),
    BadInput(PUT_TENANT, "`elevo.token` of 4097 characters", 400, "invalid_body",
             put(gamma(elevo__token="t" * 4097))),
    BadInput(PUT_TENANT, "`lucca.webhook_secret` listing a secret twice", 400, "invalid_body",
             put(gamma(lucca__webhook_secret=["s1", "s1"]))),
    BadInput(PUT_TENANT, "new tenant without `lucca.api_key`", 400, "invalid_body",
             put(gamma(lucca__api_key=None))),
    BadInput(PUT_TENANT, "new tenant with `elevo.token` `***`", 400, "invalid_body",
             put(gamma(elevo__token="***"))),
    BadInput(PUT_TENANT, "unknown key `admin`", 400, "invalid_body",
             put({**gamma(), "admin": True})),
    BadInput(PUT_TENANT, "`custom_fields` name with a `\"` (SCIM filter injection)", 400,
             "invalid_body", put(gamma(custom_fields={'x" or "1"="1': "legalEntity.name"}))),
    BadInput(PUT_TENANT, "`custom_fields` path `a..b`", 400, "invalid_body",
             put(gamma(custom_fields={"x": "a..b"}))),
    BadInput(PUT_TENANT, "`timezone` `../../etc/passwd`", 400, "invalid_body",
             put(gamma(timezone="../../etc/passwd"))),
    BadInput(PUT_TENANT, "`nightly_at` `25:00`", 400, "invalid_body",
             put(gamma(nightly_at="25:00"))),
    BadInput(PUT_TENANT, "`lucca_requests_per_minute` 51 (over Lucca's budget)", 400,
             "invalid_body", put(gamma(lucca_requests_per_minute=51))),
    BadInput(PUT_TENANT, "`guard.max_suspend_ratio` 2", 400, "invalid_body",
             put(gamma(guard={"max_suspend_ratio": 2}))),
    BadInput(PUT_TENANT, "body `[]`", 400, "invalid_body", put([])),
    BadInput(PUT_TENANT, "body not JSON", 400, "bad_json", put(None, raw=b"{lucca")),
    BadInput(PUT_TENANT, "`guard.max_suspend_count` 10²³ (read as a float)", 400,
             "invalid_body", put(gamma(guard={"max_suspend_count": 10**23 * 1.0}))),
    BadInput(PUT_TENANT, "number `1e400` (infinite)", 400, "bad_json",
             put(None, raw=b'{"guard": {"max_suspend_ratio": 1e400}}')),
    BadInput(PUT_TENANT, f"body over {TENANT_MAX_BODY_BYTES} bytes", 413, None,
             put(None, raw=b"{" + b" " * TENANT_MAX_BODY_BYTES + b"}")),
    BadInput(PUT_TENANT, "tenant name `ACME`", 404, "unknown_tenant", put(gamma(), tenant="ACME")),
    BadInput(PUT_TENANT, "tenant name of 64 characters", 404, "unknown_tenant",
             put(gamma(), tenant="a" * 64)),
    BadInput(PUT_TENANT, "tenant name `-acme`", 404, "unknown_tenant",
             put(gamma(), tenant="-acme")),
]  # fmt: skip

# -- sync triggers and reads --------------------------------------------------------------------


def sync(method: str, path: str, body: bytes | None = None) -> Callable[[], Sent]:
    def build() -> Sent:
        headers = {**ADMIN, "Content-Type": "application/json"}
        return Sent(method, path, headers, body)

    return build


SYNC = "POST /sync/{tenant}"
SYNC_CASES = [
    BadInput(SYNC, "body not JSON", 400, "bad_json", sync("POST", "/sync/acme", b"{mode")),
    BadInput(SYNC, "`users` and `mode` together", 400, "invalid_body",
             sync("POST", "/sync/acme", b'{"users": ["1"], "mode": "full"}')),
    BadInput(SYNC, "`users` `[]`", 400, "invalid_body",
             sync("POST", "/sync/acme", b'{"users": []}')),
    BadInput(SYNC, "`users` `[-1]`", 400, "invalid_body",
             sync("POST", "/sync/acme", b'{"users": [-1]}')),
    BadInput(SYNC, "`users` `[\"\u00b2\"]` (a non-ASCII digit)", 400, "invalid_body",
             sync("POST", "/sync/acme", '{"users": ["\u00b2"]}'.encode())),
    BadInput(SYNC, "`users` `[\"1 OR 1=1\"]`", 400, "invalid_body",
             sync("POST", "/sync/acme", b'{"users": ["1 OR 1=1"]}')),
    BadInput(SYNC, "`mode` `delete`", 400, "invalid_body",
             sync("POST", "/sync/acme", b'{"mode": "delete"}')),
    BadInput(SYNC, "`dry_run` `\"yes\"`", 400, "invalid_body",
             sync("POST", "/sync/acme", b'{"dry_run": "yes"}')),
    BadInput(SYNC, "unknown key `tenant` (another tenant in the body)", 400, "invalid_body",
             sync("POST", "/sync/acme", b'{"tenant": "beta"}')),
    BadInput(SYNC, "`confirm_suspensions` `true` (names no held run)", 400, "invalid_body",
             sync("POST", "/sync/acme", b'{"confirm_suspensions": true}')),
    BadInput(SYNC, "`confirm_suspensions` `\"all\"` (not a run id)", 400, "invalid_body",
             sync("POST", "/sync/acme", b'{"confirm_suspensions": "all"}')),
    BadInput(SYNC, "`confirm_suspensions` with `users`", 400, "invalid_body",
             sync("POST", "/sync/acme",
                  b'{"users": ["1"], "confirm_suspensions": "20260101T000000-000000"}')),
    BadInput(SYNC, "`confirm_suspensions` of an unknown run", 404, "unknown_run",
             sync("POST", "/sync/acme", b'{"confirm_suspensions": "20260101T000000-000000"}')),
    BadInput(SYNC, "`dismiss` with `mode`", 400, "invalid_body",
             sync("POST", "/sync/acme", b'{"dismiss": "20260101T000000-000000", "mode": "full"}')),
    BadInput(SYNC, "`dismiss` of an unknown run", 404, "unknown_run",
             sync("POST", "/sync/acme", b'{"dismiss": "20260101T000000-000000"}')),
    BadInput(SYNC, "unknown tenant `ghost`", 404, "unknown_tenant",
             sync("POST", "/sync/ghost", b"{}")),
    BadInput(SYNC, "tenant name `..` (percent-encoded)", 404, "unknown_tenant",
             sync("POST", "/sync/%2E%2E", b"{}")),
    BadInput("GET /sync/{tenant}/users/{user_id}", "user id `abc`", 400, "bad_user",
             sync("GET", "/sync/acme/users/abc")),
    BadInput("GET /sync/{tenant}/users/{user_id}", "user id `0`", 400, "bad_user",
             sync("GET", "/sync/acme/users/0")),
    BadInput("GET /sync/{tenant}/users/{user_id}", "user id of 4,300 digits", 400, "bad_user",
             sync("GET", "/sync/acme/users/" + "9" * 4300)),
    BadInput("GET /sync/{tenant}/users/{user_id}", "user id of 19 digits", 400, "bad_user",
             sync("GET", "/sync/acme/users/" + "1" * 19)),
    BadInput(SYNC, "body over 1 MiB (every route's cap)", 413, "too_large",
             sync("POST", "/sync/acme", b'{"users": ["1"]}' + b" " * MAX_BODY_BYTES)),
    BadInput(SYNC, "`users` with an id of 4,300 digits", 400, "invalid_body",
             sync("POST", "/sync/acme", b'{"users": ["' + b"9" * 4300 + b'"]}')),
    BadInput(SYNC, "`users` `[10**18]` (19 digits)", 400, "invalid_body",
             sync("POST", "/sync/acme", b'{"users": [1000000000000000000]}')),
    BadInput("GET /sync/{tenant}/runs/{run_id}", "run id of 4,300 characters", 404,
             "unknown_run", sync("GET", "/sync/acme/runs/" + "9" * 4300)),
    BadInput("GET /sync/{tenant}/runs/{run_id}", "unknown run id", 404, "unknown_run",
             sync("GET", "/sync/acme/runs/20260101T000000-000000")),
]  # fmt: skip

CASES = [*WEBHOOK_CASES, *AUTH_CASES, *CONFIG_CASES, *SYNC_CASES]


def case_id(case: BadInput) -> str:
    return f"{case.route} | {case.what}"


def table() -> str:
    """The markdown table of docs/security.md."""
    lines = [
        "| route | input | status | `error` |",
        "| --- | --- | --- | --- |",
    ]
    for case in CASES:
        what = case.what.replace("|", "\\|")
        error = f"`{case.error}`" if case.error else "—"
        lines.append(f"| `{case.route}` | {what} | {case.status} | {error} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table())
