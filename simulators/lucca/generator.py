"""Deterministic, realistic companies for tests, the demo and benchmarks.

For a given (subdomain, size, seed, today) the result is always the same. The shape follows what
real tenants hold and what trips syncs up: a manager tree whose roots are self-managed or have
no manager, 8-15 departments, up to three legal entities (employee numbers repeat across them),
mails `first.last@<subdomain>.example` with a few missing (login only) and a couple shared,
about 3% excluded (the skip checkbox, sometimes as a bare `true`), 5% departed (only returned
with `formerEmployees=true`), 2% hired in the future, 1% leaving in the future, and custom
`e_cost_center` (text), `e_remote` (boolean) and `e_languages` (multi-valued) fields.

The skip checkbox is where Lucca puts it: a field never set is left out of `extendedData`, so
by default (`skip_presence="some"`) most employees have no skip field at all, about a quarter
of the others have it `false`, and the excluded have it `true`. `"nobody"` makes a company
where the checkbox was never ticked nor unticked (no employee has the field, nobody is
excluded); `"everyone"` gives every employee the field, ticked or not.
"""

from __future__ import annotations

import itertools
import random
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final, Literal

from simulators.lucca.clock import Clock, utc_now
from simulators.lucca.company import DEFAULT_SKIP_CODE, DEFAULT_TIMEZONE, Company, User
from simulators.lucca.faults import DEFAULT_RATE_LIMIT

FIRST_NAMES = (
    "Camille", "Léa", "Manon", "Chloé", "Emma", "Inès", "Sarah", "Julie", "Hélène", "Claire",
    "Anaïs", "Noémie", "Lucie", "Margaux", "Élodie", "Sophie", "Aurélie", "Océane", "Zoé",
    "Mathilde", "Amandine", "Pauline", "Fatima", "Yasmine", "Louise", "Agathe", "Nathalie",
    "Thomas", "Nicolas", "Julien", "Maxime", "Antoine", "Hugo", "Lucas", "Léo", "Théo",
    "Mathieu", "Alexandre", "Romain", "Quentin", "Guillaume", "Sébastien", "François", "Jérôme",
    "Benoît", "Gaël", "Loïc", "Cédric", "Karim", "Mehdi", "Yanis", "Olivier", "Pierre",
    "Jean-Baptiste", "Marc", "Paul", "Arthur", "Raphaël", "Baptiste", "Émile", "Rémi",
)  # fmt: skip
LAST_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
    "Vincent", "Fournier", "Morel", "Girard", "André", "Lefebvre", "Mercier", "Dupont",
    "Lambert", "Bonnet", "François", "Martinez", "Legrand", "Garnier", "Faure", "Rousseau",
    "Blanc", "Guérin", "Muller", "Henry", "Roussel", "Nicolas", "Perrin", "Morin", "Mathieu",
    "Clément", "Gauthier", "Dumont", "Lopez", "Fontaine", "Chevalier", "Robin", "Masson",
    "Sanchez", "Gérard", "Nguyen", "Boyer", "Denis", "Lemaire", "Duval", "Joly", "Gautier",
    "Roger", "Roche", "Roy", "Noël", "Meyer", "Lucas", "Meunier", "Jean", "Perez", "Marchand",
    "Dufour", "Blanchard", "Barbier", "Brun", "Dumas", "Brunet", "Schmitt", "Leroux", "Colin",
    "Da Silva", "N'Diaye", "Le Gall", "Benali", "Haddad", "Le Goff", "Cohen", "Diallo",
)  # fmt: skip
DEPARTMENTS = (
    "Direction Générale", "R&D", "Ressources Humaines", "Finance", "Commercial", "Marketing",
    "Support Client", "Juridique", "Logistique", "Achats", "Production", "Qualité",
    "Systèmes d'information", "Communication", "Administration des ventes",
)  # fmt: skip
JOB_TITLES = (
    "Développeur", "Développeuse", "Chef de projet", "Comptable", "Chargé de recrutement",
    "Commercial terrain", "Business developer", "Technicien support", "Juriste",
    "Acheteur", "Opérateur de production", "Ingénieur qualité", "Data analyst",
    "Chargée de communication", "Assistante ADV", "Contrôleur de gestion", "Designer UX",
    "Administrateur systèmes", "Magasinier", "Product manager",
)  # fmt: skip
LANGUAGES = ("Français", "Anglais", "Espagnol", "Allemand", "Italien", "Portugais", "Arabe")
# By count: every set of that many languages (random.sample is slow at this volume).
_LANGUAGE_SETS = tuple(tuple(itertools.combinations(LANGUAGES, k)) for k in range(4))
ROOT_TITLES = ("Président-directeur général", "Directrice générale déléguée", "Fondateur")
SkipPresence = Literal["some", "nobody", "everyone"]
SKIP_PRESENCES: Final = ("some", "nobody", "everyone")
# With skip_presence="some": the share of the employees not excluded who have it `false`.
SKIP_UNTICKED_SHARE: Final = 0.25


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in ascii_text.lower() if c.isalnum() or c == "-")


