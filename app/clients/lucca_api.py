"""Lucca's current API (2024-11-01) for the webhook endpoint: OAuth 2 client credentials,
webhook endpoints, events (shared/reference/lucca-api.md, last section; the OpenAPI document
in contracts/lucca/).

Every call sends `Api-Version: 2024-11-01` and a Bearer token obtained with the tenant's OAuth
client; tokens are cached in this process until `TOKEN_MARGIN` before they expire (never in
Redis: a token is a credential). `before_call` runs before every call to the tenant's Lucca
(the service takes a request from the tenant's budget there); the token endpoint is not the
tenant's Lucca and does not count. Errors are translated into app.clients.errors; no message
carries the client secret or a token.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import httpx
import orjson

from app.clients.errors import (
    LuccaAuthError,
    LuccaError,
    LuccaRateLimited,
    LuccaRejected,
    LuccaUnavailable,
)
from app.clients.http import check_header_secret, parse_retry_after, scrub
from app.core.tenant import LuccaOAuth
from app.secret import Secret

API_VERSION: Final = "2024-11-01"
# What the service asks of an integration key (the customer ticks these scopes in Lucca).
SCOPES: Final = ("webhook-endpoints.readwrite", "events.readonly", "webhook-deliveries.readonly")
# A token is renewed this long before Lucca says it expires (1800 s).
TOKEN_MARGIN: Final = 60.0
PAGE_LIMIT: Final = 100  # the document's maximum
MAX_PAGES: Final = 100

Monotonic = Callable[[], float]
BeforeCall = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    id: str
    webhook_url: str
    topics: tuple[str, ...]
    status: str  # active | suspended | inactive


@dataclass(frozen=True, slots=True)
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    secret: Secret  # shown by Lucca this once


@dataclass(frozen=True, slots=True)
class LuccaEvent:
    id: str
    occurred_at: datetime | None
    document: dict[str, Any]  # the event as Lucca lists it (the webhook body's shape)


class TokenCache:
    """Bearer tokens by OAuth client, in this process only."""

    def __init__(self, monotonic: Monotonic = time.monotonic) -> None:
        self._monotonic = monotonic
        self._tokens: dict[str, tuple[float, Secret]] = {}

    @staticmethod
    def key(token_url: str, oauth: LuccaOAuth) -> str:
        # The secret is part of the key (a new secret must not reuse the old one's token),
        # hashed so that the key itself says nothing of it.
        digest = hashlib.sha256(oauth.client_secret.reveal().encode()).hexdigest()
        return f"{token_url} {oauth.client_id} {digest}"

    def get(self, key: str) -> Secret | None:
        cached = self._tokens.get(key)
        if cached is None or cached[0] <= self._monotonic():
            return None
        return cached[1]

    def put(self, key: str, token: Secret, expires_in: float) -> None:
        self._tokens[key] = (self._monotonic() + max(0.0, expires_in - TOKEN_MARGIN), token)

    def drop(self, key: str) -> None:
        self._tokens.pop(key, None)


PROCESS_TOKENS: Final = TokenCache()


class LuccaApiClient:
    """One customer's Lucca, through its current API with an OAuth client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        token_url: str,
        oauth: LuccaOAuth,
        *,
        tokens: TokenCache = PROCESS_TOKENS,
        before_call: BeforeCall | None = None,
    ) -> None:
        check_header_secret(oauth.client_secret, "Lucca OAuth client secret")
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._token_url = token_url
        self._oauth = oauth
        self._tokens = tokens
        self._token_key = TokenCache.key(token_url, oauth)
        self._before_call = before_call

    # -- webhook endpoints ------------------------------------------------------------------

    async def list_endpoints(self) -> list[WebhookEndpoint]:
        found: list[WebhookEndpoint] = []
        async for page in self._pages("/lucca-api/webhook-endpoints", {}):
            found.extend(_endpoint(item) for item in page)
        return found

    async def get_endpoint(self, endpoint_id: str) -> WebhookEndpoint | None:
        """The endpoint, or None when Lucca knows it no more (deleted)."""
        if not endpoint_id.isascii() or not endpoint_id.isalnum():
            raise ValueError("a webhook endpoint id is letters and digits")
        response = await self._call("GET", f"/lucca-api/webhook-endpoints/{endpoint_id}")
        if response.status_code == 404:
            return None
        return _endpoint(self._json(response))

    async def create_endpoint(
        self, name: str, webhook_url: str, topics: Sequence[str]
    ) -> CreatedEndpoint:
        body = {
            "name": name,
            "webhookUrl": webhook_url,
            "apiVersion": API_VERSION,
            "businessEstablishments": None,
            "topics": list(topics),
        }
        response = await self._call("POST", "/lucca-api/webhook-endpoints", json=body)
        document = self._json(response)
        secret = document.get("secret")
        if not isinstance(secret, str) or not secret:
            raise LuccaUnavailable("Lucca created a webhook endpoint without its secret")
        return CreatedEndpoint(_endpoint(document), Secret(secret))

    # -- events -----------------------------------------------------------------------------

    async def events_since(self, since: datetime) -> list[LuccaEvent]:
        """The events that occurred at or after `since` (aware), delivered or not.

        The document declares no date filter: pages are read until one holds only older
        events (Lucca lists the newest first) or there are no more.
        """
        found: list[LuccaEvent] = []
        async for page in self._pages("/lucca-api/events", {}):
            events = [_event(item) for item in page]
            recent = [e for e in events if e.occurred_at is None or e.occurred_at >= since]
            found.extend(recent)
            if events and not recent:
                break
        return found

    # -- HTTP -------------------------------------------------------------------------------

    async def _pages(
        self, path: str, query: Mapping[str, str]
    ) -> AsyncIterator[list[dict[str, Any]]]:
        url: str | None = str(
            httpx.URL(f"{self._base_url}{path}", params={**query, "limit": str(PAGE_LIMIT)})
        )
        for _ in range(MAX_PAGES):
            if url is None:
                return
            response = await self._call("GET", url)
            document = self._json(response)
            items = document.get("items")
            if not isinstance(items, list):
                raise LuccaUnavailable(f"Lucca GET {path} answered without `items`")
            yield [item for item in items if isinstance(item, dict)]
            url = self._next(document)

    def _next(self, document: Mapping[str, Any]) -> str | None:
        links = document.get("links")
        following = links.get("next") if isinstance(links, dict) else None
        href = following.get("href") if isinstance(following, dict) else None
        if not isinstance(href, str):
            return None
        # The next page must stay on the tenant's Lucca: a link elsewhere is not followed.
        if not href.startswith(f"{self._base_url}/"):
            raise LuccaUnavailable("Lucca's next link leads off the tenant's Lucca")
        return href

    async def _call(self, method: str, path_or_url: str, **kwargs: Any) -> httpx.Response:
        url = path_or_url if "://" in path_or_url else f"{self._base_url}{path_or_url}"
        for attempt in range(2):
            token = await self._token()
            if self._before_call is not None:
                await self._before_call()
            headers = {
                "Authorization": f"Bearer {token.reveal()}",
                "Api-Version": API_VERSION,
                "Accept": "application/json",
            }
            try:
                response = await self._http.request(method, url, headers=headers, **kwargs)
            except httpx.RequestError as exc:
                reason = self._scrub(f"{type(exc).__name__}: {exc}", token)
                raise LuccaUnavailable(f"Lucca {method} {httpx.URL(url).path}: {reason}") from exc
            if response.status_code == 401 and attempt == 0:
                # The token may have been revoked before its time: one more with a new one.
                self._tokens.drop(self._token_key)
                continue
            if response.status_code in (200, 201) or (
                response.status_code == 404 and method == "GET"
            ):
                return response
            raise _error(response, self._scrub(_detail(response), token))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _token(self) -> Secret:
        cached = self._tokens.get(self._token_key)
        if cached is not None:
            return cached
        secret = self._oauth.client_secret
        form = {
            "grant_type": "client_credentials",
            "client_id": self._oauth.client_id,
            "client_secret": secret.reveal(),
            "scope": " ".join(SCOPES),
        }
        try:
            response = await self._http.post(self._token_url, data=form)
        except httpx.RequestError as exc:
            reason = scrub(f"{type(exc).__name__}: {exc}", secret)
            raise LuccaUnavailable(f"Lucca's token endpoint cannot be reached: {reason}") from exc
        if response.status_code in (400, 401, 403):
            raise LuccaAuthError(
                "Lucca refused the OAuth client (client_id or client_secret wrong, revoked, or "
                f"without the scopes {', '.join(SCOPES)}){scrub(_detail(response), secret)}",
                status=response.status_code,
            )
        if response.status_code != 200:
            raise _error(response, scrub(_detail(response), secret))
        document = self._json(response)
        token, expires_in = document.get("access_token"), document.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int | float):
            raise LuccaUnavailable("Lucca's token endpoint answered without a token")
        bearer = Secret(token)
        check_header_secret(bearer, "Lucca access token")
        self._tokens.put(self._token_key, bearer, float(expires_in))
        return bearer

    def _scrub(self, text: str, token: Secret) -> str:
        return scrub(scrub(text, token), self._oauth.client_secret)

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            document = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            document = None
        if not isinstance(document, dict):
            where = f"{response.request.method} {response.request.url.path}"
            raise LuccaUnavailable(f"Lucca {where} answered {response.status_code} without JSON")
        return document


