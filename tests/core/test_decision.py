"""The sync-rules table, cell by cell, and the properties every decision keeps."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core import scim
from app.core.decision import Action, Change, Decision, decide, diff_attributes
from app.core.profile import ElevoProfile
from app.core.rules import Standing, desired_attributes
from tests.factories import (
    LOGIN,
    LUCCA_ID,
    MAIL,
    MANAGER_PROFILE_ID,
    PROFILE_ID,
    make_lucca_user,
    make_profile,
)

ACTIVE, LEFT, GONE, EXCLUDED = Standing.ACTIVE, Standing.LEFT, Standing.GONE, Standing.EXCLUDED
COST_CENTER = scim.custom_field_path("Cost center")
CUSTOM_FIELDS = {"Cost center": "extendedData.e_cost_center"}


def _desired(standing: Standing, **user_overrides: Any) -> dict[str, Any] | None:
    """What the worker passes to decide(): None for a gone employee."""
    if standing is GONE:
        return None
    return desired_attributes(
        make_lucca_user(**user_overrides),
        custom_fields={},
        manager_profile_id=MANAGER_PROFILE_ID,
        active=standing is ACTIVE,
    )


def _decide(standing: Standing, profile: ElevoProfile | None, **user_overrides: Any) -> Decision:
    return decide(LUCCA_ID, standing, _desired(standing, **user_overrides), profile)


def managed(**overrides: Any) -> ElevoProfile:
    """Camille's profile, created and managed by the sync (overrides as make_profile's)."""
    return make_profile(**overrides)


def hand_made() -> ElevoProfile:
    """A profile created in Elevo by hand: no externalId, no syncSource, Camille's mail in
    capitals as its userName."""
    return make_profile(externalId=None, userName=MAIL.upper(), elevo={"syncSource": None})


def released() -> ElevoProfile:
    """A profile the sync released when Camille was excluded: externalId kept, no syncSource."""
    return make_profile(elevo={"syncSource": None})


def someone_elses() -> ElevoProfile:
    """A profile with Camille's userName, linked to another Lucca employee."""
    return make_profile(externalId="417", elevo={"syncSource": None})


# --- the table: rows are what Lucca says, columns what Elevo has ----------------------------

NOT_MANAGED = [
    pytest.param(hand_made, id="hand-made"),
    pytest.param(released, id="released"),
    pytest.param(someone_elses, id="someone else's"),
]


def test_active_without_a_profile_creates_one_with_every_present_value() -> None:
    decision = _decide(ACTIVE, None, jobTitle=None)

    assert decision.action is Action.CREATE
    assert decision.profile_id is None
    desired = _desired(ACTIVE, jobTitle=None)
    assert desired is not None
    assert decision.diff == {
        path: Change(None, value) for path, value in desired.items() if value is not None
    }
    assert decision.diff[scim.SYNC_SOURCE] == Change(None, "lucca")
    assert scim.TITLE not in decision.diff


@pytest.mark.parametrize("standing", [LEFT, GONE, EXCLUDED])
def test_not_active_without_a_profile_does_nothing(standing: Standing) -> None:
    decision = _decide(standing, None)

    assert decision.action is Action.SKIPPED
    assert decision.diff == {}
    assert not decision.writes


def test_active_and_managed_and_equal_is_unchanged() -> None:
    decision = _decide(ACTIVE, managed())

    assert decision.action is Action.UNCHANGED
    assert decision.diff == {}
    assert decision.profile_id == PROFILE_ID
    assert not decision.writes


def test_active_and_managed_updates_only_the_changed_synced_fields() -> None:
    decision = _decide(ACTIVE, managed(), jobTitle="Lead developer", department=None)

    assert decision.action is Action.UPDATE
    assert decision.diff == {
        scim.TITLE: Change("Développeuse", "Lead developer"),
        scim.DEPARTMENT: Change("R&D", None),
    }
    assert decision.profile_id == PROFILE_ID


def test_active_and_managed_but_suspended_is_reactivated_with_its_changes() -> None:
    decision = _decide(ACTIVE, managed(active=False), lastName="Martin-Dubois")

    assert decision.action is Action.REACTIVATE
    assert decision.diff == {
        scim.ACTIVE: Change(False, True),
        scim.FAMILY_NAME: Change("Martin", "Martin-Dubois"),
    }


