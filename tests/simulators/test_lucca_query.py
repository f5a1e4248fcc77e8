"""The `fields=` grammar and the query parser, without HTTP."""

from __future__ import annotations

import pytest

from simulators.lucca.query import QueryError, parse_fields, parse_query, project


def test_brackets_nest_and_repeat_merge():
    assert parse_fields("id, manager[id,name] ,extendedData[e_languages[value]]") == {
        "id": None,
        "manager": {"id": None, "name": None},
        "extendedData": {"e_languages": {"value": None}},
    }
    assert parse_fields("manager[id],manager[name]") == {"manager": {"id": None, "name": None}}
    assert parse_fields("manager[id],manager") == {"manager": None}


def test_nested_projection_applies_to_each_item_of_a_list():
    value = {"e_languages": [{"id": 1, "value": "Français"}], "e_remote": {"id": 2, "value": 1}}
    assert project(value, {"e_languages": {"value": None}}) == {
        "e_languages": [{"value": "Français"}]
    }


@pytest.mark.parametrize("text", ["", "id,", "[id]", "manager[id]]", "manager[id]x", "id[]"])
def test_malformed_fields(text):
    with pytest.raises(QueryError):
        parse_fields(text)


def test_query_defaults_and_values():
    query = parse_query([])
    assert (query.offset, query.limit, query.former) == (0, 1000, False)
    assert query.projection == {"id": None, "name": None, "url": None}
    query = parse_query(
        [("id", "3,1"), ("formerEmployees", "TRUE"), ("paging", "20,5"),
         ("modifiedAt", "since,2025-01-01T08:45:23")]
    )  # fmt: skip
    assert query.ids == (3, 1)
    assert query.former is True
    assert (query.offset, query.limit) == (20, 5)
    assert query.modified_since == "2025-01-01T08:45:23.000"


def test_repeated_parameter_is_refused():
    with pytest.raises(QueryError, match="twice"):
        parse_query([("id", "1"), ("id", "2")])
