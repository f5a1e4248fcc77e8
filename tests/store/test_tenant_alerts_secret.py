"""The alerts secret at rest: encrypted, bound to its tenant and field, rotated with the rest."""

from __future__ import annotations

import orjson
import pytest
from arq.connections import ArqRedis

from app.crypto import SecretBox
from app.secret import Secret
from app.store import keys
from app.store.tenants import TenantStore, TenantStoreError
from tests.store.test_tenants import make_config, new_key

pytest_plugins = ["tests.store.test_tenants"]

ALERTS_SECRET = "alerts-secret-6a7b8c"
URL = "https://alerts.elevo.example/sync"


async def test_the_alerts_secret_is_stored_encrypted_and_read_back(
    redis: ArqRedis, store: TenantStore
) -> None:
    await store.put(make_config(alerts_url=URL, alerts_secret=Secret(ALERTS_SECRET)))
    raw = await redis.get(keys.tenant_config("acme"))
    assert ALERTS_SECRET.encode() not in raw
    config = await store.get("acme")
    assert config is not None
    assert (config.alerts_url, config.alerts_secret) == (URL, Secret(ALERTS_SECRET))


async def test_a_config_without_alerts_reads_back_without(store: TenantStore) -> None:
    await store.put(make_config())
    config = await store.get("acme")
    assert config is not None
    assert (config.alerts_url, config.alerts_secret, config.alerts_failed_runs) == (None, None, 3)


async def test_the_alerts_secret_is_bound_to_its_tenant(
    redis: ArqRedis, store: TenantStore
) -> None:
    await store.put(make_config(alerts_url=URL, alerts_secret=Secret(ALERTS_SECRET)))
    await store.put(make_config("globex"))
    acme = orjson.loads(await redis.get(keys.tenant_config("acme")))
    globex = orjson.loads(await redis.get(keys.tenant_config("globex")))
    globex["alerts_secret"] = acme["alerts_secret"]
    await redis.set(keys.tenant_config("globex"), orjson.dumps(globex))
    with pytest.raises(TenantStoreError):
        await store.get("globex")


async def test_rotation_reencrypts_the_alerts_secret(redis: ArqRedis, key: Secret) -> None:
    old = TenantStore(redis, SecretBox([key]))
    await old.put(make_config(alerts_url=URL, alerts_secret=Secret(ALERTS_SECRET)))
    fresh = new_key()
    assert await TenantStore(redis, SecretBox([fresh, key])).reencrypt_all() == 1
    config = await TenantStore(redis, SecretBox([fresh])).get("acme")
    assert config is not None
    assert config.alerts_secret == Secret(ALERTS_SECRET)