def test_a_profile_without_an_active_attribute_counts_as_active() -> None:
    assert _decide(ACTIVE, managed(active=None)).action is Action.UNCHANGED


def test_active_and_hand_made_with_the_same_user_name_in_another_case_is_adopted() -> None:
    decision = _decide(ACTIVE, hand_made())

    assert decision.action is Action.ADOPT
    assert decision.reason == "hand-made profile with this userName"
    assert decision.profile_id == PROFILE_ID
    assert decision.diff == {
        "externalId": Change(None, LUCCA_ID),
        scim.USER_NAME: Change(MAIL.upper(), MAIL),
        scim.SYNC_SOURCE: Change(None, "lucca"),
    }


def test_a_hand_made_profile_with_an_empty_external_id_is_adopted() -> None:
    profile = make_profile(externalId="", elevo={"syncSource": None})

    assert _decide(ACTIVE, profile).action is Action.ADOPT


def test_active_and_released_with_this_external_id_is_taken_back() -> None:
    decision = _decide(ACTIVE, released(), jobTitle="CTO")

    assert decision.action is Action.ADOPT
    assert decision.reason == "released profile taken back"
    assert decision.diff == {
        scim.SYNC_SOURCE: Change(None, "lucca"),
        scim.TITLE: Change("Développeuse", "CTO"),
    }


def test_a_released_profile_is_taken_back_whatever_its_user_name() -> None:
    profile = make_profile(userName="c.martin@old-domain.example", elevo={"syncSource": None})

    assert _decide(ACTIVE, profile).action is Action.ADOPT


def test_active_and_linked_to_another_employee_is_a_conflict_and_no_write() -> None:
    decision = _decide(ACTIVE, someone_elses())

    assert decision.action is Action.CONFLICT
    assert decision.diff == {}
    assert decision.profile_id is None  # the profile is someone else's: never this employee's
    assert PROFILE_ID in decision.reason
    assert "417" in decision.reason
    assert not decision.writes


def test_a_hand_made_profile_with_another_user_name_is_a_conflict() -> None:
    profile = make_profile(
        externalId=None, userName="someone@acme.example", elevo={"syncSource": None}
    )

    assert _decide(ACTIVE, profile).action is Action.CONFLICT


def test_a_profile_managed_for_another_employee_is_a_conflict_never_taken_over() -> None:
    decision = _decide(ACTIVE, managed(externalId="417"))

    assert decision.action is Action.CONFLICT
    assert "syncSource lucca" in decision.reason


def test_a_managed_profile_without_external_id_is_a_conflict_never_taken_over() -> None:
    assert _decide(ACTIVE, managed(externalId=None)).action is Action.CONFLICT


@pytest.mark.parametrize("standing", [LEFT, GONE, EXCLUDED])
@pytest.mark.parametrize("profile", NOT_MANAGED)
def test_not_active_and_not_managed_does_nothing(
    standing: Standing, profile: Callable[[], ElevoProfile]
) -> None:
    found = profile()
    decision = _decide(standing, found)

    assert decision.action is Action.SKIPPED
    assert decision.diff == {}
    # Only a profile linked to this employee by externalId is the employee's own.
    linked = found.external_id == decision.user
    assert decision.profile_id == (PROFILE_ID if linked else None)


def test_a_profile_with_another_sync_source_is_not_managed() -> None:
    profile = make_profile(elevo={"syncSource": "workday"})

    assert not profile.managed
    assert _decide(LEFT, profile).action is Action.SKIPPED


def test_left_and_managed_is_suspended_and_its_fields_kept_equal_to_lucca() -> None:
    decision = _decide(LEFT, managed(), dtContractEnd="2025-01-31T00:00:00", jobTitle="CTO")

    assert decision.action is Action.SUSPEND
    assert decision.diff == {
        scim.ACTIVE: Change(True, False),
        scim.TITLE: Change("Développeuse", "CTO"),
    }


def test_left_and_already_suspended_and_equal_is_unchanged() -> None:
    assert _decide(LEFT, managed(active=False)).action is Action.UNCHANGED


def test_left_and_suspended_still_follows_lucca_fields() -> None:
    decision = _decide(LEFT, managed(active=False), jobTitle="CTO")

    assert decision.action is Action.UPDATE
    assert decision.diff == {scim.TITLE: Change("Développeuse", "CTO")}


