"""Tenant configs in Redis: one JSON document per tenant, its secrets encrypted.

Layout:
    tenant:{tenant}:config  the config in the admin API body's shape (app/schemas/tenant.py), plus a
                            "format" version; `lucca.api_key`, `elevo.token`, each entry of
                            the `lucca.webhook_secret` list, `alerts_secret` and
                            `lucca.oauth.client_secret` (when set) are SecretBox tokens, the
                            rest is clear
    tenants                 a set of every tenant name

A document is read back through `parse_tenant`, so a stored config obeys the same rules as a
PUT body, and settings that later versions add take their defaults on old documents.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable
from typing import Any, Final, cast

import orjson
from arq.connections import ArqRedis
from redis.exceptions import WatchError

from app.core.tenant import TenantConfig
from app.crypto import SecretBox, SecretDecryptError
from app.schemas.common import TENANT_RE
from app.schemas.errors import InvalidDocument
from app.schemas.tenant import parse_tenant, tenant_view
from app.store import keys

FORMAT: Final = 1

# Each secret's SecretBox purpose is its field in the document: a token moved to another field
# does not decrypt there.
LUCCA_KEY_FIELD: Final = "lucca.api_key"
WEBHOOK_FIELD: Final = "lucca.webhook_secret"
ELEVO_AUTH_FIELD: Final = "elevo.token"
ALERTS_SECRET_FIELD: Final = "alerts_secret"  # noqa: S105 - a field name, not a secret
OAUTH_SECRET_FIELD: Final = "lucca.oauth.client_secret"  # noqa: S105 - a field name


class TenantStoreError(RuntimeError):
    """A stored config cannot be read; the message names the tenant, never a secret."""


class TenantStore:
    """Reads and writes tenant configs; the SecretBox encrypts their secrets."""

    def __init__(self, redis: ArqRedis, box: SecretBox) -> None:
        self._redis = redis
        self._box = box

    async def get(self, tenant: str) -> TenantConfig | None:
        # A name that cannot be stored cannot exist: no need to ask Redis (or to fail).
        if not TENANT_RE.fullmatch(tenant):
            return None
        raw = await self._redis.get(keys.tenant_config(tenant))
        if raw is None:
            return None
        return self._decode(tenant, raw)

    async def put(self, config: TenantConfig) -> bool:
        """Store the config; True when the tenant is new.

        A config built in code, not by `parse_tenant`, is checked (and normalised) here the
        same way: a document that reading would refuse is never written. ValueError if invalid.
        """
        config = _checked(config)
        document = orjson.dumps(self._encode(config))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.tenant_config(config.tenant), document)
            pipe.sadd(keys.tenants(), config.tenant)
            _, added = await pipe.execute()
        return bool(added)

    async def delete(self, tenant: str) -> bool:
        """Forget the tenant's config; True when there was one."""
        if not TENANT_RE.fullmatch(tenant):
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.tenant_config(tenant))
            pipe.srem(keys.tenants(), tenant)
            deleted, removed = await pipe.execute()
        return bool(deleted or removed)

    async def list(self) -> builtins.list[str]:
        # redis-py types its commands as sync-or-async; on an asyncio client they are awaitable.
        members = await cast("Awaitable[set[bytes]]", self._redis.smembers(keys.tenants()))
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    async def reencrypt_all(self) -> int:
        """Re-encrypt every tenant's secrets under the first key; the number of tenants done.

        Every tenant is tried; those whose secrets decrypt with no key are named at the end.
        """
        done = 0
        failed: builtins.list[str] = []
        for tenant in await self.list():
            try:
                done += await self._reencrypt(tenant)
            except TenantStoreError:
                failed.append(tenant)
        if failed:
            raise TenantStoreError(
                f"the secrets of tenant(s) {', '.join(failed)} decrypt with no SECRETS_KEY key; "
                f"{done} other tenant(s) were re-encrypted"
            )
        return done

    async def _reencrypt(self, tenant: str) -> bool:
        key = keys.tenant_config(tenant)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                # WATCH: a PUT between the read and the write must not be overwritten.
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        return False
                    document = self._rotate(tenant, _load(tenant, raw))
                    pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py 5
                    pipe.set(key, orjson.dumps(document))
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    def _encode(self, config: TenantConfig) -> dict[str, Any]:
        tenant, box = config.tenant, self._box
        document = {"format": FORMAT, **tenant_view(config)}
        document["lucca"]["api_key"] = box.encrypt(
            tenant, LUCCA_KEY_FIELD, config.lucca_api_key.reveal()
        )
        document["lucca"]["webhook_secret"] = [
            box.encrypt(tenant, WEBHOOK_FIELD, secret.reveal()) for secret in config.webhook_secrets
        ]
        document["elevo"]["token"] = box.encrypt(
            tenant, ELEVO_AUTH_FIELD, config.elevo_token.reveal()
        )
        if config.alerts_secret is not None:
            document[ALERTS_SECRET_FIELD] = box.encrypt(
                tenant, ALERTS_SECRET_FIELD, config.alerts_secret.reveal()
            )
        if config.lucca_oauth is not None:
            document["lucca"]["oauth"]["client_secret"] = box.encrypt(
                tenant, OAUTH_SECRET_FIELD, config.lucca_oauth.client_secret.reveal()
            )
        return document

    def _decode(self, tenant: str, raw: bytes | str) -> TenantConfig:
        document = _load(tenant, raw)
        try:
            lucca, elevo = document["lucca"], document["elevo"]
            lucca["api_key"] = self._box.decrypt(tenant, LUCCA_KEY_FIELD, lucca["api_key"]).reveal()
            lucca["webhook_secret"] = [
                self._box.decrypt(tenant, WEBHOOK_FIELD, token).reveal()
                for token in lucca["webhook_secret"]
            ]
            elevo["token"] = self._box.decrypt(tenant, ELEVO_AUTH_FIELD, elevo["token"]).reveal()
            if document.get(ALERTS_SECRET_FIELD):
                document[ALERTS_SECRET_FIELD] = self._box.decrypt(
                    tenant, ALERTS_SECRET_FIELD, document[ALERTS_SECRET_FIELD]
                ).reveal()
            if (oauth := lucca.get("oauth")) is not None:
                oauth["client_secret"] = self._box.decrypt(
                    tenant, OAUTH_SECRET_FIELD, oauth["client_secret"]
                ).reveal()
            document.pop("format", None)
            # The URL was checked against ALLOW_HTTP_ELEVO when it was stored.
            return parse_tenant(tenant, document, existing=None, allow_http_elevo=True, egress=None)
        except SecretDecryptError as exc:
            raise TenantStoreError(f"stored config of tenant {tenant!r}: {exc}") from None
        except InvalidDocument as exc:
            raise TenantStoreError(
                f"stored config of tenant {tenant!r} is invalid: {exc}"
            ) from None
        except (KeyError, TypeError, AttributeError):
            raise TenantStoreError(f"stored config of tenant {tenant!r} is malformed") from None

    def _rotate(self, tenant: str, document: dict[str, Any]) -> dict[str, Any]:
        box = self._box
        try:
            lucca, elevo = document["lucca"], document["elevo"]
            lucca["api_key"] = box.rotate(tenant, LUCCA_KEY_FIELD, lucca["api_key"])
            lucca["webhook_secret"] = [
                box.rotate(tenant, WEBHOOK_FIELD, token) for token in lucca["webhook_secret"]
            ]
            elevo["token"] = box.rotate(tenant, ELEVO_AUTH_FIELD, elevo["token"])
            if document.get(ALERTS_SECRET_FIELD):
                document[ALERTS_SECRET_FIELD] = box.rotate(
                    tenant, ALERTS_SECRET_FIELD, document[ALERTS_SECRET_FIELD]
                )
            if (oauth := lucca.get("oauth")) is not None:
                oauth["client_secret"] = box.rotate(
                    tenant, OAUTH_SECRET_FIELD, oauth["client_secret"]
                )
        except SecretDecryptError as exc:
            raise TenantStoreError(f"stored config of tenant {tenant!r}: {exc}") from None
        except (KeyError, TypeError, AttributeError):
            raise TenantStoreError(f"stored config of tenant {tenant!r} is malformed") from None
        return document


def _checked(config: TenantConfig) -> TenantConfig:
    try:
        # The view shows secrets as "***", which `existing` fills back in.
        return parse_tenant(
            config.tenant, tenant_view(config), existing=config, allow_http_elevo=True, egress=None
        )
    except InvalidDocument as exc:
        raise ValueError(f"invalid config for tenant {config.tenant!r}: {exc}") from None


def _load(tenant: str, raw: bytes | str) -> dict[str, Any]:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        document = None
    if not isinstance(document, dict):
        raise TenantStoreError(f"stored config of tenant {tenant!r} is not a JSON object")
    return document


async def purge_state(redis: ArqRedis, tenant: str) -> int:
    """Remove every key of a deleted tenant's sync state; its queued jobs then do nothing."""
    removed = 0
    batch: builtins.list[bytes] = []
    async for key in redis.scan_iter(match=keys.tenant_pattern(tenant), count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            removed += await redis.delete(*batch)
            batch.clear()
    if batch:
        removed += await redis.delete(*batch)
    return int(removed)
