"""Elevo SCIM Users read as profiles, their flat view, and their Redis snapshot form."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core import scim
from app.core.profile import (
    ElevoProfile,
    profile_from_copy,
    profile_from_dict,
    profile_from_scim,
    profile_to_copy,
    profile_to_dict,
)
from tests.factories import (
    LUCCA_ID,
    MAIL,
    MANAGER_PROFILE_ID,
    PROFILE_ID,
    make_profile,
    make_scim_user,
)

HOME = {"value": "camille@home.example", "type": "home"}


def test_every_synced_attribute_is_read_into_the_flat_view() -> None:
    resource = make_scim_user(
        emails=[HOME, {"value": MAIL, "type": "work", "primary": True}],
        elevo={"customFields": [{"name": "Cost center", "value": "CC-12"}]},
    )

    profile = profile_from_scim(resource)

    assert profile.id == PROFILE_ID
    assert profile.version == 'W/"1"'
    assert profile.external_id == LUCCA_ID
    assert profile.user_name == MAIL
    assert profile.active is True
    assert profile.sync_source == "lucca"
    assert profile.managed is True
    assert profile.attributes == {
        "externalId": LUCCA_ID,
        scim.USER_NAME: MAIL,
        scim.GIVEN_NAME: "Camille",
        scim.FAMILY_NAME: "Martin",
        scim.TITLE: "Développeuse",
        scim.WORK_EMAIL: MAIL,
        scim.EMPLOYEE_NUMBER: "00042",
        scim.DEPARTMENT: "R&D",
        scim.MANAGER: MANAGER_PROFILE_ID,
        scim.WORK_START_DATE: "2021-09-01",
        scim.SYNC_SOURCE: "lucca",
        scim.ACTIVE: True,
        scim.custom_field_path("Cost center"): "CC-12",
    }
    assert profile.emails == tuple(resource["emails"])
    assert profile.custom_fields == ({"name": "Cost center", "value": "CC-12"},)


def test_a_bare_resource_reads_as_absent_attributes_and_active() -> None:
    profile = profile_from_scim({"id": 7, "schemas": [scim.CORE_USER]})

    assert profile.id == "7"
    assert profile.version is None
    assert profile.external_id is None
    assert profile.user_name == ""
    assert profile.active is True
    assert profile.managed is False
    assert profile.emails == ()
    assert profile.custom_fields == ()
    assert {path for path, value in profile.attributes.items() if value is not None} == {
        scim.ACTIVE
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"title": ""},
        {"externalId": ""},
        {"name": {"givenName": ""}},
        {"enterprise": {"department": ""}},
        {"elevo": {"syncSource": ""}},
        {"enterprise": {"manager": {"value": ""}}},
    ],
)
def test_an_empty_string_reads_as_absent(overrides: dict[str, Any]) -> None:
    profile = make_profile(**overrides)

    assert "" not in profile.attributes.values()


def test_a_released_profile_is_not_managed() -> None:
    profile = make_profile(elevo={"syncSource": None})

    assert profile.sync_source is None
    assert profile.managed is False


def test_active_is_false_only_when_elevo_says_false() -> None:
    assert make_profile(active=False).active is False
    assert make_profile(active=None).active is True


def test_the_work_email_is_the_entry_of_type_work() -> None:
    with_work = make_profile(emails=[HOME, {"value": MAIL, "type": "work"}])
    home_only = make_profile(emails=[HOME])

    assert with_work.attributes[scim.WORK_EMAIL] == MAIL
    assert home_only.attributes[scim.WORK_EMAIL] is None


def test_malformed_list_entries_are_ignored() -> None:
    profile = make_profile(
        emails=["x@acme.example", {"value": MAIL, "type": "work"}],
        elevo={"customFields": [7, {"name": 3, "value": "x"}, {"name": "Badge", "value": "B"}]},
    )

    assert profile.emails == ({"value": MAIL, "type": "work"},)
    assert profile.attributes[scim.custom_field_path("Badge")] == "B"
    assert len(profile.custom_fields) == 2


def test_a_non_text_version_is_no_version() -> None:
    assert make_profile(meta={"version": 3}).version is None


def test_a_snapshot_survives_json_unchanged() -> None:
    profile = make_profile(
        emails=[HOME, {"value": MAIL, "type": "work", "primary": True}],
        elevo={"customFields": [{"name": "Badge", "value": "B-7"}]},
    )

    assert profile_from_dict(orjson.loads(orjson.dumps(profile_to_dict(profile)))) == profile


EMAILS: st.SearchStrategy[list[dict[str, Any]]] = st.sampled_from(
    [
        [],
        [{"value": MAIL, "type": "work", "primary": True}],
        [{"value": MAIL, "type": "work", "primary": False}, HOME],
        [HOME],
    ]
)


@st.composite
def profiles(
    draw: st.DrawFn, emails: st.SearchStrategy[list[dict[str, Any]]] | None = None
) -> ElevoProfile:
    """What a profile may hold, for the round trips of its stored forms (`emails`: the
    factory's when not drawn)."""
    drawn_emails = {} if emails is None else {"emails": draw(emails)}
    custom = st.fixed_dictionaries({"name": st.text(), "value": st.text()})
    return make_profile(
        externalId=draw(st.one_of(st.none(), st.text(min_size=1))),
        userName=draw(st.text()),
        active=draw(st.booleans()),
        title=draw(st.one_of(st.none(), st.text())),
        elevo={
            "syncSource": draw(st.sampled_from(["lucca", None, "workday"])),
            "customFields": draw(st.lists(custom, max_size=3)),
        },
        **drawn_emails,
    )


@given(profiles())
def test_any_profile_survives_its_snapshot(profile: ElevoProfile) -> None:
    assert profile_from_dict(orjson.loads(orjson.dumps(profile_to_dict(profile)))) == profile


def _meaning(profile: ElevoProfile) -> ElevoProfile:
    """An absent attribute and one that is None compare alike (app/core/decision.py)."""
    present = {path: value for path, value in profile.attributes.items() if value is not None}
    return replace(profile, attributes=present)


@given(profiles(emails=EMAILS))
def test_any_profile_survives_its_compact_copy(profile: ElevoProfile) -> None:
    copy = profile_from_copy(orjson.loads(orjson.dumps(profile_to_copy(profile))))
    assert _meaning(copy) == _meaning(profile)