def test_gone_and_managed_is_suspended_and_keeps_its_last_values() -> None:
    decision = _decide(GONE, managed(title="Old title"))

    assert decision.action is Action.SUSPEND
    assert decision.diff == {scim.ACTIVE: Change(True, False)}


def test_gone_and_already_suspended_is_unchanged() -> None:
    decision = _decide(GONE, managed(active=False))

    assert decision.action is Action.UNCHANGED
    assert decision.diff == {}


@pytest.mark.parametrize("active", [True, False])
def test_excluded_and_managed_is_released_touching_only_sync_source(active: bool) -> None:
    decision = _decide(
        EXCLUDED, managed(active=active), jobTitle="CTO", dtContractEnd="2020-01-31T00:00:00"
    )

    assert decision.action is Action.RELEASE
    assert decision.diff == {scim.SYNC_SOURCE: Change("lucca", None)}
    assert decision.profile_id == PROFILE_ID


def test_a_released_profile_of_an_excluded_employee_is_left_alone() -> None:
    assert _decide(EXCLUDED, released()).action is Action.SKIPPED


def test_an_employee_lucca_returns_needs_a_desired_profile() -> None:
    with pytest.raises(ValueError, match="desired profile"):
        decide(LUCCA_ID, ACTIVE, None, managed())


# --- diff and plan --------------------------------------------------------------------------


def test_the_diff_compares_only_the_paths_the_sync_owns() -> None:
    current = {scim.TITLE: "Dev", "urn:elevo:owned-by-elevo": "x", COST_CENTER: "CC-1"}

    assert diff_attributes({scim.TITLE: "Dev"}, current) == {}
    assert diff_attributes({scim.TITLE: None, COST_CENTER: "CC-1"}, current) == {
        scim.TITLE: Change("Dev", None)
    }


def test_a_path_absent_from_elevo_reads_as_none() -> None:
    assert diff_attributes({scim.TITLE: None}, {}) == {}
    assert diff_attributes({scim.TITLE: "Dev"}, {}) == {scim.TITLE: Change(None, "Dev")}


def test_the_plan_entry_names_the_user_the_action_and_each_change() -> None:
    entry = _decide(LEFT, managed(), jobTitle=None).plan_entry()

    assert orjson.loads(orjson.dumps(entry)) == entry
    assert entry == {
        "user": LUCCA_ID,
        "action": "suspend",
        "reason": "contract ended",
        "diff": {
            scim.ACTIVE: {"old": True, "new": False},
            scim.TITLE: {"old": "Développeuse", "new": None},
        },
    }


def test_a_plan_entry_without_changes_has_an_empty_diff() -> None:
    assert _decide(ACTIVE, managed()).plan_entry() == {
        "user": LUCCA_ID,
        "action": "unchanged",
        "reason": "up to date",
        "diff": {},
    }


@pytest.mark.parametrize(
    ("action", "writes"),
    [
        (action, action in {"create", "update", "adopt", "suspend", "reactivate", "release"})
        for action in Action
    ],
)
def test_only_the_six_write_actions_write(action: Action, writes: bool) -> None:
    assert Decision(LUCCA_ID, action, "").writes is writes


# --- properties -----------------------------------------------------------------------------

# Small pools, so that Lucca and Elevo agree often enough for every action to show up.
_titles = st.sampled_from(["Développeuse", "CTO", None])


