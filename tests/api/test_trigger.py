"""`parse_trigger`: the `POST /sync/{tenant}` body into the run it asks for."""

from __future__ import annotations

import pytest

from app.api.schemas import MAX_USERS_PER_REQUEST, parse_trigger
from app.schemas.errors import InvalidDocument, NotJson
from app.service.runs import RunRequest
from app.store.runs import RunMode


@pytest.mark.parametrize("raw", [b"", b"  \n", b"{}", b'{"mode": "full"}'])
def test_an_empty_trigger_is_a_full_run(raw: bytes) -> None:
    assert parse_trigger(raw) == RunRequest(mode=RunMode.FULL)


def test_a_full_run_may_be_a_dry_run_releasing_suspensions() -> None:
    raw = b'{"mode": "full", "dry_run": true, "confirm_suspensions": true}'
    assert parse_trigger(raw) == RunRequest(
        mode=RunMode.FULL, dry_run=True, confirm_suspensions=True
    )


def test_a_changes_poll() -> None:
    assert parse_trigger(b'{"mode": "changes", "dry_run": true}') == RunRequest(
        mode=RunMode.CHANGES, dry_run=True
    )


def test_users_are_ids_as_strings_in_order() -> None:
    assert parse_trigger(b'{"users": ["0416", 417], "dry_run": true}') == RunRequest(
        mode=RunMode.USERS, users=("0416", "417"), dry_run=True
    )


def test_confirm_suspensions_is_dropped_for_users() -> None:
    raw = b'{"users": [1], "confirm_suspensions": true}'
    assert parse_trigger(raw) == RunRequest(mode=RunMode.USERS, users=("1",))


def test_the_largest_users_list() -> None:
    raw = b'{"users": [' + b",".join([b"1"] * MAX_USERS_PER_REQUEST) + b"]}"
    assert len(parse_trigger(raw).users) == MAX_USERS_PER_REQUEST


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
        (b'{"mode": "changes", "confirm_suspensions": true}', "$"),
        (b'{"dry_run": "yes"}', "$.dry_run"),
        (b'{"dry_run": null}', "$.dry_run"),
        (b'{"confirm_suspensions": 1}', "$.confirm_suspensions"),
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
