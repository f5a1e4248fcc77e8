"""The Elevo SCIM client against httpx.MockTransport handlers that record every request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from app.clients.elevo import ElevoClient, ElevoSlots, ScimPage, filter_eq, validate_scim_url
from app.clients.errors import (
    ElevoAuthError,
    ElevoConflict,
    ElevoError,
    ElevoNotFound,
    ElevoPaused,
    ElevoPreconditionFailed,
    ElevoRateLimited,
    ElevoRejected,
    ElevoUnavailable,
)
from app.core import scim
from app.secret import Secret
from tests.conftest import Handler, Recorder

TOKEN = "elevo-token-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
BASE = "https://acme.elevo.example/scim/v2"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def resource(profile_id: str, *, version: str | None = 'W/"1"', **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemas": [scim.CORE_USER, scim.ELEVO],
        "id": profile_id,
        "userName": f"{profile_id}@acme.fr",
        "externalId": profile_id,
        scim.ELEVO: {"syncSource": "lucca"},
        "meta": {"resourceType": "User"} | ({"version": version} if version else {}),
    }
    body.update(fields)
    return body


def list_response(resources: list[dict[str, Any]], total: int | None = None) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "schemas": [scim.LIST_RESPONSE],
            "totalResults": len(resources) if total is None else total,
            "startIndex": 1,
            "itemsPerPage": len(resources),
            "Resources": resources,
        },
    )


def scim_error(status: int, detail: str, scim_type: str | None = None) -> httpx.Response:
    body = {"schemas": [ERROR], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return httpx.Response(status, json=body, headers={"Content-Type": "application/scim+json"})


@pytest.fixture
def elevo_for(
    http_for: Callable[[Handler], httpx.AsyncClient], calls: list[tuple[str, int]]
) -> Callable[[Handler], ElevoClient]:
    def make(handler: Handler) -> ElevoClient:
        return ElevoClient(
            http_for(handler),
            BASE + "/",
            Secret(TOKEN),
            on_response=lambda op, status: calls.append((op, status)),
        )

    return make


# --- the SCIM URL -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allow_http", "expected"),
    [
        ("https://acme.elevo.io/scim/v2/", False, "https://acme.elevo.io/scim/v2"),
        ("https://acme.elevo.io/scim/v2", False, "https://acme.elevo.io/scim/v2"),
        (" https://ACME.elevo.io:8443/v2 ", False, "https://acme.elevo.io:8443/v2"),
        ("http://127.0.0.1:8090/acme/v2", True, "http://127.0.0.1:8090/acme/v2"),
        ("https://127.0.0.1:8090/acme/v2/", True, "https://127.0.0.1:8090/acme/v2"),
    ],
)
def test_validate_scim_url_accepts(url: str, allow_http: bool, expected: str) -> None:
    assert validate_scim_url(url, allow_http=allow_http) == expected


@pytest.mark.parametrize(
    ("url", "allow_http", "message"),
    [
        ("http://acme.elevo.io/v2", False, "must use https"),
        ("ftp://acme.elevo.io/v2", True, "must use https or http"),
        ("https://user:pw@acme.elevo.io/v2", False, "user info"),
        ("https://token@acme.elevo.io/v2", False, "user info"),
        ("https://acme.elevo.io/v2?x=1", False, "query or fragment"),
        ("https://acme.elevo.io/v2?", False, "query or fragment"),
        ("https://acme.elevo.io/v2#frag", False, "query or fragment"),
        ("https:///v2", False, "host"),
        ("acme.elevo.io/v2", False, "must use https"),
        ("", False, "must use https"),
    ],
)
def test_validate_scim_url_rejects(url: str, allow_http: bool, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_scim_url(url, allow_http=allow_http)


# --- filters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("416", 'externalId eq "416"'),
        ('a"b', 'externalId eq "a\\"b"'),
        ("a\\b", 'externalId eq "a\\\\b"'),
        ('x" or userName pr or "', 'externalId eq "x\\" or userName pr or \\""'),
        ("line\nbreak", 'externalId eq "line\\nbreak"'),
        ("élodie", 'externalId eq "élodie"'),
    ],
)
def test_filter_eq_writes_a_json_string(value: str, expected: str) -> None:
    assert filter_eq("externalId", value) == expected
    assert orjson.loads(expected.removeprefix("externalId eq ")) == value


async def test_find_by_external_id_filters_and_asks_for_two(elevo_for, calls) -> None:
    recorder = Recorder(lambda _: list_response([resource("p1")]))
    profile = await elevo_for(recorder).find_by_external_id("416")

    assert profile is not None
    assert profile.id == "p1"
    assert profile.version == 'W/"1"'
    [request] = recorder.requests
    assert request.method == "GET"
    assert request.url.path == "/scim/v2/Users"
    assert dict(request.url.params) == {
        "filter": 'externalId eq "416"',
        "startIndex": "1",
        "count": "2",
    }
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "application/scim+json" in request.headers["Accept"]
    assert calls == [("find_by_external_id", 200)]


async def test_find_by_user_name_escapes_the_value(elevo_for, calls) -> None:
    recorder = Recorder(lambda _: list_response([]))
    assert await elevo_for(recorder).find_by_user_name('o"brien@acme.fr') is None
    assert recorder.requests[0].url.params["filter"] == 'userName eq "o\\"brien@acme.fr"'
    assert calls == [("find_by_user_name", 200)]


async def test_find_with_two_matches_is_a_conflict(elevo_for) -> None:
    recorder = Recorder(lambda _: list_response([resource("p1"), resource("p2")]))
    with pytest.raises(ElevoConflict, match="2 profiles match"):
        await elevo_for(recorder).find_by_external_id("416")


async def test_find_reads_an_answer_without_resources(elevo_for) -> None:
    answer = httpx.Response(200, json={"schemas": [scim.LIST_RESPONSE], "totalResults": 0})
    assert await elevo_for(lambda _: answer).find_by_user_name("x@acme.fr") is None


# --- get, create, patch -------------------------------------------------------------------


async def test_get_reads_the_profile(elevo_for, calls) -> None:
    recorder = Recorder(lambda _: httpx.Response(200, json=resource("p1", title="CTO")))
    profile = await elevo_for(recorder).get("p1")
    assert profile is not None
    assert profile.attributes[scim.TITLE] == "CTO"
    assert profile.managed
    assert recorder.requests[0].url.path == "/scim/v2/Users/p1"
    assert calls == [("get", 200)]


async def test_get_takes_the_etag_when_meta_has_no_version(elevo_for) -> None:
    answer = httpx.Response(200, json=resource("p1", version=None), headers={"ETag": 'W/"7"'})
    profile = await elevo_for(lambda _: answer).get("p1")
    assert profile is not None
    assert profile.version == 'W/"7"'


async def test_get_of_a_missing_profile_is_none(elevo_for, calls) -> None:
    assert await elevo_for(lambda _: scim_error(404, "User 'p9' not found")).get("p9") is None
    assert calls == [("get", 404)]


async def test_get_quotes_the_id_into_one_segment(elevo_for) -> None:
    recorder = Recorder(lambda _: httpx.Response(200, json=resource("a/b")))
    await elevo_for(recorder).get("a/b?c")
    assert recorder.requests[0].url.raw_path == b"/scim/v2/Users/a%2Fb%3Fc"


@pytest.mark.parametrize("bad", ["", ".", ".."])
async def test_get_refuses_ids_that_are_not_one_segment(elevo_for, bad: str) -> None:
    recorder = Recorder(lambda _: httpx.Response(200, json=resource("p1")))
    with pytest.raises(ValueError, match="not a SCIM id"):
        await elevo_for(recorder).get(bad)
    assert recorder.requests == []


async def test_create_posts_scim_json(elevo_for, calls) -> None:
    new = {"schemas": [scim.CORE_USER], "userName": "ada@acme.fr", "externalId": "416"}
    recorder = Recorder(lambda _: httpx.Response(201, json=resource("p1") | new))
    profile = await elevo_for(recorder).create(new)

    assert profile.id == "p1"
    assert profile.external_id == "416"
    [request] = recorder.requests
    assert request.method == "POST"
    assert request.url.path == "/scim/v2/Users"
    assert request.headers["Content-Type"] == "application/scim+json"
    assert orjson.loads(request.content) == new
    assert calls == [("create", 201)]


async def test_create_of_a_taken_user_name_is_a_conflict(elevo_for, calls) -> None:
    answer = scim_error(409, "One or more of the attribute values are already in use", "uniqueness")
    with pytest.raises(ElevoConflict) as caught:
        await elevo_for(lambda _: answer).create({"userName": "ada@acme.fr"})
    assert caught.value.status == 409
    assert "uniqueness" in str(caught.value)
    assert "already in use" in str(caught.value)
    assert calls == [("create", 409)]


OPS = [
    {"op": "replace", "path": "title", "value": "CTO"},
    {"op": "remove", "path": scim.SYNC_SOURCE},
]


async def test_patch_sends_a_patch_op_with_if_match(elevo_for, calls) -> None:
    recorder = Recorder(lambda _: httpx.Response(204, headers={"ETag": 'W/"8"'}))
    version = await elevo_for(recorder).patch("p1", OPS, version='W/"7"')

    assert version == 'W/"8"'
    [request] = recorder.requests
    assert request.method == "PATCH"
    assert request.url.path == "/scim/v2/Users/p1"
    assert request.headers["If-Match"] == 'W/"7"'
    assert request.headers["Content-Type"] == "application/scim+json"
    assert orjson.loads(request.content) == {"schemas": [scim.PATCH_OP], "Operations": OPS}
    assert calls == [("patch", 204)]


async def test_patch_without_version_sends_no_if_match(elevo_for) -> None:
    recorder = Recorder(lambda _: httpx.Response(204))
    assert await elevo_for(recorder).patch("p1", OPS) is None
    assert "If-Match" not in recorder.requests[0].headers


async def test_patch_answered_200_reads_the_body_version(elevo_for) -> None:
    answer = httpx.Response(200, json=resource("p1", version='W/"9"'))
    assert await elevo_for(lambda _: answer).patch("p1", OPS) == 'W/"9"'


async def test_patch_prefers_the_etag(elevo_for) -> None:
    answer = httpx.Response(200, json=resource("p1", version='W/"9"'), headers={"ETag": 'W/"10"'})
    assert await elevo_for(lambda _: answer).patch("p1", OPS) == 'W/"10"'


async def test_patch_on_a_stale_version_fails_its_precondition(elevo_for) -> None:
    answer = scim_error(412, "Failed to update. Resource has changed on the server")
    with pytest.raises(ElevoPreconditionFailed, match="has changed") as caught:
        await elevo_for(lambda _: answer).patch("p1", OPS, version='W/"1"')
    assert caught.value.retryable


async def test_patch_of_a_missing_profile_is_not_found(elevo_for) -> None:
    with pytest.raises(ElevoNotFound, match="not found"):
        await elevo_for(lambda _: scim_error(404, "User 'p1' not found")).patch("p1", OPS)


# --- lists and paging ---------------------------------------------------------------------


async def test_list_page_reads_a_list_response(elevo_for, calls) -> None:
    recorder = Recorder(lambda _: list_response([resource("p1"), resource("p2")], total=40))
    page = await elevo_for(recorder).list_page(start_index=11, count=2, filter="title pr")
    assert [p.id for p in page.profiles] == ["p1", "p2"]
    assert page.total == 40
    assert dict(recorder.requests[0].url.params) == {
        "startIndex": "11",
        "count": "2",
        "filter": "title pr",
    }
    assert calls == [("list_page", 200)]


@pytest.mark.parametrize(("start", "count"), [(0, 10), (1, 0), (1, 1001)])
async def test_list_page_refuses_bad_paging(elevo_for, start: int, count: int) -> None:
    with pytest.raises(ValueError, match="count"):
        await elevo_for(lambda _: list_response([])).list_page(start_index=start, count=count)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>maintenance</html>",
        b"[]",
        b'{"Resources": []}',
        b'{"totalResults": "3", "Resources": []}',
        b'{"totalResults": true, "Resources": []}',
        b'{"totalResults": 1, "Resources": {}}',
        b'{"totalResults": 1, "Resources": [{"userName": "no id"}]}',
        b'{"totalResults": 1, "Resources": ["p1"]}',
    ],
)
async def test_a_list_that_is_not_a_list_response_is_retryable(elevo_for, body: bytes) -> None:
    client = elevo_for(lambda _: httpx.Response(200, content=body))
    with pytest.raises(ElevoUnavailable, match="answered 200 with a body that") as caught:
        await client.list_page(start_index=1, count=10)
    assert caught.value.retryable


class FakeScim:
    """Serves ``profiles`` by index, at most ``cap`` per page, with an optional total."""

    def __init__(self, count: int, *, cap: int = 1000, total: int | None = None) -> None:
        self.profiles = [resource(f"p{i:03}") for i in range(count)]
        self.cap = cap
        self.total = total
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        start = int(request.url.params["startIndex"])
        count = min(int(request.url.params["count"]), self.cap)
        page = self.profiles[start - 1 : start - 1 + count]
        return list_response(page, total=len(self.profiles) if self.total is None else self.total)


async def test_iter_managed_pages_until_the_total(elevo_for, calls) -> None:
    server = FakeScim(25)
    ids = [p.id async for p in elevo_for(server).iter_managed(page_size=10)]

    assert ids == [f"p{i:03}" for i in range(25)]
    params = [dict(r.url.params) for r in server.requests]
    assert [(p["startIndex"], p["count"]) for p in params] == [
        ("1", "10"),
        ("11", "10"),
        ("21", "10"),
    ]
    assert {p["filter"] for p in params} == {f'{scim.ELEVO}:syncSource eq "lucca"'}
    assert calls == [("list_page", 200)] * 3


async def test_iter_managed_stops_on_a_full_last_page_without_asking_again(elevo_for) -> None:
    server = FakeScim(20)
    assert len([p async for p in elevo_for(server).iter_managed(page_size=10)]) == 20
    assert len(server.requests) == 2


async def test_iter_managed_stops_on_a_short_page(elevo_for) -> None:
    # The total claims more than there is: the short page and then the empty one end it.
    server = FakeScim(15, total=30)
    assert len([p async for p in elevo_for(server).iter_managed(page_size=10)]) == 15
    assert len(server.requests) == 3


async def test_iter_managed_goes_on_when_the_server_caps_the_page(elevo_for) -> None:
    server = FakeScim(12, cap=5)
    assert len([p async for p in elevo_for(server).iter_managed(page_size=10)]) == 12
    starts = [r.url.params["startIndex"] for r in server.requests]
    assert starts == ["1", "6", "11"]


async def test_iter_managed_of_nobody_asks_once(elevo_for) -> None:
    server = FakeScim(0)
    assert [p async for p in elevo_for(server).iter_managed()] == []
    assert len(server.requests) == 1


async def test_iter_managed_yields_a_shifted_profile_once(elevo_for) -> None:
    pages = [
        list_response([resource("p1"), resource("p2")], total=4),
        list_response([resource("p2"), resource("p3")], total=4),  # p0 left: the index shifted
        list_response([], total=3),
    ]
    recorder = Recorder(lambda _: pages[len(recorder.requests) - 1])
    ids = [p.id async for p in elevo_for(recorder).iter_managed(page_size=2)]
    assert ids == ["p1", "p2", "p3"]


def test_scim_page_is_a_plain_value() -> None:
    assert ScimPage(profiles=[], total=0) == ScimPage([], 0)


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (400, ElevoRejected, False),
        (401, ElevoAuthError, False),
        (403, ElevoAuthError, False),
        (404, ElevoNotFound, False),
        (405, ElevoRejected, False),
        (408, ElevoUnavailable, True),
        (409, ElevoConflict, False),
        (412, ElevoPreconditionFailed, True),
        (413, ElevoRejected, False),
        (500, ElevoUnavailable, True),
        (502, ElevoUnavailable, True),
        (503, ElevoUnavailable, True),
        (307, ElevoError, False),
    ],
)
async def test_status_mapping(elevo_for, calls, status: int, error: type, retryable: bool) -> None:
    client = elevo_for(lambda _: scim_error(status, "said no", "invalidValue"))
    with pytest.raises(ElevoError) as caught:
        await client.find_by_external_id("416")
    assert type(caught.value) is error
    assert caught.value.status == status
    assert caught.value.retryable is retryable
    text = str(caught.value)
    assert f"GET /scim/v2/Users answered {status}" in text
    assert "416" not in text  # the path, never the query
    assert calls == [("find_by_external_id", status)]


async def test_a_rejection_keeps_the_scim_detail(elevo_for) -> None:
    answer = scim_error(400, "'nope' is not an attribute of the schema", "invalidPath")
    with pytest.raises(ElevoRejected) as caught:
        await elevo_for(lambda _: answer).patch("p1", [{"op": "add", "path": "nope"}])
    assert str(caught.value) == (
        "Elevo PATCH /scim/v2/Users/p1 answered 400:"
        " invalidPath: 'nope' is not an attribute of the schema"
    )


async def test_an_error_that_is_not_scim_shows_an_excerpt(elevo_for) -> None:
    answer = httpx.Response(502, text="<html>\n  Bad   gateway\n</html>")
    with pytest.raises(ElevoUnavailable, match="answered 502: <html> Bad gateway </html>"):
        await elevo_for(lambda _: answer).get("p1")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"Retry-After": "30"}, 30.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
        ({"Retry-After": "later"}, None),
        ({}, None),
    ],
)
async def test_rate_limited_carries_retry_after(elevo_for, header, expected) -> None:
    answer = httpx.Response(429, headers=header)
    with pytest.raises(ElevoRateLimited) as caught:
        await elevo_for(lambda _: answer).create({"userName": "x"})
    assert caught.value.retry_after == expected
    assert caught.value.status == 429
    assert caught.value.retryable


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("timed out"), httpx.WriteError("broken")],
)
async def test_transport_errors_are_unavailable(elevo_for, calls, failure: Exception) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    with pytest.raises(ElevoUnavailable, match=r"PATCH /scim/v2/Users/p1 failed") as caught:
        await elevo_for(fail).patch("p1", OPS)
    assert caught.value.__cause__ is failure
    assert caught.value.retryable
    assert calls == [("patch", 0)]


# --- the token never leaks ----------------------------------------------------------------


def assert_no_token(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), repr(exc.args)):
        assert TOKEN not in text


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 412, 429, 500, 503])
async def test_the_token_never_appears_in_an_error(elevo_for, status: int) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return scim_error(status, f"bad header {request.headers['Authorization']}")

    with pytest.raises(ElevoError) as caught:
        await elevo_for(echo).create({"userName": "x"})
    assert_no_token(caught.value)
    assert "***" in str(caught.value)


async def test_the_token_never_appears_in_a_transport_error(elevo_for) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused {request.headers['Authorization']}")

    with pytest.raises(ElevoUnavailable) as caught:
        await elevo_for(fail).get("p1")
    assert_no_token(caught.value)


@pytest.mark.parametrize("token", ["", "tok\r\nX-Injected: 1", "jéton"])
def test_a_token_no_header_can_carry_is_refused(http_for, token: str) -> None:
    with pytest.raises(ValueError, match="Elevo token") as caught:
        ElevoClient(http_for(lambda _: list_response([])), BASE, Secret(token))
    if token:
        assert token not in str(caught.value)


async def test_the_requests_in_flight_to_one_elevo_are_bounded() -> None:
    in_flight, most = 0, 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(404, json={})

    async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as http:
        slots = ElevoSlots(3)
        clients = [ElevoClient(http, BASE, Secret(TOKEN), slots=slots) for _ in range(2)]
        await asyncio.gather(*(clients[n % 2].get(f"p-{n}") for n in range(20)))
    assert most == 3  # shared by every client of that Elevo in the process


async def test_a_hold_stops_the_requests_waiting_their_turn_from_going() -> None:
    sent: list[str] = []
    release = asyncio.Event()

    async def stalled(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        await release.wait()
        return httpx.Response(404, json={})

    async with httpx.AsyncClient(transport=httpx.MockTransport(stalled)) as http:
        client = ElevoClient(http, BASE, Secret(TOKEN), slots=ElevoSlots(2))
        calls = [asyncio.create_task(client.get(f"p-{n}")) for n in range(10)]
        while len(sent) < 2:
            await asyncio.sleep(0)
        client.hold(5.0)  # Elevo stopped answering: the 8 waiting their turn are not sent
        release.set()
        results = await asyncio.gather(*calls, return_exceptions=True)
    assert len(sent) == 2
    held = [r for r in results if isinstance(r, ElevoPaused)]
    assert len(held) == 8
    assert all(4.0 < (r.retry_after or 0) <= 5.0 for r in held)
