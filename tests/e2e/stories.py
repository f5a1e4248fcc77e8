"""A small, readable company for end-to-end stories (the generator makes the large ones)."""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from typing import Any

from simulators.lucca.company import Company

START = date(2021, 9, 1)


def small_company(**options: Any) -> Company:
    """Ada (CEO, no manager) manages Bob and Chloé in R&D; Dan is in Sales under Bob."""
    company = Company(f"acme{secrets.token_hex(3)}", f"key-{secrets.token_hex(6)}", **options)
    company.add_department("R&D", 1)
    company.add_department("Sales", 2)
    company.add_legal_entity("Acme SAS", 1)
    hire(company, 1, "Ada", "Lovelace", title="CEO", manager=None)
    hire(company, 2, "Bob", "Martin", title="Engineer", manager=1)
    hire(company, 3, "Chloé", "Durand", title="Engineer", manager=1)
    hire(company, 4, "Dan", "Petit", title="Account executive", manager=2, department=2)
    return company


def hire(
    company: Company,
    user_id: int,
    first: str,
    last: str,
    *,
    title: str = "Engineer",
    manager: int | None = 1,
    department: int = 1,
    start: date = START,
    end: date | None = None,
    mail: str | None = "auto",
    extended: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    address = f"{first.lower()}.{last.lower()}@{company.subdomain}.test" if mail == "auto" else mail
    return company.hire(
        first,
        last,
        start=start,
        end=end,
        department_id=department,
        job_title=title,
        mail=address,
        login=f"{first.lower()}{user_id}",
        employee_number=f"{user_id:05d}",
        manager_id=manager,
        extended={"e_skip_elevo_sync": False, **(extended or {})},
        user_id=user_id,
    )


def yesterday(company: Company) -> date:
    return company.today() - timedelta(days=1)
