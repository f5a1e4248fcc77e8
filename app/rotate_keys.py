"""`python -m app.rotate_keys`: re-encrypt every tenant's secrets under the first SECRETS_KEY key.

Rotation: set `SECRETS_KEY=new,old` on every process, run this once, then drop `old`.
Running it again is harmless.
"""

from __future__ import annotations

import asyncio
import sys

from arq import create_pool

from app.crypto import SecretBox
from app.service.resources import redis_settings
from app.settings import Settings
from app.store.tenants import TenantStore


async def rotate(settings: Settings) -> int:
    """The number of tenants whose secrets were re-encrypted."""
    box = SecretBox(settings.secrets_keys)  # a malformed key fails before Redis is touched
    redis = await create_pool(redis_settings(settings))
    try:
        return await TenantStore(redis, box).reencrypt_all()
    finally:
        await redis.aclose()


def main() -> int:
    try:
        count = asyncio.run(rotate(Settings.from_env()))
    except Exception as exc:  # a CLI: one line for the operator; messages carry no secret
        sys.stderr.write(f"key rotation failed: {exc}\n")
        return 1
    sys.stdout.write(f"re-encrypted the secrets of {count} tenant(s)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