_SLUGS = {name: _slug(name) for name in FIRST_NAMES + LAST_NAMES}


@dataclass(slots=True)
class _Plan:
    """Per-index decisions, made before any user dict is built."""

    ids: list[int]
    firsts: list[str]
    lasts: list[str]
    managers: list[int | None]  # index of the manager (itself for a self-managed root)
    departments: list[int]
    departed: set[int]
    future_hires: set[int]
    leaving: set[int]
    excluded: set[int]
    with_skip_field: set[int]  # who has the skip field at all, ticked or not
    mails: list[str | None]
    logins: list[str]


def generate_company(
    subdomain: str,
    size: int,
    *,
    seed: int,
    today: date | None = None,
    api_key: str | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    clock: Clock = utc_now,
    rate_limit: int | None = DEFAULT_RATE_LIMIT,
    skip_code: str = DEFAULT_SKIP_CODE,
    skip_presence: SkipPresence = "some",
) -> Company:
    """A company of `size` users; `today` (default: the clock's local date) anchors the dates.

    `api_key` defaults to `key-<subdomain>`; `skip_presence` says who has the skip field
    (module docstring).
    """
    if size < 0:
        raise ValueError("size must not be negative")
    if skip_presence not in SKIP_PRESENCES:
        raise ValueError(f"skip_presence must be one of {', '.join(SKIP_PRESENCES)}")
    company = Company(
        subdomain,
        api_key or f"key-{subdomain}",
        timezone=timezone,
        clock=clock,
        skip_code=skip_code,
        rate_limit=rate_limit,
    )
    rng = random.Random(f"{subdomain}:{size}:{seed}")
    day = today or company.today()
    _add_structure(company, rng)
    plan = _plan(rng, size, len(company.departments), subdomain)
    # Its own stream: every other value is the same whatever the presence.
    presence = random.Random(f"{subdomain}:{size}:{seed}:skip-field")
    plan.with_skip_field = _with_skip_field(presence, size, plan.excluded, skip_presence)
    company.load(_build_users(company, rng, plan, day))
    return company


def _add_structure(company: Company, rng: random.Random) -> None:
    name = company.subdomain.capitalize()
    for suffix in ("SAS", "Services SARL", "Belgique SA")[: rng.randint(1, 3)]:
        company.add_legal_entity(f"{name} {suffix}")
    count = rng.randint(8, 15)
    chosen = [DEPARTMENTS[0], *rng.sample(DEPARTMENTS[1:], count - 1)]
    first_id = rng.randrange(3, 20)
    for offset, dept in enumerate(chosen):
        company.add_department(dept, first_id + offset)


def _with_skip_field(
    rng: random.Random, size: int, excluded: set[int], presence: SkipPresence
) -> set[int]:
    if presence == "nobody":
        return set()
    if presence == "everyone":
        return set(range(size))
    draws = [rng.random() for _ in range(size)]
    return {i for i in range(size) if i in excluded or draws[i] < SKIP_UNTICKED_SHARE}


def _plan(rng: random.Random, size: int, n_departments: int, subdomain: str) -> _Plan:
    ids: list[int] = []
    next_id = rng.randrange(1, 400)
    for _ in range(size):
        ids.append(next_id)
        # Ids have holes, as users deleted long ago leave them.
        next_id += 1 if rng.random() < 0.9 else rng.randrange(2, 6)
    firsts = [rng.choice(FIRST_NAMES) for _ in range(size)]
    lasts = [rng.choice(LAST_NAMES) for _ in range(size)]
    managers = _tree(rng, size)
    departments = _departments(rng, managers, n_departments)
    has_reports = {m for i, m in enumerate(managers) if m is not None and m != i}
    leaves = [i for i in range(size) if i not in has_reports and managers[i] != i]
    rng.shuffle(leaves)
    n_departed, n_future, n_leaving = round(size * 0.05), round(size * 0.02), round(size * 0.01)
    departed = set(leaves[:n_departed])
    future = set(leaves[n_departed : n_departed + n_future])
    rest = [i for i in range(size) if i not in departed and i not in future]
    leaving = set(rng.sample(rest, min(len(rest), n_leaving)))
    excluded = set(rng.sample(range(size), round(size * 0.03)))
    mails, logins = _contacts(rng, firsts, lasts, subdomain)
    return _Plan(
        ids=ids,
        firsts=firsts,
        lasts=lasts,
        managers=managers,
        departments=departments,
        departed=departed,
        future_hires=future,
        leaving=leaving,
        excluded=excluded,
        with_skip_field=set(),
        mails=mails,
        logins=logins,
    )


