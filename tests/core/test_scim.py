"""The flat SCIM paths of custom fields: a name goes in, the same name comes out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core import scim


def test_a_custom_field_path_filters_the_elevo_custom_fields_by_name() -> None:
    assert scim.custom_field_path("Cost center") == (
        "urn:ietf:params:scim:schemas:extension:elevo:2.0:User:customFields"
        '[name eq "Cost center"].value'
    )


@given(st.text())
def test_the_name_of_a_custom_field_path_is_the_name_it_was_built_from(name: str) -> None:
    assert scim.custom_field_name(scim.custom_field_path(name)) == name


@pytest.mark.parametrize(
    "path", [scim.TITLE, scim.WORK_EMAIL, scim.SYNC_SOURCE, scim.CUSTOM_FIELDS, scim.MANAGER]
)
def test_other_paths_are_not_custom_fields(path: str) -> None:
    assert scim.custom_field_name(path) is None
