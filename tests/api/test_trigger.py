"""`parse_trigger`: the `POST /sync/{tenant}` body into the run it asks for."""

from __future__ import annotations

import pytest

from app.api.errors import ApiError, ErrorCode
from app.api.schemas import MAX_USERS_PER_REQUEST, RunRequest, parse_trigger


@pytest.mark.parametrize("raw", [b"", b"  \n", b"{}", b'{"mode": "full"}'])
def test_an_empty_trigger_is_a_full_run(raw: bytes) -> None:
    assert parse_trigger(raw) == RunRequest(mode="full")


def test_a_full_run_may_be_a_dry_run_releasing_suspensions() -> None:
    raw = b'{"mode": "full", "dry_run": true, "confirm_suspensions": true}'
    assert parse_trigger(raw) == RunRequest(mode="full", dry_run=True, confirm_suspensions=True)


def test_a_changes_poll() -> None:
    assert parse_trigger(b'{"mode": "changes", "dry_run": true}') == RunRequest(
        mode="changes", dry_run=True
    )


def test_users_are_ids_as_strings_in_order() -> None:
    assert parse_trigger(b'{"users": ["0416", 417], "dry_run": true}') == RunRequest(
        mode="users", users=("0416", "417"), dry_run=True
    )


def test_confirm_suspensions_is_dropped_for_users() -> None:
    raw = b'{"users": [1], "confirm_suspensions": true}'
    assert parse_trigger(raw) == RunRequest(mode="users", users=("1",))


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
    with pytest.raises(ApiError) as info:
        parse_trigger(raw)
    assert (info.value.status, info.value.code) == (400, ErrorCode.INVALID_BODY)
    assert info.value.detail.endswith(f"`{path}`")


def test_too_many_users() -> None:
    raw = b'{"users": [' + b",".join([b"1"] * (MAX_USERS_PER_REQUEST + 1)) + b"]}"
    with pytest.raises(ApiError, match="length <= 10000"):
        parse_trigger(raw)


def test_a_refused_value_is_not_echoed() -> None:
    with pytest.raises(ApiError) as info:
        parse_trigger(b'{"mode": "SECRET-mode"}')
    assert "SECRET" not in info.value.detail
    with pytest.raises(ApiError) as info:
        parse_trigger(b'{"users": ["SECRET"]}')
    assert "SECRET" not in info.value.detail


@pytest.mark.parametrize("raw", [b"{mode", b"\xff", b'{"users": [NaN]}'])
def test_not_json_is_bad_json(raw: bytes) -> None:
    with pytest.raises(ApiError) as info:
        parse_trigger(raw)
    assert (info.value.status, info.value.code) == (400, ErrorCode.BAD_JSON)
