"""The per-minute tick handles each tenant apart: a broken one is flagged, the others run."""

from __future__ import annotations

import orjson

from app.service.polling import tick
from app.service.resources import Resources
from app.service.runs import recent_run_documents, status_document
from app.store import keys
from app.store.tenants import LUCCA_KEY_FIELD
from tests.factories import TENANT, make_tenant_config


async def _store_raw(res: Resources, tenant: str, document: bytes) -> None:
    await res.redis.set(keys.tenant_config(tenant), document)
    await res.redis.sadd(keys.tenants(), tenant)


async def _with_unusable_key(res: Resources, tenant: str) -> bytes:
    """A config stored by an older version: its Lucca key ends with a space."""
    await res.tenants.put(make_tenant_config(tenant=tenant, lucca_subdomain=tenant))
    document = orjson.loads(await res.redis.get(keys.tenant_config(tenant)))
    document["lucca"]["api_key"] = res.box.encrypt(tenant, LUCCA_KEY_FIELD, "pasted-key ")
    return orjson.dumps(document)


async def test_broken_tenants_are_flagged_and_the_others_still_poll(res: Resources) -> None:
    await res.tenants.put(make_tenant_config(poll_interval_seconds=60))
    await _store_raw(res, "aaa-garbled", b"{not json")
    await _store_raw(res, "zzz-old-key", await _with_unusable_key(res, "zzz-old-key"))

    assert await tick(res) == 1

    runs = await recent_run_documents(res, TENANT)
    assert [run["trigger"] for run in runs] == ["poll"]
    garbled = await status_document(res, "aaa-garbled")
    assert "aaa-garbled" in garbled["config_error"]
    assert "not a JSON object" in garbled["config_error"]
    old_key = await status_document(res, "zzz-old-key")
    assert "api_key" in old_key["config_error"]
    assert "pasted-key" not in old_key["config_error"]  # never the secret itself
    assert (await status_document(res, TENANT))["config_error"] is None


async def test_the_flag_goes_once_the_config_is_fixed(res: Resources) -> None:
    await _store_raw(res, "globex", b"[]")
    await tick(res)
    assert (await status_document(res, "globex"))["config_error"]

    await res.tenants.put(make_tenant_config(tenant="globex", lucca_subdomain="globex"))
    await tick(res)
    assert (await status_document(res, "globex"))["config_error"] is None
