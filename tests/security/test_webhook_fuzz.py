"""`POST /webhooks/lucca/{tenant}` under random bodies, headers and signatures (hypothesis).

Each attempt is built from parts whose effect the contract fixes (tenant, content type, size,
timestamp, who signed what), so the test knows the one answer the service must give, and:
never a 5xx, never a queued job, run record or dedupe mark without a valid signature, never a
secret in an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.api.limits import MAX_BODY_BYTES as EVERY_ROUTE_MAX_BODY_BYTES
from app.api.routes.webhooks import MAX_BODY_BYTES
from app.store import queue
from tests.security.support import (
    ACME_API_KEY,
    ACME_WEBHOOK,
    ACME_WEBHOOK_OLD,
    BETA_WEBHOOK,
    Served,
    leaked,
    lucca_timestamp,
    sign,
)

TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
SECRETS = {"acme": (ACME_WEBHOOK, ACME_WEBHOOK_OLD), "beta": (BETA_WEBHOOK,)}
ACCEPTED_TYPES = {"application/json", "application/cloudevents+json"}
# Fresh: well inside ±5 minutes; stale or future: well outside (the test takes milliseconds).
FRESH = st.integers(-280, 280)
OFF = st.one_of(st.integers(320, 10**8), st.integers(-(10**8), -320))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False,
    allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
    max_size=4),
    max_leaves=12,
)  # fmt: skip
topics = st.sampled_from(
    ["employee.updated", "employee.created", "employment.updated", "job-position.updated",
     "department.updated", "leave.created", "ping", "confirmation", ""]
)  # fmt: skip


@st.composite
def lucca_events(draw: st.DrawFn) -> bytes:
    event: dict[str, Any] = {
        "id": draw(st.one_of(st.uuids().map(str), st.integers(1, 10**6), json_values)),
        "topic": draw(st.one_of(topics, json_values)),
        "data": draw(
            st.one_of(
                st.fixed_dictionaries({"id": st.sampled_from(["2", "3", 4, "0", "x", "²"])}),
                st.fixed_dictionaries({"employee": st.fixed_dictionaries({"id": json_values})}),
                json_values,
            )
        ),
    }
    return orjson.dumps(event)


bodies = st.one_of(
    lucca_events(),
    st.dictionaries(st.text(max_size=10), json_values, max_size=5).map(orjson.dumps),
    json_values.map(orjson.dumps),  # any JSON, objects or not
    st.binary(max_size=300),  # not JSON, or not UTF-8
    st.text(max_size=100).map(str.encode),
)

content_types = st.one_of(
    st.sampled_from(
        ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON",
         " application/json ;x=y", "application/cloudevents+json", "text/plain",
         "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
         "application/jsonx", "json", ""]
    ),
    st.none(),  # no header
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
)  # fmt: skip


@dataclass(frozen=True)
class Attempt:
    tenant: str
    body: bytes
    content_type: str | None
    timestamp: str | None
    signature: str | None
    content_length: bytes | None
    valid_signature: bool  # made with one of the tenant's secrets, over this timestamp and body


@st.composite
def attempts(draw: st.DrawFn) -> Attempt:
    tenant = draw(st.sampled_from(["acme"] * 6 + ["beta", "beta", "ghost", "any text"]))
    if tenant == "any text":
        tenant = draw(st.text(max_size=70))
    body = draw(bodies)
    size = draw(st.sampled_from(["as is"] * 8 + ["at the limit", "over the limit"]))
    if size != "as is":
        target = MAX_BODY_BYTES + (size == "over the limit")
        # Trailing spaces keep JSON what it was.
        body = body + b" " * max(0, target - len(body))
    content_type: str | None = draw(st.sampled_from(["application/json"] * 4 + ["other"]))
    if content_type == "other":
        content_type = draw(content_types)

    timing = draw(st.sampled_from(["fresh", "fresh", "fresh", "off", "garbage", "missing"]))
    if timing == "fresh":
        timestamp: str | None = lucca_timestamp(draw(FRESH))
    elif timing == "off":
        timestamp = lucca_timestamp(draw(OFF))
    elif timing == "garbage":
        timestamp = draw(
            st.one_of(
                st.sampled_from(["", "0", "1767225600", "now", "2026-13-01T00:00:00Z",
                                 "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"]),
                st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
            )
        )  # fmt: skip
    else:
        timestamp = None

    own = SECRETS.get(tenant, ())
    signer = draw(
        st.sampled_from(["own", "own", "own", "previous", "other tenant", "api key", "random",
                         "garbage", "missing", "other timestamp", "other body"])
    )  # fmt: skip
    signed_ts = timestamp or lucca_timestamp()
    secret = {
        "own": own[0] if own else ACME_WEBHOOK,
        "previous": own[-1] if own else ACME_WEBHOOK_OLD,
        "other tenant": BETA_WEBHOOK if tenant != "beta" else ACME_WEBHOOK,
        "api key": ACME_API_KEY,
        "random": draw(st.text(min_size=1, max_size=30)),
    }.get(signer, own[0] if own else ACME_WEBHOOK)
    signature: str | None
    if signer == "garbage":
        signature = draw(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126)))
    elif signer == "missing":
        signature = None
    elif signer == "other timestamp":
        signature = sign(secret, lucca_timestamp(-3600), body)
    elif signer == "other body":
        signature = sign(secret, signed_ts, body + b"\n")
    else:
        signature = sign(secret, signed_ts, body)
    if signature is not None and draw(st.booleans()):
        signature = draw(st.sampled_from([f" {signature} ", signature.lower(), signature[:-2]]))

    valid = (
        timing == "fresh"
        and signer in {"own", "previous"}
        and secret in own
        and signature is not None
        and signature.strip() == sign(secret, signed_ts, body)
    )
    content_length = draw(
        st.sampled_from([None] * 6 + [str(MAX_BODY_BYTES + 1).encode(), b"abc", b"-1",
                         "\u00b2".encode("latin-1"), b"1e9"])
    )  # fmt: skip
    return Attempt(tenant, body, content_type, timestamp, signature, content_length, valid)


def expected_status(attempt: Attempt) -> int:
    """The answer the contract fixes, in the order the receiver checks."""
    declared = attempt.content_length
    declared_size = int(declared) if declared is not None and declared.isdigit() else None
    if declared_size is not None and declared_size > EVERY_ROUTE_MAX_BODY_BYTES:
        return 413  # app/api/limits.py, before any route
    # The route checks the name with `^...$`, which lets one trailing newline through; the
    # tenant lookup then finds no such tenant (reported as a nit).
    if not TENANT_NAME.fullmatch(attempt.tenant.removesuffix("\n")):
        return 404
    media = (attempt.content_type or "").split(";")[0].strip().lower()
    if media not in ACCEPTED_TYPES:
        return 415
    if attempt.tenant not in SECRETS:
        return 404  # looked up before the body is read
    if len(attempt.body) > MAX_BODY_BYTES or (
        declared_size is not None and declared_size > MAX_BODY_BYTES
    ):
        return 413
    if not attempt.valid_signature:
        return 401
    try:
        event = orjson.loads(attempt.body)
    except orjson.JSONDecodeError:
        return 400
    return 202 if isinstance(event, dict) else 400


def request_headers(attempt: Attempt) -> dict[bytes, bytes]:
    """Raw header bytes, as a client may send them (httpx would refuse non-ASCII text)."""
    headers: dict[bytes, bytes] = {}
    if attempt.content_type is not None:
        headers[b"content-type"] = attempt.content_type.encode()
    if attempt.timestamp is not None:
        headers[b"lucca-timestamp"] = attempt.timestamp.encode()
    if attempt.signature is not None:
        headers[b"lucca-signature"] = attempt.signature.encode()
    if attempt.content_length is not None:
        headers[b"content-length"] = attempt.content_length
    return headers


async def forget_everything_but(served: Served, keep: set[bytes]) -> None:
    extra = await served.redis_keys() - keep
    if extra:
        await served.resources.redis.delete(*extra)


@settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.large_base_example],
)  # fmt: skip
@given(attempt=attempts())
async def test_random_webhooks_get_the_contract_answer(served: Served, attempt: Attempt) -> None:
    baseline = await served.redis_keys()  # the two tenants' configs and the tenants set
    try:
        response = await served.client.post(
            f"/webhooks/lucca/{quote(attempt.tenant, safe='')}",
            content=attempt.body,
            headers=request_headers(attempt),
        )
        event(f"answered {response.status_code}")  # --hypothesis-show-statistics
        assert response.status_code < 500, response.text
        assert response.status_code == expected_status(attempt), response.text
        assert leaked(response.content) == []
        after = await served.redis_keys()
        if response.status_code != 202:
            assert after == baseline, "a refused webhook left a trace in Redis"
        else:
            assert attempt.valid_signature
        queued = await queue.depth(served.resources.redis)
        if not attempt.valid_signature:
            assert queued == 0
    finally:
        await forget_everything_but(served, baseline)