@st.composite
def _cases(draw: st.DrawFn) -> tuple[Standing, dict[str, Any] | None, ElevoProfile | None]:
    """A standing, the desired attributes it implies, and whatever Elevo may hold."""
    standing = draw(st.sampled_from(Standing))
    mail = draw(st.sampled_from([MAIL, "lea.petit@acme.example", None]))  # None: login
    user = make_lucca_user(
        mail=mail,
        firstName=draw(st.sampled_from(["Camille", None])),
        jobTitle=draw(_titles),
        department=draw(st.sampled_from([None, {"id": 7, "name": "R&D"}])),
        extendedData={"e_cost_center": draw(st.sampled_from(["CC-12", "", None]))},
    )
    desired = None
    if standing is not GONE:
        desired = desired_attributes(
            user,
            custom_fields=CUSTOM_FIELDS,
            manager_profile_id=draw(st.sampled_from([MANAGER_PROFILE_ID, "elevo-9", None])),
            active=standing is ACTIVE,
        )
    if draw(st.booleans()):
        return standing, desired, None
    custom = draw(st.sampled_from([[], [{"name": "Cost center", "value": "CC-12"}]]))
    profile = make_profile(
        externalId=draw(st.sampled_from([LUCCA_ID, LUCCA_ID, "417", None])),
        userName=draw(st.sampled_from([MAIL, MAIL.upper(), "lea.petit@acme.example", LOGIN])),
        title=draw(_titles),
        active=draw(st.booleans()),
        elevo={
            "syncSource": draw(st.sampled_from(["lucca", "lucca", None, "workday"])),
            "customFields": custom,
        },
        enterprise={"manager": draw(st.sampled_from([{"value": MANAGER_PROFILE_ID}, None]))},
    )
    return standing, desired, profile


def _linked(profile: ElevoProfile) -> bool:
    return profile.managed and profile.external_id == LUCCA_ID


def _adoptable(profile: ElevoProfile, desired: Mapping[str, Any] | None) -> bool:
    if profile.managed or desired is None:
        return False
    same_name = profile.user_name.casefold() == str(desired[scim.USER_NAME]).casefold()
    return profile.external_id == LUCCA_ID or (profile.external_id is None and same_name)


def _applied(profile: ElevoProfile | None, diff: Mapping[str, Change]) -> ElevoProfile:
    """The profile once Elevo has taken the diff (a new profile when there was none)."""
    attributes = dict(profile.attributes) if profile else {}
    attributes.update({path: change.new for path, change in diff.items()})
    base = profile or make_profile(id="new-profile")
    return dataclasses.replace(
        base,
        external_id=attributes.get("externalId"),
        user_name=attributes.get(scim.USER_NAME) or "",
        active=attributes.get(scim.ACTIVE) is not False,
        sync_source=attributes.get(scim.SYNC_SOURCE),
        attributes=attributes,
    )


@given(_cases())
def test_no_write_to_a_profile_that_is_neither_linked_nor_adoptable(
    case: tuple[Standing, dict[str, Any] | None, ElevoProfile | None],
) -> None:
    standing, desired, profile = case
    decision = decide(LUCCA_ID, standing, desired, profile)

    if profile is None:
        assert decision.writes is (standing is ACTIVE)
    elif not (_linked(profile) or _adoptable(profile, desired)):
        assert decision.action in {Action.SKIPPED, Action.CONFLICT}
        assert decision.diff == {}
    if decision.action is Action.ADOPT:
        assert profile is not None
        assert _adoptable(profile, desired)
        assert standing is ACTIVE


@given(_cases())
def test_excluded_is_never_suspended_and_releases_touch_only_sync_source(
    case: tuple[Standing, dict[str, Any] | None, ElevoProfile | None],
) -> None:
    standing, desired, profile = case
    decision = decide(LUCCA_ID, standing, desired, profile)

    if standing is EXCLUDED:
        assert decision.action in {Action.RELEASE, Action.SKIPPED}
        assert set(decision.diff) <= {scim.SYNC_SOURCE}


@given(_cases())
def test_a_diff_states_what_elevo_has_and_lists_only_real_changes(
    case: tuple[Standing, dict[str, Any] | None, ElevoProfile | None],
) -> None:
    standing, desired, profile = case
    decision = decide(LUCCA_ID, standing, desired, profile)
    current = profile.attributes if profile else {}

    for path, change in decision.diff.items():
        assert change.old == current.get(path)
        assert change.old != change.new
        assert change.new != ""


@given(_cases())
def test_applying_a_decision_reaches_a_fixpoint(
    case: tuple[Standing, dict[str, Any] | None, ElevoProfile | None],
) -> None:
    standing, desired, profile = case
    decision = decide(LUCCA_ID, standing, desired, profile)
    if not decision.writes:
        return
    patched = _applied(profile, decision.diff)

    again = decide(LUCCA_ID, standing, desired, patched)

    assert not again.writes
    assert again.diff == {}
    if standing in {ACTIVE, LEFT}:
        assert desired is not None
        assert {path: patched.attributes.get(path) for path in desired} == desired
        assert again.action is Action.UNCHANGED
