"""`parse_trigger`: the `POST /sync/{tenant}` body into the run it asks for."""

from __future__ import annotations

import pytest

from app.api.schemas import MAX_USERS_PER_REQUEST, parse_trigger
from app.schemas.errors import InvalidDocument, NotJson
from app.service.runs import Dismissal, RunRequest
from app.store.run_model import RunMode


@pytest.mark.parametrize("raw", [b"", b"  \n", b"{}", b'{"mode": "full"}'])
def test_an_empty_trigger_is_a_full_run(raw: bytes) -> None:
    assert parse_trigger(raw) == RunRequest(mode=RunMode.FULL)


HELD = "20260101T020000-abcdef"


def run_request(raw: bytes) -> RunRequest:
    request = parse_trigger(raw)
    assert isinstance(request, RunRequest)
    return request


def test_a_confirmation_names_the_held_run_and_may_be_a_dry_run() -> None:
    raw = b'{"mode": "full", "dry_run": true, "confirm_suspensions": "%s"}' % HELD.encode()
    assert parse_trigger(raw) == RunRequest(mode=RunMode.FULL, dry_run=True, confirms=HELD)
    assert run_request(b'{"confirm_suspensions": "%s"}' % HELD.encode()).confirms == HELD


def test_a_bare_true_is_passed_on_to_be_refused_naming_the_held_run() -> None:
    # Only the service knows which run is held: it answers the 400.
    assert parse_trigger(b'{"confirm_suspensions": true}') == RunRequest(
        mode=RunMode.FULL, confirm_unnamed=True
    )
    assert parse_trigger(b'{"confirm_suspensions": false}') == RunRequest(mode=RunMode.FULL)


def test_a_dismissal() -> None:
    assert parse_trigger(b'{"dismiss": "%s"}' % HELD.encode()) == Dismissal(HELD)


def test_a_changes_poll() -> None:
    assert parse_trigger(b'{"mode": "changes", "dry_run": true}') == RunRequest(
        mode=RunMode.CHANGES, dry_run=True
    )


def test_users_are_canonical_ids_as_strings_in_order_each_once() -> None:
    raw = b'{"users": ["0416", 417, 416, "00417", "9"], "dry_run": true}'
    assert parse_trigger(raw) == RunRequest(
        mode=RunMode.USERS, users=("416", "417", "9"), dry_run=True
    )


def test_a_long_id_is_no_crash() -> None:
    raw = b'{"users": ["' + b"0" * 5000 + b'7"]}'
    assert run_request(raw).users == ("7",)


def test_the_largest_users_list() -> None:
    ids = [str(n).encode() for n in range(1, MAX_USERS_PER_REQUEST + 1)]
    raw = b'{"users": [' + b",".join(ids) + b"]}"
    assert len(run_request(raw).users) == MAX_USERS_PER_REQUEST


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (b"[]", "$"),
        (b"null", "$"),
        (b'"full"', "$"),
        (b'{"users": ["1"], "mode": "full"}', "$"),
        (b'{"users": []}', "$.users"),
        (b'{"users": null}', "$.users"),
        (b'{"users": "1"}', "$.users"),
        (b'{"users": [-1]}', "$.users[0]"),
        (b'{"users": [0]}', "$.users[0]"),
        (b'{"users": [1, true]}', "$.users[1]"),
        (b'{"users": [1.0]}', "$.users[0]"),
        ('{"users": ["\u00b2"]}'.encode(), "$.users[0]"),
        (b'{"users": ["1 OR 1=1"]}', "$.users[0]"),
        (b'{"users": ["1\\n"]}', "$"),
        (b'{"mode": "delete"}', "$.mode"),
        (b'{"mode": null}', "$.mode"),
        (b'{"users": ["1", "abc"]}', "$.users[1]"),
        (b'{"mode": "changes", "confirm_suspensions": true}', "$"),
        (b'{"mode": "changes", "confirm_suspensions": "20260101T020000-abcdef"}', "$"),
        (b'{"users": [1], "confirm_suspensions": "20260101T020000-abcdef"}', "$"),
        (b'{"dry_run": "yes"}', "$.dry_run"),
        (b'{"dry_run": null}', "$.dry_run"),
        (b'{"confirm_suspensions": 1}', "$.confirm_suspensions"),
        (b'{"confirm_suspensions": "all"}', "$.confirm_suspensions"),
        (b'{"confirm_suspensions": null}', "$.confirm_suspensions"),
        (b'{"dismiss": true}', "$.dismiss"),
        (b'{"dismiss": "20260101T020000-ABCDEF"}', "$.dismiss"),
        (b'{"dismiss": "20260101T020000-abcdef", "mode": "full"}', "$"),
        (b'{"dismiss": "20260101T020000-abcdef", "dry_run": true}', "$"),
        (b'{"dismiss": "20260101T020000-abcdef", "users": [1]}', "$"),
        (b'{"dismiss": "20260101T020000-abcdef", "confirm_suspensions": false}', "$"),
        (b'{"tenant": "beta"}', "$"),
    ],
)
def test_invalid_triggers(raw: bytes, path: str) -> None:
    with pytest.raises(InvalidDocument) as info:
        parse_trigger(raw)
    assert type(info.value) is InvalidDocument
    assert str(info.value).endswith(f"`{path}`")


def test_too_many_users() -> None:
    raw = b'{"users": [' + b",".join([b"1"] * (MAX_USERS_PER_REQUEST + 1)) + b"]}"
    with pytest.raises(InvalidDocument, match="length <= 10000"):
        parse_trigger(raw)


def test_a_refused_value_is_not_echoed() -> None:
    with pytest.raises(InvalidDocument) as info:
        parse_trigger(b'{"mode": "SECRET-mode"}')
    assert "SECRET" not in str(info.value)
    with pytest.raises(InvalidDocument) as info:
        parse_trigger(b'{"users": ["SECRET"]}')
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize("raw", [b"{mode", b"\xff", b'{"users": [NaN]}'])
def test_not_json_is_bad_json(raw: bytes) -> None:
    with pytest.raises(NotJson):
        parse_trigger(raw)
