"""Lucca v3 items as typed users, the `fields=` projection, and custom field values as text."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.errors import InvalidLuccaUser
from app.core.lucca_user import (
    BASE_FIELDS,
    as_text,
    is_user_id,
    parse_user,
    projection,
    value_at,
)
from tests.factories import LOGIN, MAIL, make_lucca_item, make_lucca_user

# --- parse_user --------------------------------------------------------------------------


def test_every_synced_field_is_read_and_typed() -> None:
    user = make_lucca_user(dtContractEnd="2026-06-30T00:00:00")

    assert user.id == "416"
    assert user.first_name == "Camille"
    assert user.last_name == "Martin"
    assert user.mail == MAIL
    assert user.login == LOGIN
    assert user.job_title == "Développeuse"
    assert user.employee_number == "00042"
    assert user.contract_start == date(2021, 9, 1)
    assert user.contract_end == date(2026, 6, 30)
    assert user.modified_at == datetime(2025, 1, 2, 8, 45, 23, 120000)
    assert user.manager_id == "12"
    assert user.department_id == "7"
    assert user.department_name == "R&D"


def test_the_raw_item_is_kept_for_custom_fields_and_the_skip_field() -> None:
    item = make_lucca_item(legalEntity={"id": 3, "name": "Acme SAS"})

    assert parse_user(item).raw == item


@pytest.mark.parametrize("user_id", [416, "416", "0416", "000416"])
def test_the_id_is_canonical_text_whether_lucca_sends_a_number_or_a_string(user_id: object) -> None:
    assert make_lucca_user(id=user_id).id == "416"


@pytest.mark.parametrize("user_id", [None, 0, -3, True, 4.5, "abc", "", "-1", [416]])
def test_an_item_without_a_valid_id_is_invalid(user_id: object) -> None:
    with pytest.raises(InvalidLuccaUser, match="has no valid id"):
        make_lucca_user(id=user_id)


@pytest.mark.parametrize("user_id", ["0", "000", "²", "٤١٦", "4" * 5000 + "x"])
def test_a_string_id_must_be_a_positive_decimal_number(user_id: str) -> None:
    with pytest.raises(InvalidLuccaUser, match="has no valid id"):
        make_lucca_user(id=user_id)


@pytest.mark.parametrize(
    ("text", "keys_a_user"),
    [("416", True), ("0416", False), ("#3", False), ("", False), ("0", False), ("٤", False)],
)
def test_only_canonical_digits_key_a_user(text: str, keys_a_user: bool) -> None:
    assert is_user_id(text) is keys_a_user


def test_the_user_name_is_the_mail_or_else_the_login() -> None:
    assert make_lucca_user().user_name == MAIL
    assert make_lucca_user(mail=None).user_name == LOGIN
    assert make_lucca_user(mail="  ").user_name == LOGIN
    assert make_lucca_user(mail=None, login=None).user_name is None


@pytest.mark.parametrize("empty", [None, "", "   "])
@pytest.mark.parametrize(
    ("key", "attribute"),
    [
        ("firstName", "first_name"),
        ("lastName", "last_name"),
        ("mail", "mail"),
        ("login", "login"),
        ("jobTitle", "job_title"),
        ("employeeNumber", "employee_number"),
    ],
)
def test_empty_text_reads_as_absent(key: str, attribute: str, empty: str | None) -> None:
    assert getattr(make_lucca_user(**{key: empty}), attribute) is None


def test_missing_keys_read_as_absent() -> None:
    user = parse_user({"id": 416})

    assert user.first_name is None
    assert user.contract_start is None
    assert user.contract_end is None
    assert user.modified_at is None
    assert user.manager_id is None
    assert user.department_id is None
    assert user.department_name is None


def test_text_is_stripped() -> None:
    assert make_lucca_user(firstName="  Camille ").first_name == "Camille"


@pytest.mark.parametrize(
    ("key", "attribute"), [("dtContractStart", "contract_start"), ("dtContractEnd", "contract_end")]
)
def test_empty_dates_read_as_absent(key: str, attribute: str) -> None:
    assert getattr(make_lucca_user(**{key: ""}), attribute) is None
    assert getattr(make_lucca_user(**{key: None}), attribute) is None


def test_an_offset_on_a_date_is_dropped_not_converted() -> None:
    # Lucca dates are the tenant's local dates: 23:30 at -05:00 is still that local day.
    user = make_lucca_user(
        dtContractEnd="2025-06-30T23:30:00-05:00", modifiedAt="2025-01-02T08:45:23+02:00"
    )

    assert user.contract_end == date(2025, 6, 30)
    assert user.modified_at == datetime(2025, 1, 2, 8, 45, 23)


@pytest.mark.parametrize("manager_id", [416, "416"])
def test_a_self_managed_user_has_no_manager(manager_id: object) -> None:
    assert make_lucca_user(manager={"id": manager_id, "name": "Camille Martin"}).manager_id is None


@pytest.mark.parametrize("manager", [None, {}, {"id": None, "name": "?"}])
def test_a_null_manager_or_manager_id_is_no_manager(manager: object) -> None:
    assert make_lucca_user(manager=manager).manager_id is None


def test_a_department_without_a_name_has_no_department_name() -> None:
    user = make_lucca_user(department={"id": 7, "name": None})

    assert user.department_id == "7"
    assert user.department_name is None


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"firstName": 12}, "firstName should be text, got int"),
        ({"lastName": ["Martin"]}, "lastName should be text, got list"),
        ({"mail": True}, "mail should be text, got bool"),
        ({"jobTitle": {"name": "Dev"}}, "jobTitle should be text, got dict"),
        ({"employeeNumber": 42}, "employeeNumber should be text, got int"),
        ({"manager": "Hélène Dubois"}, "manager should be an object or null, got str"),
        ({"department": 7}, "department should be an object or null, got int"),
        ({"manager": {"id": "boss"}}, "manager.id should be a positive integer"),
        ({"manager": {"id": -2}}, "manager.id should be a positive integer"),
        ({"department": {"id": "R&D"}}, "department.id should be a positive integer"),
        ({"department": {"id": 7, "name": 7}}, "department.name should be text, got int"),
        ({"dtContractStart": "not a date"}, "dtContractStart is not an ISO date"),
        ({"dtContractEnd": "2025-02-30T00:00:00"}, "dtContractEnd is not an ISO date"),
        ({"dtContractEnd": 20250630}, "dtContractEnd should be a date, got int"),
        ({"modifiedAt": "yesterday"}, "modifiedAt is not an ISO date"),
    ],
)
def test_a_field_of_the_wrong_type_is_an_error_naming_the_user_and_the_field(
    overrides: dict[str, Any], names: str
) -> None:
    with pytest.raises(InvalidLuccaUser) as raised:
        make_lucca_user(**overrides)

    assert raised.value.user_id == "416"
    assert str(raised.value).startswith("Lucca user 416: ")
    assert names in str(raised.value)


# --- projection ----------------------------------------------------------------------------


def test_the_projection_without_custom_fields_is_the_synced_fields() -> None:
    assert (
        projection([])
        == ",".join(BASE_FIELDS)
        == (
            "id,firstName,lastName,mail,login,jobTitle,employeeNumber,dtContractStart,"
            "dtContractEnd,modifiedAt,manager[id],department[id,name],extendedData"
        )
    )


def test_custom_paths_are_added_with_brackets() -> None:
    fields = projection(["legalEntity.name", "legalEntity.code.value"])

    assert fields == projection([]) + ",legalEntity[name],legalEntity[code[value]]"


def test_extended_data_paths_add_nothing_since_extended_data_is_always_read() -> None:
    assert projection(["extendedData.e_cost_center", "extendedData.e_remote"]) == projection([])


def test_a_path_already_projected_is_not_repeated() -> None:
    assert projection(["jobTitle", "legalEntity.name", "legalEntity.name"]) == (
        projection([]) + ",legalEntity[name]"
    )


# --- value_at --------------------------------------------------------------------------------


def test_value_at_follows_a_dotted_path() -> None:
    item = make_lucca_item(
        legalEntity={"id": 3, "name": "Acme SAS"},
        extendedData={"e_cost_center": {"id": 9, "value": "CC-12"}},
    )

    assert value_at(item, "legalEntity.name") == "Acme SAS"
    assert value_at(item, "extendedData.e_cost_center") == {"id": 9, "value": "CC-12"}
    assert value_at(item, "jobTitle") == "Développeuse"


@pytest.mark.parametrize("path", ["legalEntity.name", "jobTitle.name", "extendedData.e_nope"])
def test_value_at_is_none_when_a_step_is_missing(path: str) -> None:
    assert value_at(make_lucca_item(), path) is None


# --- as_text ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-17, "-17"),
        (12.5, "12.5"),
        (1e20, "100000000000000000000"),
        (1e-7, "0.0000001"),
        ("CC-12", "CC-12"),
        ("  CC-12 ", "CC-12"),
        ({"id": 9, "value": "CC-12"}, "CC-12"),
        ({"id": 9, "value": True}, "true"),
        ({"id": 4, "name": "Acme SAS"}, "Acme SAS"),
        (["Français", "Anglais"], "Français, Anglais"),
        ([{"id": 1, "value": "Français"}, {"id": 2, "value": "Anglais"}], "Français, Anglais"),
        ([1, True, "x"], "1, true, x"),
    ],
)
def test_custom_values_become_text(value: object, text: str) -> None:
    assert as_text(value) == text


@pytest.mark.parametrize(
    "empty", [None, "", "  ", [], [None, ""], {"id": 9, "value": None}, {"id": 9, "value": ""}]
)
def test_empty_values_become_none_so_the_attribute_is_removed(empty: object) -> None:
    assert as_text(empty) is None


def test_empty_items_are_left_out_of_a_list() -> None:
    assert as_text(["Français", None, "", {"id": 2, "value": None}, "Anglais"]) == (
        "Français, Anglais"
    )


@pytest.mark.parametrize("value", [{"id": 9}, {}, {"code": "x"}, [{"id": 9}]])
def test_an_object_with_neither_value_nor_name_has_no_text_form(value: object) -> None:
    with pytest.raises(ValueError, match="neither value nor name"):
        as_text(value)


@pytest.mark.parametrize(("value", "kind"), [(b"CC-12", "bytes"), ((1, 2), "tuple")])
def test_a_non_json_value_has_no_text_form(value: object, kind: str) -> None:
    with pytest.raises(ValueError, match=kind):
        as_text(value)


@given(st.booleans())
def test_booleans_are_json_words(flag: bool) -> None:
    assert as_text(flag) == ("true" if flag else "false")


@given(st.integers())
def test_integers_are_their_decimal_digits(number: int) -> None:
    text = as_text(number)

    assert text is not None
    assert int(text) == number
    assert text.lstrip("-").isdigit()


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_are_decimal_with_no_exponent_and_lose_nothing(number: float) -> None:
    text = as_text(number)

    assert text is not None
    assert "e" not in text.lower()
    assert float(text) == number
    assert Decimal(text) == Decimal(repr(number))


_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)


@given(st.integers(), _SCALAR)
def test_an_id_value_object_is_its_value(value_id: int, value: object) -> None:
    assert as_text({"id": value_id, "value": value}) == as_text(value)


@given(st.integers(), st.text())
def test_an_id_name_object_is_its_name(value_id: int, name: str) -> None:
    assert as_text({"id": value_id, "name": name}) == as_text(name)


@given(st.lists(_SCALAR))
def test_a_list_is_its_non_empty_items_joined_by_comma_space(items: list[object]) -> None:
    texts = [text for text in map(as_text, items) if text is not None]

    assert as_text(items) == (", ".join(texts) or None)


@given(_SCALAR)
def test_text_is_never_empty_nor_padded(value: object) -> None:
    text = as_text(value)

    assert text is None or (text != "" and text == text.strip())
