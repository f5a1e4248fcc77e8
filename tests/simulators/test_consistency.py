"""The consistency checker reads the contracts on its own: it catches what the sync gets wrong.

Lucca users and SCIM profiles are written out by hand here, in the shapes the contracts give,
so that a mistake shared by the sync's core and the checker cannot hide.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from app.core import patch, rules
from app.core.lucca_user import parse_user
from simulators import consistency
from simulators.consistency import check

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ELEVO = "urn:ietf:params:scim:schemas:extension:elevo:2.0:User"
TODAY = date(2025, 3, 3)
SKIP = "e_skip_elevo_sync"
CUSTOM = {"cost": "extendedData.e_cost", "entity": "legalEntity.name", "langs": "extendedData.e_l"}


def lucca(user_id: int, **changes: Any) -> dict[str, Any]:
    """A v3 user as the simulator holds it; 1 is the boss, the others report to 1."""
    item: dict[str, Any] = {
        "id": user_id,
        "firstName": "Léa",
        "lastName": "Martin",
        "mail": f"user{user_id}@acme.example",
        "login": f"user{user_id}",
        "jobTitle": "Engineer",
        "employeeNumber": f"{user_id:05d}",
        "dtContractStart": "2020-09-01T00:00:00",
        "dtContractEnd": None,
        "manager": None if user_id == 1 else {"id": 1, "name": "Boss"},
        "department": {"id": 3, "name": "R&D"},
        "legalEntity": {"id": 1, "name": "Acme SAS"},
        "extendedData": {
            SKIP: {"id": 90 + user_id, "value": False},
            "e_cost": {"id": 10, "value": 1250.5},
            "e_l": [{"id": 1, "value": "fr"}, {"id": 2, "value": "en"}],
        },
    }
    item.update(changes)
    return item


def scim(user_id: int, **changes: Any) -> dict[str, Any]:
    """The SCIM User the rules imply for `lucca(user_id)`, as Elevo returns it."""
    resource: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE, ELEVO],
        "id": f"scim-{user_id}",
        "externalId": str(user_id),
        "userName": f"user{user_id}@acme.example",
        "active": True,
        "name": {"givenName": "Léa", "familyName": "Martin"},
        "title": "Engineer",
        "emails": [{"value": f"user{user_id}@acme.example", "type": "work", "primary": True}],
        ENTERPRISE: {
            "employeeNumber": f"{user_id:05d}",
            "department": "R&D",
            **({} if user_id == 1 else {"manager": {"value": "scim-1"}}),
        },
        ELEVO: {
            "syncSource": "lucca",
            "workStartDate": "2020-09-01",
            "customFields": [
                {"name": "cost", "value": "1250.5"},
                {"name": "entity", "value": "Acme SAS"},
                {"name": "langs", "value": "fr, en"},
            ],
        },
        "meta": {"resourceType": "User", "version": 'W/"1"'},
    }
    resource.update(changes)
    return resource


def run(items: list[dict[str, Any]], profiles: list[Any]) -> consistency.Report:
    return check(items, profiles, skip_field=SKIP, custom_fields=CUSTOM, today=TODAY)


def with_ticked(item: dict[str, Any], value: Any) -> dict[str, Any]:
    item["extendedData"][SKIP] = value
    return item


def test_it_imports_nothing_from_the_app() -> None:
    # Lines, not ast.parse: CPython 3.11.7's AST depth check trips at random late in a session.
    source = Path(consistency.__file__).read_text()
    imports = re.findall(r"^\s*(?:from|import)\s+([\w.]+)", source, flags=re.MULTILINE)
    assert imports  # the pattern does find the module's imports
    assert not [name for name in imports if name == "app" or name.startswith("app.")]


def test_profiles_the_rules_imply_are_consistent() -> None:
    report = run([lucca(1), lucca(2)], [scim(1), scim(2)])
    assert report.mismatches == []
    assert report.conflicts == []
    assert report.checked == 2


def test_a_department_that_differs_is_a_mismatch() -> None:
    profile = scim(2)
    profile[ENTERPRISE]["department"] = "Sales"
    [problem] = run([lucca(1), lucca(2)], [scim(1), profile]).mismatches
    assert problem == "2: department is 'Sales', expected 'R&D'"


def test_a_manager_is_the_scim_id_of_the_managers_profile() -> None:
    profile = scim(2)
    profile[ENTERPRISE]["manager"] = {"value": "1"}  # the Lucca id, not Elevo's
    [problem] = run([lucca(1), lucca(2)], [scim(1), profile]).mismatches
    assert problem == "2: manager is '1', expected 'scim-1'"


def test_a_self_managed_boss_and_a_manager_without_profile_have_no_manager() -> None:
    boss = lucca(1, manager={"id": 1})
    left_manager = lucca(3, dtContractEnd="2024-12-31T00:00:00")
    report = run([boss, lucca(2, manager={"id": 3})], [scim(1), without_manager(scim(2))])
    assert report.mismatches == []
    report = run([boss, lucca(2, manager={"id": 3}), left_manager], [scim(1), scim(2)])
    assert report.mismatches == ["2: manager is 'scim-1', expected None"]


def without_manager(resource: dict[str, Any]) -> dict[str, Any]:
    del resource[ENTERPRISE]["manager"]
    return resource


@pytest.mark.parametrize(
    ("lucca_value", "elevo_text"),
    [
        (1250.5, "1250.5"),
        (1e20, "100000000000000000000"),
        (42, "42"),
        (True, "true"),
        ({"id": 7, "name": "Paris"}, "Paris"),
        ([{"id": 1, "value": "fr"}, {"id": 2, "value": ""}, "de"], "fr, de"),
    ],
)
def test_custom_field_values_become_text(lucca_value: Any, elevo_text: str) -> None:
    item = lucca(1)
    item["extendedData"]["e_cost"] = {"id": 10, "value": lucca_value}
    profile = scim(1)
    profile[ELEVO]["customFields"][0]["value"] = elevo_text
    assert run([item], [profile]).mismatches == []


def test_a_number_in_exponent_form_is_a_mismatch() -> None:
    item = lucca(1)
    item["extendedData"]["e_cost"] = {"id": 10, "value": 1e20}
    profile = scim(1)
    profile[ELEVO]["customFields"][0]["value"] = "1e+20"
    [problem] = run([item], [profile]).mismatches
    assert "customFields[cost] is '1e+20', expected '100000000000000000000'" in problem


def test_an_empty_lucca_value_is_an_absent_attribute_never_an_empty_string() -> None:
    item = lucca(1, jobTitle="  ")
    item["extendedData"]["e_cost"] = {"id": 10, "value": None}
    profile = scim(1)
    del profile["title"]
    del profile[ELEVO]["customFields"][0]
    assert run([item], [profile]).mismatches == []
    profile["title"] = ""
    assert run([item], [profile]).mismatches == ["1: title is '', expected None"]


def test_user_name_falls_back_to_the_login() -> None:
    profile = scim(1, userName="user1")
    del profile["emails"]
    assert run([lucca(1, mail=None)], [profile]).mismatches == []


def test_an_excluded_employee_is_released_never_suspended() -> None:
    excluded_and_left = with_ticked(lucca(2, dtContractEnd="2024-12-31T00:00:00"), True)
    released = scim(2)
    del released[ELEVO]["syncSource"]
    assert run([lucca(1), excluded_and_left], [scim(1), released]).mismatches == []
    suspended = scim(2, active=False)  # the sync suspended instead of releasing
    [problem] = run([lucca(1), excluded_and_left], [scim(1), suspended]).mismatches
    assert problem == "2: excluded but still managed"
    released_and_suspended = scim(2, active=False)
    del released_and_suspended[ELEVO]["syncSource"]
    excluded = with_ticked(lucca(2), {"id": 5, "value": True})
    [problem] = run([lucca(1), excluded], [scim(1), released_and_suspended]).mismatches
    assert problem == "2: excluded, yet suspended"


def test_an_absent_skip_field_means_unticked() -> None:
    item = lucca(2)
    del item["extendedData"][SKIP]
    assert run([lucca(1), item], [scim(1), scim(2)]).mismatches == []
    assert run([lucca(1), item], [scim(1)]).mismatches == ["2: active in Lucca, no managed profile"]


def test_a_skip_field_that_is_no_checkbox_is_a_per_user_error() -> None:
    item = with_ticked(lucca(2), {"id": 5, "value": "yes"})
    report = run([lucca(1), item], [scim(1)])
    assert report.mismatches == []
    assert report.unreadable == ["2: skip field e_skip_elevo_sync holds a str"]


def test_a_left_employee_is_suspended_with_its_fields_kept_equal_to_lucca() -> None:
    left = lucca(2, dtContractEnd="2025-03-02T00:00:00", jobTitle="Lead")
    suspended = scim(2, active=False, title="Lead")
    assert run([lucca(1), left], [scim(1), suspended]).mismatches == []
    stale = scim(2, active=False)
    assert run([lucca(1), left], [scim(1), stale]).mismatches == [
        "2: title is 'Engineer', expected 'Lead'"
    ]
    still_active = scim(2, title="Lead")
    assert run([lucca(1), left], [scim(1), still_active]).mismatches == [
        "2: active is True, expected False"
    ]
    last_day_today = lucca(2, dtContractEnd="2025-03-03T00:00:00")
    assert run([lucca(1), last_day_today], [scim(1), scim(2)]).mismatches == []


def test_a_gone_employee_is_suspended_and_keeps_its_last_values() -> None:
    gone = scim(2, active=False, title="Whatever it was")
    assert run([lucca(1)], [scim(1), gone]).mismatches == []
    assert run([lucca(1)], [scim(1), scim(2)]).mismatches == ["2: gone from Lucca but still active"]


def test_a_user_name_taken_by_another_linked_profile_is_a_conflict() -> None:
    shared = lucca(2, mail="user1@acme.example")
    report = run([lucca(1), shared], [scim(1)])
    assert report.mismatches == []
    assert report.conflicts == ["2: userName held by 1"]
    hand_made = scim(9, externalId=None, userName="USER2@acme.example")
    assert run([lucca(1), lucca(2)], [scim(1), hand_made]).mismatches == [
        "2: active in Lucca, no managed profile"  # adoptable: the sync should have taken it
    ]


def test_two_profiles_linked_to_one_employee_is_a_mismatch() -> None:
    twin = scim(2, id="scim-twin")
    assert (
        "2: linked to two or more profiles"
        in run([lucca(1), lucca(2)], [scim(1), scim(2), twin]).mismatches
    )


# -- a bug in the sync's own rules shows ------------------------------------------------------


def profile_written_by_the_app(item: Mapping[str, Any], manager: str | None) -> dict[str, Any]:
    """What the sync would POST for a new employee, read back as Elevo returns it."""
    user = parse_user(item)
    standing = rules.standing_of(user, skip_field=SKIP, today=TODAY)
    desired = rules.desired_attributes(  # looked up at call time: a monkeypatch applies
        user,
        custom_fields=CUSTOM,
        manager_profile_id=manager,
        active=standing is rules.Standing.ACTIVE,
    )
    return patch.create_resource(desired) | {"id": f"scim-{user.id}"}


def test_a_bug_in_the_apps_mapping_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    items = [lucca(1), lucca(2)]
    written = [
        profile_written_by_the_app(items[0], None),
        profile_written_by_the_app(items[1], "scim-1"),
    ]
    assert run(items, written).mismatches == []

    real = rules.desired_attributes

    def department_id_instead_of_name(user: Any, **kwargs: Any) -> dict[str, Any]:
        desired = real(user, **kwargs)
        desired[f"{ENTERPRISE}:department"] = user.department_id
        return desired

    monkeypatch.setattr(rules, "desired_attributes", department_id_instead_of_name)
    written = [
        profile_written_by_the_app(items[0], None),
        profile_written_by_the_app(items[1], "scim-1"),
    ]
    report = run(items, written)
    assert report.mismatches == [
        "1: department is '3', expected 'R&D'",
        "2: department is '3', expected 'R&D'",
    ]