def _error(response: httpx.Response, detail: str) -> LuccaError:
    """The error of an answer; `detail` is its body's excerpt, credentials already masked."""
    status = response.status_code
    where = f"Lucca {response.request.method} {response.request.url.path} answered {status}"
    if status in (401, 403):
        return LuccaAuthError(f"{where}: the OAuth client was refused{detail}", status=status)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return LuccaRateLimited(f"{where}: rate limited{detail}", retry_after=retry_after)
    if status == 408 or status >= 500:
        return LuccaUnavailable(f"{where}{detail}", status=status)
    if status == 400:
        return LuccaRejected(f"{where}{detail}", errors=_problem_errors(response))
    return LuccaError(f"{where}{detail}", status=status)


def _problem_errors(response: httpx.Response) -> dict[str, list[str]]:
    try:
        document = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, dict):
        return {}
    return {
        str(field): [str(message) for message in messages]
        for field, messages in errors.items()
        if isinstance(messages, list)
    }


def _endpoint(item: Mapping[str, Any]) -> WebhookEndpoint:
    ident, url, topics = item.get("id"), item.get("webhookUrl"), item.get("topics")
    if not isinstance(ident, str) or not isinstance(url, str) or not isinstance(topics, list):
        raise LuccaUnavailable("Lucca listed a webhook endpoint without id, webhookUrl or topics")
    status = item.get("status")
    return WebhookEndpoint(
        id=ident,
        webhook_url=url,
        topics=tuple(str(topic) for topic in topics),
        status=status if isinstance(status, str) else "inactive",
    )


def _event(item: dict[str, Any]) -> LuccaEvent:
    occurred = item.get("occurredAt")
    moment = None
    if isinstance(occurred, str):
        try:
            moment = datetime.fromisoformat(occurred)
        except ValueError:
            moment = None
    if moment is not None and moment.tzinfo is None:
        moment = None  # a moment without offset cannot be compared: kept, as if recent
    return LuccaEvent(id=str(item.get("id", "")), occurred_at=moment, document=item)


def _detail(response: httpx.Response) -> str:
    """A short excerpt of an error body, for the message (never the headers)."""
    text = " ".join(response.text.split())[:200]
    return f": {text}" if text else ""
