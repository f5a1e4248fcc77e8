"""Elevo's SCIM 2.0 API (../contracts/elevo/README.md): the profiles the sync writes.

The client is pure I/O: it builds SCIM requests, turns every answer into an
:class:`~app.core.profile.ElevoProfile` or one of the :mod:`app.clients.errors` exceptions, and
decides nothing about what to write.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final
from urllib.parse import quote

import httpx
import orjson

from app.clients.errors import (
    ElevoAuthError,
    ElevoConflict,
    ElevoError,
    ElevoNotFound,
    ElevoPaused,
    ElevoPreconditionFailed,
    ElevoRateLimited,
    ElevoRejected,
    ElevoUnavailable,
)
from app.clients.http import ResponseHook, check_header_secret, parse_retry_after, scrub
from app.core import scim
from app.core.profile import ElevoProfile, profile_from_scim
from app.secret import Secret

SCIM_JSON: Final = "application/scim+json"
USERS: Final = "/Users"
MANAGED_FILTER: Final = f'{scim.SYNC_SOURCE} eq "{scim.SYNC_SOURCE_VALUE}"'
MAX_PAGE: Final = 1000


def validate_scim_url(url: str, *, allow_http: bool) -> str:
    """A tenant's SCIM base URL, checked and without its trailing slash.

    https only (http too when ``allow_http``, for local use), a host, and no user info,
    query or fragment, which could smuggle credentials or change what the paths mean.
    """
    if "?" in url or "#" in url:
        raise ValueError("the Elevo SCIM URL must hold no query or fragment")
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL as exc:
        raise ValueError(f"the Elevo SCIM URL is invalid: {exc}") from exc
    schemes = ("https", "http") if allow_http else ("https",)
    if parsed.scheme not in schemes:
        raise ValueError(f"the Elevo SCIM URL must use {' or '.join(schemes)}")
    if not parsed.host:
        raise ValueError("the Elevo SCIM URL must name a host")
    if parsed.userinfo:
        raise ValueError("the Elevo SCIM URL must hold no user info")
    return str(parsed).rstrip("/")


def filter_eq(attribute: str, value: str) -> str:
    """``attribute eq "value"``, the value written as RFC 7644's compValue (a JSON string)."""
    return f"{attribute} eq {orjson.dumps(value).decode()}"


@dataclass(frozen=True, slots=True)
class ScimPage:
    """One page of a SCIM list answer; ``total`` is the server's ``totalResults``."""

    profiles: list[ElevoProfile]
    total: int


class ElevoSlots:
    """One customer's Elevo as this process reaches it: at most `size` requests in flight (the
    HTTP timeout counts from when a request goes, not while it waits its turn), and a hold
    that stops the requests still waiting their turn from going at all."""

    def __init__(self, size: int) -> None:
        self._semaphore = asyncio.Semaphore(size)
        self._held_until = 0.0

    async def __aenter__(self) -> None:
        await self._semaphore.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self._semaphore.release()

    def hold(self, seconds: float) -> None:
        self._held_until = max(self._held_until, time.monotonic() + seconds)

    def held_for(self) -> float:
        return max(0.0, self._held_until - time.monotonic())


