"""The skip checkbox, an employee's standing, and the profile Lucca implies (sync-rules.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from app.core import scim
from app.core.errors import InvalidLuccaUser
from app.core.rules import Standing, desired_attributes, skip_value, standing_of
from tests.factories import (
    LOGIN,
    MAIL,
    MANAGER_PROFILE_ID,
    SKIP_FIELD,
    TODAY,
    make_lucca_user,
    make_profile,
)


def _skip(value: Any) -> dict[str, Any]:
    return {"extendedData": {SKIP_FIELD: value}}


def _desired(user_overrides: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "custom_fields": {},
        "manager_profile_id": MANAGER_PROFILE_ID,
        "active": True,
    }
    options.update(kwargs)
    return desired_attributes(make_lucca_user(**(user_overrides or {})), **options)


# --- the skip checkbox ----------------------------------------------------------------------


@pytest.mark.parametrize("ticked", [{"id": 1, "value": True}, True])
def test_the_checkbox_is_ticked_wrapped_or_bare(ticked: object) -> None:
    assert skip_value(make_lucca_user(**_skip(ticked)), SKIP_FIELD) is True


@pytest.mark.parametrize(
    "unticked", [{"id": 1, "value": False}, False, None, {"id": 1, "value": None}, {"id": 1}]
)
def test_false_or_null_is_not_ticked(unticked: object) -> None:
    assert skip_value(make_lucca_user(**_skip(unticked)), SKIP_FIELD) is False


def test_an_absent_checkbox_is_not_ticked() -> None:
    assert skip_value(make_lucca_user(extendedData={}), SKIP_FIELD) is False
    assert skip_value(make_lucca_user(extendedData=None), SKIP_FIELD) is False


def test_the_skip_field_code_is_the_tenants_choice() -> None:
    user = make_lucca_user(extendedData={"e_no_elevo": True, SKIP_FIELD: False})

    assert skip_value(user, "e_no_elevo") is True
    assert skip_value(user, SKIP_FIELD) is False


@pytest.mark.parametrize(
    "odd", ["true", 1, 0, "yes", {"id": 1, "value": "true"}, [True], {"id": 1, "value": 1}]
)
def test_a_non_boolean_checkbox_is_the_users_error(odd: object) -> None:
    with pytest.raises(InvalidLuccaUser, match=f"skip field {SKIP_FIELD} should be a checkbox"):
        skip_value(make_lucca_user(**_skip(odd)), SKIP_FIELD)


def test_extended_data_that_is_not_an_object_is_the_users_error() -> None:
    with pytest.raises(InvalidLuccaUser, match="extendedData should be an object"):
        skip_value(make_lucca_user(extendedData=[]), SKIP_FIELD)


# --- standing -------------------------------------------------------------------------------


def _standing(**overrides: Any) -> Standing:
    return standing_of(make_lucca_user(**overrides), skip_field=SKIP_FIELD, today=TODAY)


def _day(offset: int) -> str:
    return f"{(TODAY + timedelta(days=offset)).isoformat()}T00:00:00"


def test_an_employee_without_an_end_date_is_active() -> None:
    assert _standing() is Standing.ACTIVE


def test_an_employee_whose_last_day_was_yesterday_has_left() -> None:
    assert _standing(dtContractEnd=_day(-1)) is Standing.LEFT


def test_an_employee_on_their_last_day_is_still_active() -> None:
    assert _standing(dtContractEnd=_day(0)) is Standing.ACTIVE


def test_an_employee_leaving_later_is_active() -> None:
    assert _standing(dtContractEnd=_day(30)) is Standing.ACTIVE


def test_a_future_hire_is_active() -> None:
    assert _standing(dtContractStart=_day(20)) is Standing.ACTIVE


def test_an_employee_lucca_no_longer_returns_is_gone() -> None:
    assert standing_of(None, skip_field=SKIP_FIELD, today=TODAY) is Standing.GONE


def test_an_excluded_employee_is_excluded() -> None:
    assert _standing(**_skip(True)) is Standing.EXCLUDED


def test_excluded_wins_over_left() -> None:
    assert _standing(dtContractEnd=_day(-400), **_skip({"id": 1, "value": True})) is (
        Standing.EXCLUDED
    )


def test_a_non_boolean_checkbox_makes_the_standing_an_error() -> None:
    with pytest.raises(InvalidLuccaUser):
        _standing(**_skip("true"))


# --- desired attributes ---------------------------------------------------------------------


def test_the_seven_fields_email_and_user_name_map_to_their_scim_attributes() -> None:
    assert _desired() == {
        "externalId": "416",
        scim.USER_NAME: MAIL,
        scim.WORK_EMAIL: MAIL,
        scim.GIVEN_NAME: "Camille",
        scim.FAMILY_NAME: "Martin",
        scim.TITLE: "Développeuse",
        scim.EMPLOYEE_NUMBER: "00042",
        scim.MANAGER: MANAGER_PROFILE_ID,
        scim.WORK_START_DATE: "2021-09-01",
        scim.DEPARTMENT: "R&D",
        scim.ACTIVE: True,
        scim.SYNC_SOURCE: "lucca",
    }


def test_the_default_factories_agree_so_tests_can_state_one_difference() -> None:
    assert _desired() == dict(make_profile().attributes)


def test_the_manager_is_the_managers_elevo_profile_id_not_the_lucca_id() -> None:
    assert _desired(manager_profile_id="elevo-77")[scim.MANAGER] == "elevo-77"
    assert _desired(manager_profile_id=None)[scim.MANAGER] is None


def test_active_is_what_the_caller_decided() -> None:
    assert _desired(active=False)[scim.ACTIVE] is False


def test_the_user_name_falls_back_to_the_login_and_the_email_is_then_absent() -> None:
    desired = _desired({"mail": None})

    assert desired[scim.USER_NAME] == LOGIN
    assert desired[scim.WORK_EMAIL] is None


def test_a_user_with_neither_mail_nor_login_is_the_users_error() -> None:
    with pytest.raises(InvalidLuccaUser, match="neither mail nor login"):
        _desired({"mail": "", "login": None})


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"firstName": ""}, scim.GIVEN_NAME),
        ({"lastName": None}, scim.FAMILY_NAME),
        ({"jobTitle": "  "}, scim.TITLE),
        ({"employeeNumber": None}, scim.EMPLOYEE_NUMBER),
        ({"department": None}, scim.DEPARTMENT),
        ({"department": {"id": 7, "name": ""}}, scim.DEPARTMENT),
        ({"dtContractStart": None}, scim.WORK_START_DATE),
        ({"dtContractStart": ""}, scim.WORK_START_DATE),
    ],
)
def test_an_empty_lucca_value_is_none_so_the_attribute_is_removed(
    overrides: dict[str, Any], path: str
) -> None:
    desired = _desired(overrides)

    assert path in desired
    assert desired[path] is None


def test_no_desired_value_is_ever_an_empty_string() -> None:
    blank = {key: "" for key in ("firstName", "lastName", "jobTitle", "employeeNumber")}
    desired = _desired(
        {**blank, "department": {"id": 7, "name": ""}, "extendedData": {"e_cc": ""}},
        custom_fields={"Cost center": "extendedData.e_cc"},
    )

    assert "" not in desired.values()


def test_the_work_start_date_is_the_date_part_of_the_contract_start() -> None:
    assert _desired({"dtContractStart": "2024-01-15T00:00:00"})[scim.WORK_START_DATE] == (
        "2024-01-15"
    )


def test_custom_fields_are_text_under_their_elevo_name() -> None:
    desired = _desired(
        {
            "legalEntity": {"id": 3, "name": "Acme SAS"},
            "extendedData": {
                SKIP_FIELD: {"id": 1, "value": False},
                "e_cost_center": {"id": 8, "value": "CC-12"},
                "e_remote": {"id": 9, "value": True},
                "e_languages": [{"id": 10, "value": "Français"}, {"id": 11, "value": "Anglais"}],
            },
        },
        custom_fields={
            "Cost center": "extendedData.e_cost_center",
            "Remote": "extendedData.e_remote",
            "Languages": "extendedData.e_languages",
            "Entity": "legalEntity.name",
            "Unset": "extendedData.e_missing",
        },
    )

    assert desired[scim.custom_field_path("Cost center")] == "CC-12"
    assert desired[scim.custom_field_path("Remote")] == "true"
    assert desired[scim.custom_field_path("Languages")] == "Français, Anglais"
    assert desired[scim.custom_field_path("Entity")] == "Acme SAS"
    assert desired[scim.custom_field_path("Unset")] is None


def test_a_custom_value_with_no_text_form_is_the_users_error_naming_the_field() -> None:
    with pytest.raises(InvalidLuccaUser, match=r"custom field Code \(extendedData.e_code\)"):
        _desired(
            {"extendedData": {"e_code": {"id": 4}}},
            custom_fields={"Code": "extendedData.e_code"},
        )


def test_custom_fields_add_paths_and_change_no_other() -> None:
    plain = _desired()
    with_custom = _desired(custom_fields={"Cost center": "extendedData.e_cost_center"})

    assert set(with_custom) - set(plain) == {scim.custom_field_path("Cost center")}
    assert {path: with_custom[path] for path in plain} == plain
