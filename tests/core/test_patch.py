"""SCIM bodies built from decisions: the POST /Users resource and the PATCH operations."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core import scim
from app.core.decision import Action, Change, decide
from app.core.patch import create_resource, merged_custom_fields, merged_emails, patch_operations
from app.core.profile import ElevoProfile, profile_from_scim
from app.core.rules import Standing, desired_attributes
from tests.factories import (
    LUCCA_ID,
    MAIL,
    MANAGER_PROFILE_ID,
    make_lucca_user,
    make_profile,
    make_scim_user,
)

MANAGER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"
COST_CENTER = scim.custom_field_path("Cost center")
HOME = {"value": "camille@home.example", "type": "home", "primary": False}
BADGE = {"name": "Badge", "value": "B-7"}  # an Elevo custom field the tenant does not map


def _desired(
    custom_fields: dict[str, str] | None = None,
    *,
    manager_profile_id: str | None = MANAGER_PROFILE_ID,
    **user_overrides: Any,
) -> dict[str, Any]:
    return desired_attributes(
        make_lucca_user(**user_overrides),
        custom_fields=custom_fields or {},
        manager_profile_id=manager_profile_id,
        active=True,
    )


def apply_patch(resource: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    """What a SCIM server does with the operations (RFC 7644 §3.5.2), for the path forms the
    sync sends: `attr`, `attr.sub` and `urn:...:attr`; lists are always rewritten whole."""
    patched = copy.deepcopy(resource)
    for operation in operations:
        path = operation["path"]
        assert "[" not in path, "the sync rewrites lists whole, never through a filter"
        container = patched
        if path.startswith("urn:"):
            schema, _, path = path.rpartition(":")
            container = patched.setdefault(schema, {})
        *parents, key = path.split(".")
        for parent in parents:
            container = container.setdefault(parent, {})
        if operation["op"] == "remove":
            container.pop(key, None)
        else:
            assert operation["op"] in {"add", "replace"}
            container[key] = copy.deepcopy(operation["value"])
    return patched


def _operations(
    diff: dict[str, Change],
    desired: dict[str, Any] | None = None,
    profile: ElevoProfile | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    return patch_operations(diff, desired, profile or make_profile())


# --- create ---------------------------------------------------------------------------------


def test_a_new_profile_carries_every_synced_attribute_in_its_schema() -> None:
    assert create_resource(_desired()) == {
        "schemas": [scim.CORE_USER, scim.ENTERPRISE, scim.ELEVO],
        "externalId": LUCCA_ID,
        "userName": MAIL,
        "active": True,
        "name": {"givenName": "Camille", "familyName": "Martin"},
        "title": "Développeuse",
        "emails": [{"value": MAIL, "type": "work", "primary": True}],
        scim.ENTERPRISE: {
            "employeeNumber": "00042",
            "department": "R&D",
            "manager": {"value": MANAGER_PROFILE_ID},
        },
        scim.ELEVO: {"syncSource": "lucca", "workStartDate": "2021-09-01"},
    }


def _nulls_or_empty_texts(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [bad for item in value.values() for bad in _nulls_or_empty_texts(item)]
    if isinstance(value, list):
        return [bad for item in value for bad in _nulls_or_empty_texts(item)]
    return [value] if value is None or value == "" else []


def test_absent_values_are_left_out_of_a_new_profile() -> None:
    resource = create_resource(
        _desired(
            firstName=None,
            lastName="",
            jobTitle=None,
            mail=None,
            employeeNumber=None,
            department=None,
            dtContractStart=None,
            manager_profile_id=None,
        )
    )

    assert _nulls_or_empty_texts(resource) == []
    assert "name" not in resource
    assert "title" not in resource
    assert "emails" not in resource
    assert resource["userName"] == "cmartin"
    assert not resource.get(scim.ENTERPRISE)
    assert resource[scim.ELEVO] == {"syncSource": "lucca"}


def test_a_name_with_one_part_keeps_that_part() -> None:
    assert create_resource(_desired(firstName=None))["name"] == {"familyName": "Martin"}


def test_a_new_profile_without_a_manager_profile_has_no_manager() -> None:
    enterprise = create_resource(_desired(manager_profile_id=None))[scim.ENTERPRISE]

    assert "manager" not in enterprise
    assert enterprise["employeeNumber"] == "00042"


def test_a_new_profile_carries_the_custom_fields_that_have_a_value() -> None:
    desired = _desired(
        {"Cost center": "extendedData.e_cc", "Remote": "extendedData.e_remote"},
        extendedData={"e_cc": {"id": 1, "value": "CC-12"}, "e_remote": {"id": 2, "value": None}},
    )

    assert create_resource(desired)[scim.ELEVO]["customFields"] == [
        {"name": "Cost center", "value": "CC-12"}
    ]


def test_a_created_profile_read_back_needs_no_change() -> None:
    desired = _desired(
        {"Cost center": "extendedData.e_cc"}, extendedData={"e_cc": {"id": 1, "value": "CC-12"}}
    )
    created = profile_from_scim({"id": "new", **create_resource(desired)})

    assert decide(LUCCA_ID, Standing.ACTIVE, desired, created).action is Action.UNCHANGED


# --- plain attributes -----------------------------------------------------------------------

PLAIN = [
    ("externalId", "externalId"),
    (scim.USER_NAME, "userName"),
    (scim.GIVEN_NAME, "name.givenName"),
    (scim.FAMILY_NAME, "name.familyName"),
    (scim.TITLE, "title"),
    (scim.EMPLOYEE_NUMBER, f"{scim.ENTERPRISE}:employeeNumber"),
    (scim.DEPARTMENT, f"{scim.ENTERPRISE}:department"),
    (scim.WORK_START_DATE, f"{scim.ELEVO}:workStartDate"),
    (scim.SYNC_SOURCE, f"{scim.ELEVO}:syncSource"),
]


@pytest.mark.parametrize(("path", "scim_path"), PLAIN)
def test_a_new_value_replaces_the_attribute(path: str, scim_path: str) -> None:
    operations, rewrites_list = _operations({path: Change("old", "new")})

    assert operations == [{"op": "replace", "path": scim_path, "value": "new"}]
    assert rewrites_list is False


@pytest.mark.parametrize(("path", "scim_path"), PLAIN)
def test_an_absent_value_removes_the_attribute_never_writes_empty(
    path: str, scim_path: str
) -> None:
    operations, _ = _operations({path: Change("old", None)})

    assert operations == [{"op": "remove", "path": scim_path}]


@pytest.mark.parametrize("active", [True, False])
def test_suspend_and_reactivate_replace_active(active: bool) -> None:
    assert _operations({scim.ACTIVE: Change(not active, active)}) == (
        [{"op": "replace", "path": "active", "value": active}],
        False,
    )


def test_a_release_removes_sync_source_and_nothing_else() -> None:
    profile = make_profile()
    decision = decide(LUCCA_ID, Standing.EXCLUDED, _desired(jobTitle="CTO"), profile)

    assert patch_operations(decision.diff, None, profile) == (
        [{"op": "remove", "path": f"{scim.ELEVO}:syncSource"}],
        False,
    )


def test_the_manager_is_a_reference_to_the_managers_profile() -> None:
    assert _operations({scim.MANAGER: Change(None, "elevo-77")})[0] == [
        {"op": "replace", "path": MANAGER, "value": {"value": "elevo-77"}}
    ]
    assert _operations({scim.MANAGER: Change("elevo-77", None)})[0] == [
        {"op": "remove", "path": MANAGER}
    ]


# --- emails ---------------------------------------------------------------------------------


def test_a_new_work_email_rewrites_the_list_keeping_the_other_entries() -> None:
    profile = make_profile(emails=[{"value": MAIL, "type": "work", "primary": True}, HOME])

    operations, rewrites_list = _operations(
        {scim.WORK_EMAIL: Change(MAIL, "c.martin@acme.example")}, profile=profile
    )

    assert operations == [
        {
            "op": "replace",
            "path": "emails",
            "value": [{"value": "c.martin@acme.example", "type": "work", "primary": True}, HOME],
        }
    ]
    assert rewrites_list is True


def test_removing_the_work_email_keeps_the_other_entries() -> None:
    profile = make_profile(emails=[{"value": MAIL, "type": "work", "primary": True}, HOME])

    assert _operations({scim.WORK_EMAIL: Change(MAIL, None)}, profile=profile) == (
        [{"op": "replace", "path": "emails", "value": [HOME]}],
        True,
    )


def test_removing_the_only_email_removes_the_list() -> None:
    assert _operations({scim.WORK_EMAIL: Change(MAIL, None)}) == (
        [{"op": "remove", "path": "emails"}],
        True,
    )


def test_the_work_email_is_primary_unless_another_entry_already_is() -> None:
    home_primary = {**HOME, "primary": True}

    assert merged_emails((), MAIL) == [{"value": MAIL, "type": "work", "primary": True}]
    assert merged_emails((HOME,), MAIL)[0]["primary"] is True
    assert merged_emails((home_primary,), MAIL) == [
        {"value": MAIL, "type": "work", "primary": False},
        home_primary,
    ]


def test_every_old_work_entry_is_replaced_by_the_one_from_lucca() -> None:
    old = ({"value": "a@acme.example", "type": "work"}, {"value": "b@acme.example", "type": "work"})

    assert merged_emails(old, MAIL) == [{"value": MAIL, "type": "work", "primary": True}]


# --- custom fields --------------------------------------------------------------------------


def test_a_changed_custom_field_rewrites_the_list_keeping_unmapped_entries() -> None:
    profile = make_profile(
        elevo={"customFields": [{"name": "Cost center", "value": "CC-1"}, BADGE]}
    )
    desired = {**_desired(), COST_CENTER: "CC-12"}

    operations, rewrites_list = _operations(
        {COST_CENTER: Change("CC-1", "CC-12")}, desired, profile
    )

    assert operations == [
        {
            "op": "replace",
            "path": scim.CUSTOM_FIELDS,
            "value": [BADGE, {"name": "Cost center", "value": "CC-12"}],
        }
    ]
    assert rewrites_list is True


def test_an_emptied_custom_field_leaves_its_entry_out() -> None:
    profile = make_profile(
        elevo={"customFields": [{"name": "Cost center", "value": "CC-1"}, BADGE]}
    )
    desired = {**_desired(), COST_CENTER: None}

    operations, _ = _operations({COST_CENTER: Change("CC-1", None)}, desired, profile)

    assert operations == [{"op": "replace", "path": scim.CUSTOM_FIELDS, "value": [BADGE]}]


def test_an_emptied_list_of_custom_fields_is_removed() -> None:
    profile = make_profile(elevo={"customFields": [{"name": "Cost center", "value": "CC-1"}]})
    desired = {**_desired(), COST_CENTER: None}

    assert _operations({COST_CENTER: Change("CC-1", None)}, desired, profile) == (
        [{"op": "remove", "path": scim.CUSTOM_FIELDS}],
        True,
    )


def test_several_changed_custom_fields_are_one_rewrite_with_every_mapped_value() -> None:
    remote = scim.custom_field_path("Remote")
    desired = {**_desired(), COST_CENTER: "CC-12", remote: "true"}
    diff = {COST_CENTER: Change(None, "CC-12"), remote: Change(None, "true")}

    operations, _ = _operations(diff, desired, make_profile(elevo={"customFields": [BADGE]}))

    assert operations == [
        {
            "op": "replace",
            "path": scim.CUSTOM_FIELDS,
            "value": [
                BADGE,
                {"name": "Cost center", "value": "CC-12"},
                {"name": "Remote", "value": "true"},
            ],
        }
    ]


def test_merged_custom_fields_sets_mapped_entries_and_keeps_the_rest() -> None:
    current = ({"name": "Cost center", "value": "CC-1"}, BADGE)

    assert merged_custom_fields(current, {COST_CENTER: "CC-12", scim.TITLE: "CTO"}) == [
        BADGE,
        {"name": "Cost center", "value": "CC-12"},
    ]
    assert merged_custom_fields(current, {}) == [{"name": "Cost center", "value": "CC-1"}, BADGE]


def test_only_list_rewrites_ask_for_if_match() -> None:
    diff = {scim.TITLE: Change("Dev", "CTO"), scim.MANAGER: Change(None, "m")}

    assert _operations(diff)[1] is False
    assert _operations({**diff, scim.WORK_EMAIL: Change(MAIL, "x@acme.example")})[1] is True


# --- property: what the sync writes is what it then reads -----------------------------------


@st.composite
def _lucca_and_elevo(draw: st.DrawFn) -> tuple[Standing, dict[str, Any] | None, dict[str, Any]]:
    standing = draw(st.sampled_from(Standing))
    user = make_lucca_user(
        mail=draw(st.sampled_from([MAIL, "c.martin@acme.example", None])),
        jobTitle=draw(st.sampled_from(["Développeuse", "CTO", None])),
        manager=draw(st.sampled_from([None, {"id": 12, "name": "Hélène Dubois"}])),
        extendedData={
            "e_cc": draw(st.sampled_from([{"id": 1, "value": "CC-12"}, None])),
            "e_remote": draw(st.sampled_from([True, False, None])),
        },
    )
    desired = None
    if standing is not Standing.GONE:
        desired = desired_attributes(
            user,
            custom_fields={"Cost center": "extendedData.e_cc", "Remote": "extendedData.e_remote"},
            manager_profile_id=MANAGER_PROFILE_ID if user.manager_id else None,
            active=standing is Standing.ACTIVE,
        )
    emails = [{"value": MAIL, "type": "work", "primary": True}, HOME]
    resource = make_scim_user(
        externalId=draw(st.sampled_from([LUCCA_ID, None])),
        title=draw(st.sampled_from(["Développeuse", None])),
        active=draw(st.booleans()),
        emails=draw(st.sampled_from([emails, emails[:1], [HOME], None])),
        enterprise={"manager": draw(st.sampled_from([None, {"value": "elevo-3"}]))},
        elevo={
            "syncSource": draw(st.sampled_from(["lucca", None])),
            "customFields": draw(
                st.sampled_from([None, [BADGE], [{"name": "Cost center", "value": "CC-1"}, BADGE]])
            ),
        },
    )
    return standing, desired, resource


@given(_lucca_and_elevo())
def test_a_profile_patched_as_decided_needs_no_further_write(
    case: tuple[Standing, dict[str, Any] | None, dict[str, Any]],
) -> None:
    standing, desired, resource = case
    profile = profile_from_scim(resource)
    decision = decide(LUCCA_ID, standing, desired, profile)
    operations, _ = patch_operations(decision.diff, desired, profile)

    patched = apply_patch(resource, operations)
    again = decide(LUCCA_ID, standing, desired, profile_from_scim(patched))

    assert not again.writes, again.plan_entry()
    assert patched.get("emails", []) == [e for e in patched.get("emails", []) if e]
    assert [e for e in patched.get("emails", []) if e.get("type") != "work"] == [
        e for e in resource.get("emails", []) if e.get("type") != "work"
    ]
    kept = [c for c in patched.get(scim.ELEVO, {}).get("customFields", []) if c["name"] == "Badge"]
    assert kept == [c for c in resource[scim.ELEVO].get("customFields", []) if c == BADGE]


@given(_lucca_and_elevo())
def test_a_created_profile_read_back_is_up_to_date(
    case: tuple[Standing, dict[str, Any] | None, dict[str, Any]],
) -> None:
    _, desired, _ = case
    if desired is None:
        return
    desired = {**desired, scim.ACTIVE: True}
    created = profile_from_scim({"id": "new", **create_resource(desired)})

    assert decide(LUCCA_ID, Standing.ACTIVE, desired, created).action is Action.UNCHANGED