class ElevoClient:
    """One customer's Elevo, over SCIM with its bearer token.

    ``on_response`` is called with (operation, status) after every answer and with status 0
    when Elevo could not be reached; it must not raise. ``slots`` (shared by every client of
    one customer's Elevo in a process) bound the requests in flight and hold them back.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        token: Secret,
        *,
        on_response: ResponseHook | None = None,
        slots: ElevoSlots | None = None,
    ) -> None:
        check_header_secret(token, "Elevo token")
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._on_response = on_response
        self._slots = slots

    def hold(self, seconds: float) -> None:
        """Send nothing more for `seconds` from this process (requests waiting their turn
        included): Elevo asked to wait, or stopped answering."""
        if self._slots is not None:
            self._slots.hold(seconds)

    async def get(self, profile_id: str) -> ElevoProfile | None:
        """The profile with this SCIM id, or None when Elevo has none."""
        response = await self._send("get", "GET", _user_path(profile_id), allow=(200, 404))
        if response.status_code == 404:
            return None
        return _with_etag(self._profile(response, _json(response)), response)

    async def find_by_external_id(self, external_id: str) -> ElevoProfile | None:
        """The profile linked to this Lucca id (``externalId`` compares case-exact)."""
        return await self._find_one("find_by_external_id", filter_eq("externalId", external_id))

    async def find_all_by_external_id(
        self, external_id: str, *, at_most: int = 10
    ) -> list[ElevoProfile]:
        """Every profile linked to this Lucca id (two after a creation whose answer was lost
        reached Elevo later), up to `at_most`."""
        page = await self._list(
            "find_by_external_id", 1, at_most, filter_eq("externalId", external_id)
        )
        return page.profiles

    async def find_by_user_name(self, user_name: str) -> ElevoProfile | None:
        """The profile with this ``userName``; SCIM compares it case-insensitively."""
        return await self._find_one("find_by_user_name", filter_eq("userName", user_name))

    async def create(self, resource: Mapping[str, Any]) -> ElevoProfile:
        """POST a new User; a taken ``userName`` raises :class:`ElevoConflict`."""
        response = await self._send("create", "POST", USERS, body=resource, allow=(200, 201))
        return _with_etag(self._profile(response, _json(response)), response)

    async def patch(
        self,
        profile_id: str,
        operations: Sequence[Mapping[str, Any]],
        *,
        version: str | None = None,
    ) -> str | None:
        """Apply a PatchOp; with ``version``, only if the profile is still at that version.

        Returns the new version (the ``ETag``, else the body's ``meta.version``), or None
        when the answer tells none. A stale ``version`` raises :class:`ElevoPreconditionFailed`.
        """
        body = {"schemas": [scim.PATCH_OP], "Operations": list(operations)}
        headers = {"If-Match": version} if version is not None else None
        response = await self._send(
            "patch", "PATCH", _user_path(profile_id), body=body, headers=headers, allow=(200, 204)
        )
        etag = response.headers.get("ETag")
        if etag or response.status_code == 204 or not response.content:
            return etag or None
        meta = _json(response).get("meta")
        version_out = meta.get("version") if isinstance(meta, Mapping) else None
        return version_out if isinstance(version_out, str) else None

    async def list_page(
        self, *, start_index: int, count: int, filter: str | None = None
    ) -> ScimPage:
        """One page of ``GET /Users`` (``start_index`` is 1-based, as in SCIM)."""
        if start_index < 1 or not 1 <= count <= MAX_PAGE:
            raise ValueError(f"start_index must be >= 1 and count within 1..{MAX_PAGE}")
        return await self._list("list_page", start_index, count, filter)

    async def iter_managed(self, page_size: int = 500) -> AsyncIterator[ElevoProfile]:
        """Every profile whose ``syncSource`` is ``lucca``, page by page, each once.

        Stops on an empty page or once ``totalResults`` profiles were read. A short page
        stops only if ``totalResults`` is reached too: a server may return fewer than
        ``count`` (its ``maxResults``) and the rest would be lost.
        """
        start = 1
        seen: set[str] = set()
        while True:
            page = await self.list_page(start_index=start, count=page_size, filter=MANAGED_FILTER)
            for profile in page.profiles:
                if profile.id not in seen:  # paging by index may repeat one on a shift
                    seen.add(profile.id)
                    yield profile
            start += len(page.profiles)
            if not page.profiles or start > page.total:
                return

    async def _find_one(self, operation: str, scim_filter: str) -> ElevoProfile | None:
        page = await self._list(operation, 1, 2, scim_filter)
        if len(page.profiles) > 1 or page.total > 1:
            # Two profiles answer to one link key: writing to either would be a guess.
            raise ElevoConflict(f"Elevo {operation}: {page.total} profiles match, expected one")
        return page.profiles[0] if page.profiles else None

    async def _list(
        self, operation: str, start_index: int, count: int, scim_filter: str | None
    ) -> ScimPage:
        params = {"startIndex": str(start_index), "count": str(count)}
        if scim_filter is not None:
            params["filter"] = scim_filter
        response = await self._send(operation, "GET", USERS, params=params, allow=(200,))
        body = _json(response)
        total = body.get("totalResults")
        resources = body.get("Resources", [])
        if not isinstance(total, int) or isinstance(total, bool) or not isinstance(resources, list):
            raise _malformed(response, "is not a SCIM ListResponse")
        return ScimPage([self._profile(response, r) for r in resources], total)

    async def _send(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        allow: tuple[int, ...],
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = {
            "Authorization": f"Bearer {self._token.reveal()}",
            "Accept": f"{SCIM_JSON}, application/json",
            **(headers or {}),
        }
        content = None
        if body is not None:
            content = orjson.dumps(body)
            all_headers["Content-Type"] = SCIM_JSON
        url = httpx.URL(f"{self._base_url}{path}")
        try:
            async with self._slots or contextlib.nullcontext():
                if self._slots is not None and (held := self._slots.held_for()) > 0:
                    raise ElevoPaused(
                        f"Elevo {method} {url.path} not sent: calls held {held:.1f}s more",
                        retry_after=held,
                    )
                response = await self._http.request(
                    method, url, params=params, content=content, headers=all_headers
                )
        except httpx.RequestError as exc:
            self._notify(operation, 0)
            reason = scrub(f"{type(exc).__name__}: {exc}", self._token)
            raise ElevoUnavailable(f"Elevo {method} {url.path} failed: {reason}") from exc
        self._notify(operation, response.status_code)
        if response.status_code not in allow:
            raise self._error(response)
        return response

    def _notify(self, operation: str, status: int) -> None:
        if self._on_response is not None:
            self._on_response(operation, status)

    def _error(self, response: httpx.Response) -> ElevoError:
        status = response.status_code
        request = response.request
        where = f"Elevo {request.method} {request.url.path} answered {status}"
        where += scrub(_scim_detail(response), self._token)
        if status in (401, 403):
            return ElevoAuthError(f"{where} (the token was refused)", status=status)
        if status == 404:
            return ElevoNotFound(where, status=status)
        if status == 409:
            return ElevoConflict(where, status=status)
        if status == 412:
            return ElevoPreconditionFailed(where, status=status)
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return ElevoRateLimited(where, retry_after=retry_after)
        if status == 408 or status >= 500:
            return ElevoUnavailable(where, status=status)
        if 400 <= status < 500:
            return ElevoRejected(where, status=status)
        if 300 <= status < 400:
            return ElevoError(f"{where}: a redirect, not followed", status=status)
        return ElevoUnavailable(f"{where}: unexpected for this request", status=status)

    def _profile(self, response: httpx.Response, resource: Any) -> ElevoProfile:
        if not isinstance(resource, Mapping) or not isinstance(resource.get("id"), str | int):
            raise _malformed(response, "holds a resource without an id")
        return profile_from_scim(resource)


def _user_path(profile_id: str) -> str:
    if profile_id in ("", ".", ".."):
        raise ValueError(f"not a SCIM id: {profile_id!r}")
    return f"{USERS}/{quote(profile_id, safe='')}"


def _json(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a success answer.

    A success whose body is not a JSON object is treated as :class:`ElevoUnavailable`:
    what answers so is most likely a proxy or a truncated body, which pass.
    """
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise _malformed(response, "is not JSON") from exc
    if not isinstance(body, dict):
        raise _malformed(response, "is not a JSON object")
    return body


def _malformed(response: httpx.Response, why: str) -> ElevoUnavailable:
    request = response.request
    return ElevoUnavailable(
        f"Elevo {request.method} {request.url.path} answered {response.status_code}"
        f" with a body that {why}",
        status=response.status_code,
    )


def _with_etag(profile: ElevoProfile, response: httpx.Response) -> ElevoProfile:
    etag = response.headers.get("ETag")
    return replace(profile, version=etag) if profile.version is None and etag else profile


def _scim_detail(response: httpx.Response) -> str:
    """``: scimType: detail`` from a SCIM error body, or a short excerpt of another body."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        text = " ".join(response.text.split())[:200]
        return f": {text}" if text else ""
    if not isinstance(body, dict):
        return ""
    parts = [str(body[key])[:300] for key in ("scimType", "detail") if body.get(key)]
    return f": {': '.join(parts)}" if parts else ""
