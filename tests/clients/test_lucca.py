"""The Lucca v3 client against httpx.MockTransport handlers that record every request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import orjson
import pytest

from app.clients.errors import LuccaAuthError, LuccaError, LuccaRateLimited, LuccaUnavailable
from app.clients.http import parse_retry_after
from app.clients.lucca import LuccaBatch, LuccaClient, lucca_base_url
from app.core.lucca_user import projection
from app.secret import Secret
from tests.conftest import Handler, Recorder

KEY = "lucca-key-5f1e2d3c4b5a69788796a5b4c3d2e1f0"
BASE = "http://127.0.0.1:8081/acme"
FIELDS = projection(["legalEntity.name", "extendedData.e_cost_center"])
SKIP = "e_skip_elevo_sync"


def envelope(items: list[Any]) -> httpx.Response:
    return httpx.Response(200, json={"header": {"status": 200}, "data": {"items": items}})


def user(user_id: int, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": user_id,
        "firstName": "Ada",
        "lastName": "Lovelace",
        "mail": f"user{user_id}@acme.fr",
        "manager": None,
        "department": {"id": 13, "name": "R&D"},
        "extendedData": {SKIP: {"id": 1, "value": False}},
    }
    item.update(fields)
    return item


@pytest.fixture
def lucca_for(
    http_for: Callable[[Handler], httpx.AsyncClient], calls: list[tuple[str, int]]
) -> Callable[[Handler], LuccaClient]:
    def make(handler: Handler) -> LuccaClient:
        return LuccaClient(
            http_for(handler),
            BASE,
            Secret(KEY),
            fields=FIELDS,
            skip_field=SKIP,
            on_response=lambda op, status: calls.append((op, status)),
        )

    return make


# --- base URL and SSRF ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "domain", "expected"),
    [
        ("https://{subdomain}.{domain}", "ilucca.net", "https://acme.ilucca.net"),
        ("https://{subdomain}.{domain}", "ilucca-test.net", "https://acme.ilucca-test.net"),
        ("https://{subdomain}.{domain}", "ilucca-demo.net", "https://acme.ilucca-demo.net"),
        ("https://{subdomain}.{domain}/", "ilucca.ch", "https://acme.ilucca.ch"),
        ("http://127.0.0.1:8081/{subdomain}", "ilucca.net", "http://127.0.0.1:8081/acme"),
    ],
)
def test_base_url_fills_the_template(template: str, domain: str, expected: str) -> None:
    assert lucca_base_url(template, "acme", domain) == expected


@pytest.mark.parametrize("label", ["a", "acme-corp", "0x1", "a" * 63])
def test_base_url_accepts_dns_labels(label: str) -> None:
    assert lucca_base_url("https://{subdomain}.{domain}", label, "ilucca.net") == (
        f"https://{label}.ilucca.net"
    )


@pytest.mark.parametrize(
    "subdomain",
    [
        "evil.com/x",
        "a.b",
        "127.0.0.1",
        "acme@evil",
        "a:80",
        "%2e",
        "",
        "-acme",
        "acme-",
        "Acme",
        "a" * 64,
        "acme\n",
        "acme/../x",
        "acme?x=1",
        "acme#x",
        "ac me",
        "évil",
    ],
)
@pytest.mark.parametrize(
    "template", ["https://{subdomain}.{domain}", "http://127.0.0.1:8081/{subdomain}"]
)
def test_base_url_rejects_anything_but_a_label(template: str, subdomain: str) -> None:
    with pytest.raises(ValueError, match="one DNS label"):
        lucca_base_url(template, subdomain, "ilucca.net")


@pytest.mark.parametrize("domain", ["evil.com", "ilucca.net.evil.com", "", "ILUCCA.NET"])
def test_base_url_rejects_unknown_domains(domain: str) -> None:
    with pytest.raises(ValueError, match="domain must be one of"):
        lucca_base_url("https://{subdomain}.{domain}", "acme", domain)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("https://lucca.example", "must contain"),
        ("https://user:pw@{subdomain}.{domain}", "no user info"),
        ("https://{subdomain}.{domain}/?x=1", "no user info, query"),
        ("https://{subdomain}.{domain}/#top", "no user info, query or fragment"),
        ("ftp://{subdomain}.{domain}", "http"),
        ("{subdomain}", "http"),
    ],
)
def test_base_url_rejects_bad_templates(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lucca_base_url(template, "acme", "ilucca.net")


# --- requests -----------------------------------------------------------------------------


async def test_fetch_by_ids_sends_one_filtered_request(lucca_for, calls) -> None:
    recorder = Recorder(lambda _: envelope([user(416), user(417)]))
    batch = await lucca_for(recorder).fetch_by_ids(["416", "417", "416"])

    assert set(batch.users) == {"416", "417"}
    [request] = recorder.requests
    assert request.method == "GET"
    assert request.url.path == "/acme/api/v3/users"
    assert request.headers["Authorization"] == f"lucca application={KEY}"
    assert dict(request.url.params) == {
        "id": "416,417",
        "formerEmployees": "true",
        "fields": FIELDS,
        "paging": "0,1000",
    }
    # Lists stay readable, as in Lucca's own docs.
    assert b"id=416,417&" in request.url.raw_path
    assert b"manager[id]" in request.url.raw_path
    assert calls == [("fetch_by_ids", 200)]


async def test_fetch_by_ids_of_nobody_asks_nothing(lucca_for) -> None:
    recorder = Recorder(lambda _: envelope([user(1)]))
    batch = await lucca_for(recorder).fetch_by_ids([])
    assert batch == LuccaBatch(users={}, invalid={}, item_count=0)
    assert recorder.requests == []


async def test_fetch_by_ids_refuses_more_than_a_page(lucca_for) -> None:
    recorder = Recorder(lambda _: envelope([]))
    client = lucca_for(recorder)
    await client.fetch_by_ids([str(i) for i in range(1, 1001)])
    with pytest.raises(ValueError, match="at most 1000"):
        await client.fetch_by_ids([str(i) for i in range(1, 1002)])
    assert len(recorder.requests) == 1


@pytest.mark.parametrize("bad", ["4,5", "abc", "", "1&x=2", "²", " 4"])
async def test_fetch_by_ids_refuses_ids_that_are_not_digits(lucca_for, bad: str) -> None:
    recorder = Recorder(lambda _: envelope([]))
    with pytest.raises(ValueError, match="digits"):
        await lucca_for(recorder).fetch_by_ids(["416", bad])
    assert recorder.requests == []


async def test_fetch_by_ids_refuses_one_string(lucca_for) -> None:
    with pytest.raises(TypeError):
        await lucca_for(Recorder(lambda _: envelope([]))).fetch_by_ids("416")


async def test_list_page_pages_and_filters_on_modification(lucca_for, calls) -> None:
    recorder = Recorder(lambda _: envelope([user(1)]))
    client = lucca_for(recorder)
    await client.list_page(2000)
    await client.list_page(0, 50, modified_since=datetime(2025, 1, 1, 8, 45, 23, 999))

    first, second = (dict(r.url.params) for r in recorder.requests)
    assert first == {"formerEmployees": "true", "fields": FIELDS, "paging": "2000,1000"}
    assert second["paging"] == "0,50"
    assert second["modifiedAt"] == "since,2025-01-01T08:45:23"
    assert "id" not in second
    assert calls == [("list_page", 200), ("list_page", 200)]


@pytest.mark.parametrize(("offset", "limit"), [(-1, 10), (0, 0), (0, 1001)])
async def test_list_page_refuses_bad_paging(lucca_for, offset: int, limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        await lucca_for(Recorder(lambda _: envelope([]))).list_page(offset, limit)


async def test_list_page_refuses_an_aware_since(lucca_for) -> None:
    since = datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive"):
        await lucca_for(Recorder(lambda _: envelope([]))).list_page(0, modified_since=since)


# --- the envelope -------------------------------------------------------------------------


async def test_invalid_items_are_reported_and_valid_ones_come_through(lucca_for) -> None:
    items = [
        user(416, manager={"id": 417}),
        user(417, firstName=12),
        {"id": "x", "firstName": "No id"},
        "not an object",
        user(418, manager={"id": 418}),
    ]
    batch = await lucca_for(Recorder(lambda _: envelope(items))).list_page(0)

    assert set(batch.users) == {"416", "418"}
    assert batch.users["416"].manager_id == "417"
    assert batch.users["418"].manager_id is None
    assert set(batch.invalid) == {"417", "#2", "#3"}
    assert "firstName should be text" in batch.invalid["417"]
    assert "no valid id" in batch.invalid["#2"]
    assert batch.item_count == 5


@pytest.mark.parametrize(
    ("extended", "shown"),
    [
        ([{SKIP: True}, {}], {"1"}),
        ([None, {SKIP: None}], {"2"}),  # the key is there, with no value: shown
        ([{SKIP: False}, {SKIP: {"id": 3, "value": False}}], {"1", "2"}),
        ([{}, {"e_other": 1}], set()),  # never set: Lucca leaves it out
        ([None, None], set()),
        ([], set()),
    ],
)
async def test_who_shows_the_skip_field(lucca_for, extended: list[Any], shown: set[str]) -> None:
    items = [user(i + 1, extendedData=data) for i, data in enumerate(extended)]
    batch = await lucca_for(Recorder(lambda _: envelope(items))).list_page(0)
    assert batch.skip_field_shown == shown
    assert batch.item_count == len(items)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>Bad gateway</html>",
        b"",
        b"[]",
        b'{"items": []}',
        b'{"data": []}',
        b'{"data": {"items": {}}}',
        b'{"data": {}}',
    ],
)
async def test_a_200_that_is_not_the_envelope_is_retryable(lucca_for, body: bytes) -> None:
    client = lucca_for(Recorder(lambda _: httpx.Response(200, content=body)))
    with pytest.raises(LuccaUnavailable, match="answered 200") as caught:
        await client.fetch_by_ids(["1"])
    assert caught.value.retryable


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (400, LuccaError, False),
        (401, LuccaAuthError, False),
        (403, LuccaAuthError, False),
        (404, LuccaError, False),
        (302, LuccaError, False),
        (408, LuccaUnavailable, True),
        (500, LuccaUnavailable, True),
        (502, LuccaUnavailable, True),
        (503, LuccaUnavailable, True),
        (504, LuccaUnavailable, True),
    ],
)
async def test_status_mapping(lucca_for, calls, status: int, error: type, retryable: bool) -> None:
    client = lucca_for(Recorder(lambda _: httpx.Response(status, json={"Message": "no"})))
    with pytest.raises(LuccaError) as caught:
        await client.list_page(0)
    assert type(caught.value) is error
    assert caught.value.status == status
    assert caught.value.retryable is retryable
    assert f"answered {status}" in str(caught.value)
    assert "/acme/api/v3/users" in str(caught.value)
    assert "paging" not in str(caught.value)  # the path, never the query
    assert calls == [("list_page", status)]


@pytest.mark.parametrize(
    ("header", "expected"),
    [({"Retry-After": "17"}, 17.0), ({}, None), ({"Retry-After": "soon"}, None)],
)
async def test_rate_limited_carries_retry_after(lucca_for, header, expected) -> None:
    client = lucca_for(Recorder(lambda _: httpx.Response(429, headers=header)))
    with pytest.raises(LuccaRateLimited) as caught:
        await client.fetch_by_ids(["1"])
    assert caught.value.retry_after == expected
    assert caught.value.status == 429
    assert caught.value.retryable


async def test_rate_limited_reads_an_http_date(lucca_for) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    client = lucca_for(Recorder(lambda _: httpx.Response(429, headers={"Retry-After": when})))
    with pytest.raises(LuccaRateLimited) as caught:
        await client.fetch_by_ids(["1"])
    assert caught.value.retry_after is not None
    assert 80 <= caught.value.retry_after <= 90


NOW = datetime(2025, 1, 1, 8, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Wed, 01 Jan 2025 08:01:00 GMT", 60.0),
        ("Wed, 01 Jan 2025 08:01:00 -0000", 60.0),
        ("Wed, 01 Jan 2025 07:00:00 GMT", 0.0),  # in the past: no wait
        ("-5", None),
        ("soon", None),
        ("", None),
        ("Wed, 32 Foo 2025", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout("timed out"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
)
async def test_transport_errors_are_unavailable(lucca_for, calls, failure: Exception) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    with pytest.raises(LuccaUnavailable, match="failed") as caught:
        await lucca_for(fail).list_page(0)
    assert caught.value.retryable
    assert caught.value.__cause__ is failure
    assert calls == [("list_page", 0)]


# --- the key never leaks ------------------------------------------------------------------


def leaky(status: int) -> Handler:
    """A server that echoes the credential in its error body."""

    def answer(request: httpx.Request) -> httpx.Response:
        auth = request.headers["Authorization"]
        return httpx.Response(status, headers={"Retry-After": "1"}, json={"Message": auth})

    return answer


def assert_no_key(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), repr(exc.args), orjson.dumps(exc.args).decode()):
        assert KEY not in text


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 429, 500, 503])
async def test_the_key_never_appears_in_an_error(lucca_for, status: int) -> None:
    with pytest.raises(LuccaError) as caught:
        await lucca_for(leaky(status)).fetch_by_ids(["1"])
    assert_no_key(caught.value)
    assert "***" in str(caught.value)


async def test_the_key_never_appears_in_a_transport_error(lucca_for) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused {request.headers['Authorization']}")

    with pytest.raises(LuccaUnavailable) as caught:
        await lucca_for(fail).fetch_by_ids(["1"])
    assert_no_key(caught.value)


@pytest.mark.parametrize("key", ["", "key\nInjected: 1", "clé", " padded "])
async def test_a_key_no_header_can_carry_is_refused_without_showing_it(http_for, key) -> None:
    with pytest.raises(ValueError, match="Lucca API key") as caught:
        LuccaClient(
            http_for(lambda _: envelope([])), BASE, Secret(key), fields=FIELDS, skip_field=SKIP
        )
    if key.strip():
        assert key not in str(caught.value)
