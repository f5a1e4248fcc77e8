"""Generated companies: deterministic, and shaped like real tenants (with their traps)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from datetime import date

import orjson
import pytest

from simulators.lucca import Company, ManualClock, generate_company
from simulators.lucca.webhooks import unwrap_extension

TODAY = date(2025, 3, 3)
SKIP = "e_skip_elevo_sync"


def ascii_slug(name: str) -> str:
    """`Jean-Baptiste` -> `jean-baptiste`, `N'Diaye` -> `ndiaye`, `Léa` -> `lea`."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return "".join(c for c in plain if c.isalnum() or c == "-")


@pytest.fixture(scope="module")
def big() -> Company:
    return generate_company("initech", 4000, seed=11, today=TODAY)


def test_same_seed_same_company_other_seed_other_company(clock: ManualClock):
    def make(seed: int) -> bytes:
        return orjson.dumps(generate_company("acme", 500, seed=seed, clock=clock).users())

    assert make(1) == make(1)
    assert make(1) != make(2)


def test_ids_unique_and_sorted_with_holes(big: Company):
    ids = [u["id"] for u in big.users()]
    assert len(set(ids)) == len(ids) == 4000
    assert ids == sorted(ids)
    assert ids[-1] - ids[0] + 1 > len(ids)  # not contiguous


def test_departments_and_legal_entities(big: Company):
    assert 8 <= len(big.departments) <= 15
    assert 1 <= len(big.legal_entities) <= 3
    for user in big.users():
        dept = big.departments[user["department"]["id"]]
        assert user["department"]["name"] == dept.name
        assert user["legalEntity"]["id"] in big.legal_entities
    used = Counter(u["department"]["id"] for u in big.users())
    assert len(used) == len(big.departments)


def test_employee_numbers_unique_per_legal_entity_only(big: Company):
    pairs = [(u["legalEntity"]["id"], u["employeeNumber"]) for u in big.users()]
    assert len(set(pairs)) == len(pairs)
    if len(big.legal_entities) > 1:
        numbers = Counter(u["employeeNumber"] for u in big.users())
        assert max(numbers.values()) > 1


def test_manager_tree_has_roots_and_no_dangling_ids_or_cycles(big: Company):
    by_id = {u["id"]: u for u in big.users()}
    roots = []
    for user in big.users():
        manager = user["manager"]
        if manager is None or manager["id"] == user["id"]:
            roots.append(user)
            continue
        assert manager["id"] in by_id
        boss = by_id[manager["id"]]
        assert manager["name"] == f"{boss['firstName']} {boss['lastName']}"
    assert any(r["manager"] is None for r in roots)
    assert any(r["manager"] is not None and r["manager"]["id"] == r["id"] for r in roots)
    for user in big.users():
        seen: set[int] = set()
        current = user
        while current["manager"] is not None and current["manager"]["id"] != current["id"]:
            assert current["id"] not in seen
            seen.add(current["id"])
            current = by_id[current["manager"]["id"]]
    teams = Counter(u["manager"]["id"] for u in big.users() if u["manager"])
    assert max(teams.values()) >= 5  # real teams, not a chain


def test_status_ratios(big: Company):
    today = TODAY.isoformat()
    users = big.users()
    departed = [u for u in users if u["dtContractEnd"] and u["dtContractEnd"][:10] < today]
    future = [u for u in users if u["dtContractStart"][:10] > today]
    leaving = [u for u in users if u["dtContractEnd"] and u["dtContractEnd"][:10] >= today]
    assert len(departed) == 200  # 5%
    assert len(future) == 80  # 2%
    assert 30 <= len(leaving) <= 40  # ~1%
    for user in departed:
        assert user["dtContractStart"] < user["dtContractEnd"]


def test_exclusion_checkbox_in_both_forms_and_mostly_absent(big: Company):
    users = big.users()
    values = [u["extendedData"]["e_skip_elevo_sync"] for u in users if SKIP in u["extendedData"]]
    excluded = [v for v in values if unwrap_extension(v) is True]
    assert len(excluded) == 120  # 3%
    assert any(v is True for v in excluded)
    assert any(isinstance(v, dict) and v["value"] is True for v in excluded)
    assert all(unwrap_extension(v) in (True, False) for v in values)
    # Lucca leaves out a field never set: most have none, some have it unticked.
    unticked = len(values) - len(excluded)
    assert 0.2 * len(users) < unticked < 0.3 * len(users)
    assert len(users) - len(values) > 0.7 * len(users)