def _tree(rng: random.Random, size: int) -> list[int | None]:
    """Managers by index: each user reports to an earlier one, so there is no cycle.

    The roots alternate between self-managed (how Lucca imports say "no manager") and null.
    """
    roots = min(size, 2 + size // 5000)
    managers: list[int | None] = [i if i % 2 == 0 else None for i in range(roots)]
    for i in range(roots, size):
        # Picking among the first quarter gives a tree a few levels deep, with real teams.
        managers.append(rng.randrange(max(roots, i // 4)))
    return managers


def _departments(rng: random.Random, managers: list[int | None], count: int) -> list[int]:
    """Department index per user: the top of the tree is in the first (the management)."""
    result: list[int] = []
    for i, manager in enumerate(managers):
        if manager is None or manager == i:
            result.append(0)
        elif result[manager] == 0 or rng.random() < 0.15:
            result.append(rng.randrange(1, count))
        else:
            result.append(result[manager])
    return result


def _contacts(
    rng: random.Random, firsts: list[str], lasts: list[str], subdomain: str
) -> tuple[list[str | None], list[str]]:
    seen_mails: dict[str, int] = {}
    seen_logins: dict[str, int] = {}
    mails: list[str | None] = []
    logins: list[str] = []
    for first, last in zip(firsts, lasts, strict=True):
        local = f"{_SLUGS[first]}.{_SLUGS[last]}"
        n = seen_mails[local] = seen_mails.get(local, 0) + 1
        mails.append(f"{local}{n if n > 1 else ''}@{subdomain}.example")
        login = f"{_SLUGS[first][0]}{_SLUGS[last]}"
        n = seen_logins[login] = seen_logins.get(login, 0) + 1
        logins.append(f"{login}{n if n > 1 else ''}")
    size = len(mails)
    picked = rng.sample(range(size), min(size, round(size * 0.02) + 4))
    # A couple of mailboxes shared by two people (a couple, an assistant's, a team address).
    for owner, sharer in zip(picked[0:4:2], picked[1:4:2], strict=False):
        mails[sharer] = mails[owner]
    for i in picked[4:]:
        mails[i] = None
    return mails, logins


def _build_users(company: Company, rng: random.Random, plan: _Plan, day: date) -> list[User]:
    departments = list(company.departments)
    entities = list(company.legal_entities)
    numbers = dict.fromkeys(entities, 0)
    start_of_day = datetime.combine(day, time())
    users: list[User] = []
    for i, ident in enumerate(plan.ids):
        entity = entities[0] if rng.random() < 0.8 else rng.choice(entities)
        numbers[entity] += 1
        start, end = _contract(rng, i, plan, day)
        touched = start_of_day - timedelta(seconds=rng.randrange(1, 400 * 86400))
        millis = timedelta(milliseconds=rng.randrange(1000))
        users.append(
            {
                "id": ident,
                "firstName": plan.firsts[i],
                "lastName": plan.lasts[i],
                "mail": plan.mails[i],
                "login": plan.logins[i],
                "jobTitle": _title(rng, i, plan),
                "employeeNumber": f"{numbers[entity]:05d}",
                "dtContractStart": f"{start.isoformat()}T00:00:00",
                "dtContractEnd": None if end is None else f"{end.isoformat()}T00:00:00",
                "modifiedAt": (touched + millis).isoformat(timespec="milliseconds"),
                "manager": _manager(company, plan, i),
                "department": company.department_ref(departments[plan.departments[i]]),
                "legalEntity": company.legal_entity_ref(entity),
                "extendedData": _extended(company, rng, i, plan),
            }
        )
    return users


def _contract(rng: random.Random, i: int, plan: _Plan, day: date) -> tuple[date, date | None]:
    if i in plan.future_hires:
        return day + timedelta(days=rng.randint(1, 90)), None
    start = day - timedelta(days=rng.randint(30, 12 * 365))
    if i in plan.departed:
        return start, day - timedelta(days=rng.randint(1, min(900, (day - start).days)))
    if i in plan.leaving:
        # Day 0 is today: the last day, still an employee until tonight.
        return start, day + timedelta(days=rng.randint(0, 60))
    return start, None


def _title(rng: random.Random, i: int, plan: _Plan) -> str:
    manager = plan.managers[i]
    if manager is None or manager == i:
        return ROOT_TITLES[i % len(ROOT_TITLES)]
    return rng.choice(JOB_TITLES)


def _manager(company: Company, plan: _Plan, i: int) -> dict[str, Any] | None:
    manager = plan.managers[i]
    if manager is None:
        return None
    return company.user_ref(plan.ids[manager], plan.firsts[manager], plan.lasts[manager])


def _extended(company: Company, rng: random.Random, i: int, plan: _Plan) -> dict[str, Any]:
    value_id = company.next_value_id
    excluded = i in plan.excluded
    # Some tenants return the checkbox bare; the sync must unwrap both forms.
    bare = rng.random() < (0.3 if excluded else 0.02)
    skip: Any = excluded if bare else {"id": value_id(), "value": excluded}
    cost_center = None if rng.random() < 0.05 else f"CC-{plan.departments[i] + 10:02d}"
    spoken = rng.choice(_LANGUAGE_SETS[rng.choice((0, 1, 1, 2, 2, 3))])
    return {
        # Lucca leaves out a checkbox never set.
        **({company.skip_code: skip} if i in plan.with_skip_field else {}),
        "e_cost_center": {"id": value_id(), "value": cost_center},
        "e_remote": {"id": value_id(), "value": rng.random() < 0.4},
        "e_languages": [{"id": value_id(), "value": language} for language in spoken],
    }
