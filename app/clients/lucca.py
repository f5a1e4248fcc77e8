"""Lucca's legacy REST API v3 (../contracts/lucca/README.md): the users the sync reads.

The client is pure I/O: it builds the requests, turns every answer into a typed value or one
of the :mod:`app.clients.errors` exceptions, and knows nothing of rate budgets, retries or tenants.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

import httpx
import orjson

from app.clients.errors import (
    LuccaAuthError,
    LuccaError,
    LuccaRateLimited,
    LuccaUnavailable,
)
from app.clients.http import ResponseHook, check_header_secret, parse_retry_after, scrub
from app.core.errors import InvalidLuccaUser
from app.core.lucca_user import LuccaUser, parse_user, user_id_of
from app.core.tenant import LUCCA_DOMAINS
from app.schemas.common import SUBDOMAIN_PATTERN
from app.secret import Secret

MAX_PAGE: Final = 1000
USERS_PATH: Final = "/api/v3/users"

# The subdomain pattern of the tenant configuration, checked again where the URL is built.
_LABEL = re.compile(SUBDOMAIN_PATTERN)
_USER_ID = re.compile(r"[0-9]+")
# Characters a query value keeps as they are: Lucca's own docs write `id=1,2`,
# `fields=manager[id]` and `modifiedAt=since,2025-01-01T08:45:23`.
_QUERY_SAFE: Final = ",[]:.-_"


def lucca_base_url(template: str, subdomain: str, domain: str) -> str:
    """The base URL of one customer's Lucca, from the operator's template.

    The subdomain comes from a tenant's configuration, so it is checked to be a DNS label
    (never a URL) and the filled template is parsed again to prove it went where the
    template put it: a tenant can never point the sync at another host (SSRF).
    """
    if not _LABEL.fullmatch(subdomain):
        raise ValueError(
            "the Lucca subdomain must be one DNS label (lowercase letters, digits and inner"
            f" hyphens, at most 63 characters), not {subdomain[:80]!r}"
        )
    if domain not in LUCCA_DOMAINS:
        raise ValueError(f"the Lucca domain must be one of {', '.join(LUCCA_DOMAINS)}")
    if "{subdomain}" not in template:
        raise ValueError("the Lucca URL template must contain {subdomain}")
    url = _parse_filled(template, subdomain, domain)
    # The same template filled with a fixed marker shows where the subdomain belongs.
    marker = "lucca-subdomain-marker"
    expected = _parse_filled(template, marker, domain)
    if (
        url.scheme != expected.scheme
        or url.port != expected.port
        or url.host != expected.host.replace(marker, subdomain)
        or url.path != expected.path.replace(marker, subdomain)
    ):
        raise ValueError(f"the Lucca subdomain {subdomain!r} does not fit the URL template")
    return str(url).rstrip("/")


def _parse_filled(template: str, subdomain: str, domain: str) -> httpx.URL:
    filled = template.replace("{subdomain}", subdomain).replace("{domain}", domain)
    try:
        url = httpx.URL(filled)
    except httpx.InvalidURL as exc:
        raise ValueError(f"the Lucca URL template gives an invalid URL: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("the Lucca URL template must give an http(s) URL with a host")
    if url.userinfo or url.query or url.fragment:
        raise ValueError("the Lucca URL must hold no user info, query or fragment")
    return url


@dataclass(frozen=True, slots=True)
class LuccaBatch:
    """One answer of ``/api/v3/users``, typed.

    ``invalid`` maps a user id to the reason its item was refused; an item with no usable
    id is keyed ``#<position in the answer>``. ``skip_field_shown`` holds the ids of the items
    whose ``extendedData`` carries the skip field, ticked or not: Lucca leaves out a field never
    set, and the whole section when the API key loses the right to see it.
    """

    users: dict[str, LuccaUser]
    invalid: dict[str, str]
    item_count: int
    skip_field_shown: frozenset[str] = frozenset()


class LuccaClient:
    """One customer's Lucca, read with its API key.

    ``fields`` is the ``fields=`` projection (:func:`app.core.lucca_user.projection`) and
    ``skip_field`` the ``extendedData`` code of the exclusion checkbox. ``on_response`` is
    called with (operation, status) after every answer and with status 0 when Lucca could
    not be reached; it must not raise.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        api_key: Secret,
        *,
        fields: str,
        skip_field: str,
        on_response: ResponseHook | None = None,
    ) -> None:
        check_header_secret(api_key, "Lucca API key")
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._fields = fields
        self._skip_field = skip_field
        self._on_response = on_response

    @property
    def base_url(self) -> str:
        """The customer's Lucca this client reads: tenants with the same one share its limits."""
        return self._base_url

    async def fetch_by_ids(self, ids: Sequence[str]) -> LuccaBatch:
        """The users with these ids, former employees included, in one request.

        An id Lucca does not return is in neither ``users`` nor ``invalid``.
        """
        if isinstance(ids, str):
            raise TypeError("fetch_by_ids takes a sequence of ids, not one string")
        unique = list(dict.fromkeys(ids))
        if len(unique) > MAX_PAGE:
            raise ValueError(f"at most {MAX_PAGE} ids per request, not {len(unique)}")
        bad = [i for i in unique if not _USER_ID.fullmatch(i)]
        if bad:
            raise ValueError(f"Lucca user ids are digits, not {bad[0][:40]!r}")
        if not unique:
            # An empty `id=` filter might be ignored and list everybody: ask nothing.
            return LuccaBatch(users={}, invalid={}, item_count=0)
        query = {
            "id": ",".join(unique),
            "formerEmployees": "true",
            "fields": self._fields,
            "paging": f"0,{MAX_PAGE}",
        }
        return await self._users("fetch_by_ids", query)

    async def list_page(
        self,
        offset: int,
        limit: int = MAX_PAGE,
        *,
        modified_since: datetime | None = None,
        department_id: str | None = None,
    ) -> LuccaBatch:
        """One page of every user, former employees included.

        There is no next link: a page with fewer than ``limit`` items is the last one.
        ``modified_since`` is a naive datetime in the tenant's local time, as Lucca's are;
        ``department_id`` keeps one department's members.
        """
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"offset must be >= 0 and limit within 1..{MAX_PAGE}")
        query = {
            "formerEmployees": "true",
            "fields": self._fields,
            "paging": f"{offset},{limit}",
        }
        if modified_since is not None:
            if modified_since.tzinfo is not None:
                raise ValueError("modified_since must be naive, in the tenant's local time")
            query["modifiedAt"] = f"since,{modified_since.isoformat(timespec='seconds')}"
        if department_id is not None:
            if not department_id.isdigit():
                raise ValueError("department_id must be digits")
            query["departmentId"] = department_id
        return await self._users("list_page", query)

    async def _users(self, operation: str, query: Mapping[str, str]) -> LuccaBatch:
        response = await self._get(operation, USERS_PATH, query)
        return self._batch(_items(response))

    async def _get(self, operation: str, path: str, query: Mapping[str, str]) -> httpx.Response:
        params = "&".join(f"{key}={quote(value, safe=_QUERY_SAFE)}" for key, value in query.items())
        url = httpx.URL(f"{self._base_url}{path}?{params}")
        headers = {
            "Authorization": f"lucca application={self._api_key.reveal()}",
            "Accept": "application/json",
        }
        try:
            response = await self._http.get(url, headers=headers)
        except httpx.RequestError as exc:
            self._notify(operation, 0)
            reason = scrub(f"{type(exc).__name__}: {exc}", self._api_key)
            raise LuccaUnavailable(f"Lucca GET {url.path} failed: {reason}") from exc
        self._notify(operation, response.status_code)
        if response.status_code != 200:
            raise self._error(response)
        return response

    def _notify(self, operation: str, status: int) -> None:
        if self._on_response is not None:
            self._on_response(operation, status)

    def _error(self, response: httpx.Response) -> LuccaError:
        status = response.status_code
        where = f"Lucca GET {response.request.url.path} answered {status}"
        detail = scrub(_detail(response), self._api_key)
        if status in (401, 403):
            return LuccaAuthError(f"{where}: the API key was refused{detail}", status=status)
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return LuccaRateLimited(f"{where}: rate limited{detail}", retry_after=retry_after)
        if status == 408 or status >= 500:
            return LuccaUnavailable(f"{where}{detail}", status=status)
        if 300 <= status < 400:
            return LuccaError(f"{where}: a redirect, not followed", status=status)
        if 400 <= status < 500:
            return LuccaError(f"{where}{detail}", status=status)
        return LuccaUnavailable(f"{where}: not the users envelope", status=status)

    def _batch(self, items: list[Any]) -> LuccaBatch:
        users: dict[str, LuccaUser] = {}
        invalid: dict[str, str] = {}
        shown: set[str] = set()
        for position, item in enumerate(items):
            if not isinstance(item, Mapping):
                invalid[f"#{position}"] = f"is a {type(item).__name__}, not an object"
                continue
            extended = item.get("extendedData")
            if isinstance(extended, Mapping) and self._skip_field in extended:
                shown.add(user_id_of(item) or f"#{position}")
            try:
                user = parse_user(item)
            except InvalidLuccaUser as exc:
                invalid[user_id_of(item) or f"#{position}"] = str(exc)
                continue
            users[user.id] = user
        return LuccaBatch(
            users=users, invalid=invalid, item_count=len(items), skip_field_shown=frozenset(shown)
        )


def _items(response: httpx.Response) -> list[Any]:
    """The items of a 200 answer.

    A 200 whose body is not the ``{"data": {"items": [...]}}`` envelope is treated as
    :class:`LuccaUnavailable`: what answers so is most likely a proxy, a maintenance page or
    a truncated body, all of which pass, so a retry is the right move.
    """
    where = f"Lucca GET {response.request.url.path} answered 200"
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise LuccaUnavailable(f"{where} with a body that is not JSON", status=200) from exc
    data = body.get("data") if isinstance(body, dict) else None
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise LuccaUnavailable(f"{where} without the data.items envelope", status=200)
    return items


def _detail(response: httpx.Response) -> str:
    """A short excerpt of an error body, for the message (never the headers)."""
    text = " ".join(response.text.split())[:200]
    return f": {text}" if text else ""
