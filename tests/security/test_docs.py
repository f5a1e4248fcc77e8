"""docs/security.md shows exactly the bad inputs the tests send and the answers they check."""

from __future__ import annotations

from pathlib import Path

from tests.security.cases import table

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
START, END = "<!-- bad-inputs:start -->", "<!-- bad-inputs:end -->"


def test_the_bad_input_table_is_the_one_the_tests_check() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = text.split(START, 1)[1].split(END, 1)[0].strip() + "\n"
    assert documented == table(), (
        "docs/security.md is out of date: regenerate its table with "
        "`python -m tests.security.cases`"
    )
