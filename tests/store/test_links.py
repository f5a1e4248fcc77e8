"""The id map and the copy of each employee's profile kept with its version."""

from __future__ import annotations

from dataclasses import replace

from arq.connections import ArqRedis

from app.core.profile import ElevoProfile, profile_from_scim
from app.store import keys
from app.store.links import PROFILE_COPY_SECONDS, ProfileLinks
from tests.factories import LUCCA_ID, PROFILE_ID, make_scim_user

PROFILE = profile_from_scim(make_scim_user())


async def _keep(links: ProfileLinks, redis: ArqRedis, profile: ElevoProfile | None) -> None:
    pipe = redis.pipeline(transaction=False)
    links.stage_copy(pipe, LUCCA_ID, profile)
    await pipe.execute()


async def test_a_copy_comes_back_with_its_link_and_expires_in_a_day(redis: ArqRedis) -> None:
    links = ProfileLinks(redis, "acme")
    await links.remember(LUCCA_ID, PROFILE_ID)
    await _keep(links, redis, PROFILE)
    assert await links.linked(LUCCA_ID) == (PROFILE_ID, PROFILE)
    ttl = await redis.ttl(keys.profile_copy("acme", LUCCA_ID))
    assert PROFILE_COPY_SECONDS - 5 < ttl <= PROFILE_COPY_SECONDS


async def test_a_copy_without_a_version_or_of_another_profile_is_no_copy(
    redis: ArqRedis,
) -> None:
    links = ProfileLinks(redis, "acme")
    await links.remember(LUCCA_ID, "another-profile")
    await _keep(links, redis, PROFILE)
    assert await links.linked(LUCCA_ID) == ("another-profile", None)
    await _keep(links, redis, replace(PROFILE, version=None))  # forgets the copy
    assert not await redis.exists(keys.profile_copy("acme", LUCCA_ID))


async def test_forgetting_the_link_forgets_the_copy(redis: ArqRedis) -> None:
    links = ProfileLinks(redis, "acme")
    await links.remember(LUCCA_ID, PROFILE_ID)
    await _keep(links, redis, PROFILE)
    await links.forget(LUCCA_ID)
    assert await links.linked(LUCCA_ID) == (None, None)
    assert not await redis.exists(keys.profile_copy("acme", LUCCA_ID))