@pytest.mark.parametrize(("presence", "shown"), [("nobody", 0), ("everyone", 4000)])
def test_a_company_where_nobody_or_everyone_has_the_field(presence: str, shown: int):
    company = generate_company(
        "initech",
        4000,
        seed=1,
        today=TODAY,
        skip_presence=presence,  # type: ignore[arg-type]
    )
    users = company.users()
    assert sum(SKIP in u["extendedData"] for u in users) == shown
    excluded = [u for u in users if unwrap_extension(u["extendedData"].get(SKIP)) is True]
    assert len(excluded) == (0 if presence == "nobody" else 120)


def test_the_presence_changes_nothing_else():
    some = generate_company("initech", 200, seed=1, today=TODAY)
    nobody = generate_company("initech", 200, seed=1, today=TODAY, skip_presence="nobody")
    for one, other in zip(some.users(), nobody.users(), strict=True):
        one["extendedData"].pop(SKIP, None)
        assert one == other


def test_an_unknown_presence_is_refused():
    with pytest.raises(ValueError, match="skip_presence"):
        generate_company("initech", 10, seed=1, skip_presence="many")  # type: ignore[arg-type]


def test_mails_mostly_first_last_some_missing_two_shared(big: Company):
    users = big.users()
    mails = [u["mail"] for u in users]
    missing = [u for u in users if u["mail"] is None]
    assert 60 <= len(missing) <= 100
    assert all(u["login"] for u in missing)
    shared = [m for m, n in Counter(m for m in mails if m).items() if n > 1]
    assert len(shared) == 2
    assert all(m is None or (m.endswith("@initech.example") and m.isascii()) for m in mails)
    logins = [u["login"] for u in users]
    assert len(set(logins)) == len(logins)
    conventional = [
        u
        for u in users
        if u["mail"]
        and re.fullmatch(
            rf"{re.escape(ascii_slug(u['firstName']))}\.{re.escape(ascii_slug(u['lastName']))}"
            r"\d*@initech\.example",
            u["mail"],
        )
    ]
    assert len(conventional) >= 0.97 * len(users)


def test_custom_fields_shapes(big: Company):
    value_ids: list[int] = []
    for user in big.users():
        extended = user["extendedData"]
        assert set(extended) - {SKIP} == {"e_cost_center", "e_remote", "e_languages"}
        cost = extended["e_cost_center"]
        assert cost["value"] is None or cost["value"].startswith("CC-")
        assert isinstance(extended["e_remote"]["value"], bool)
        assert isinstance(extended["e_languages"], list)
        for item in extended["e_languages"]:
            assert set(item) == {"id", "value"}
        value_ids += [cost["id"], extended["e_remote"]["id"]]
        value_ids += [item["id"] for item in extended["e_languages"]]
    assert len(set(value_ids)) == len(value_ids)
    assert any(len(u["extendedData"]["e_languages"]) > 1 for u in big.users())


def test_dates_are_v3_strings_and_modified_in_the_past(big: Company):
    for user in big.users():
        assert len(user["dtContractStart"]) == 19
        assert user["dtContractStart"].endswith("T00:00:00")
        assert len(user["modifiedAt"]) == 23
        assert user["modifiedAt"] < f"{TODAY.isoformat()}T00:00:00"


def test_today_defaults_to_the_clock(clock: ManualClock):
    company = generate_company("acme", 100, seed=1, clock=clock)
    assert company.today() == TODAY
    assert company.api_key == "key-acme"
    with pytest.raises(ValueError, match="negative"):
        generate_company("acme", -1, seed=1)


def test_empty_and_tiny_companies():
    assert len(generate_company("empty", 0, seed=1)) == 0
    one = generate_company("solo", 1, seed=1).users()
    assert one[0]["manager"]["id"] == one[0]["id"]
