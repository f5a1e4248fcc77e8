"""Tenant tokens in the service (app/service/tokens.py, app/service/access.py): expiry, the
time a token was last used, the limit per tenant, and what a console session asks."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from app.service.access import (
    ADMIN,
    Principal,
    Scope,
    authenticate,
    new_tenant_token,
    still_valid,
    token_digest,
)
from app.service.errors import TooManyTokens
from app.service.resources import Resources
from app.service.tokens import MAX_TOKENS_PER_TENANT, issue_token, list_tokens
from app.store.access_tokens import StoredToken
from tests.factories import TENANT
from tests.fakes import NOW

DAY = timedelta(days=1)


def at(res: Resources, offset: timedelta) -> Resources:
    """The same resources, their clock moved by `offset`."""
    return replace(res, clock=lambda: NOW + offset)


async def test_a_token_stands_until_it_expires(res: Resources) -> None:
    issued = await issue_token(
        res, TENANT, scope=Scope.SYNC, name="backend", lifetime=DAY, by="admin"
    )
    principal = await authenticate(at(res, DAY - timedelta(seconds=1)), issued.token)
    assert principal == Principal(issued.stored.id, Scope.SYNC, TENANT)
    assert await still_valid(at(res, DAY - timedelta(seconds=1)), principal)
    assert await authenticate(at(res, DAY), issued.token) is None
    assert not await still_valid(at(res, DAY), principal)
    assert await list_tokens(at(res, DAY), TENANT) == []
    # Redis forgets it too, at its expiry.
    ttl = await res.redis.ttl(f"t:{TENANT}:access-token:{issued.stored.id}")
    assert ttl > 0


async def test_last_used_is_written_once_a_minute_at_most(res: Resources) -> None:
    issued = await issue_token(
        res, TENANT, scope=Scope.OPERATOR, name="ops", lifetime=DAY, by="admin"
    )
    assert (await list_tokens(res, TENANT))[0].last_used_at is None
    assert await authenticate(res, issued.token) is not None
    assert (await list_tokens(res, TENANT))[0].last_used_at == NOW
    assert await authenticate(at(res, timedelta(seconds=30)), issued.token) is not None
    assert (await list_tokens(res, TENANT))[0].last_used_at == NOW
    later = at(res, timedelta(minutes=2))
    assert await authenticate(later, issued.token) is not None
    assert (await list_tokens(res, TENANT))[0].last_used_at == NOW + timedelta(minutes=2)


async def test_a_tenant_holds_a_bounded_number_of_tokens(res: Resources) -> None:
    for number in range(MAX_TOKENS_PER_TENANT):
        await issue_token(
            res, TENANT, scope=Scope.SYNC, name=f"t{number}", lifetime=DAY, by="admin"
        )
    with pytest.raises(TooManyTokens):
        await issue_token(res, TENANT, scope=Scope.SYNC, name="one more", lifetime=DAY, by="admin")
    # Expired ones make room.
    await issue_token(
        at(res, DAY), TENANT, scope=Scope.SYNC, name="after", lifetime=DAY, by="admin"
    )


async def test_the_admin_session_stays_and_a_forged_principal_does_not(res: Resources) -> None:
    assert await still_valid(res, ADMIN)
    issued = await issue_token(res, TENANT, scope=Scope.SYNC, name="b", lifetime=DAY, by="admin")
    # A session claiming more than its token's scope, or no token at all, does not stand.
    assert not await still_valid(res, Principal(issued.stored.id, Scope.OPERATOR, TENANT))
    assert not await still_valid(res, Principal("0123456789ab", Scope.OPERATOR, TENANT))
    assert not await still_valid(res, Principal("someone", Scope.ADMIN, TENANT))


@pytest.mark.parametrize(
    "token",
    ["", "les_", "les_acme", "les_acme_0123456789ab", "les_acme_0123456789ab_", "les_ACME_x_y"],
)
async def test_a_malformed_token_stands_for_nobody(res: Resources, token: str) -> None:
    assert await authenticate(res, token) is None


async def test_a_stored_record_claiming_the_admin_scope_stands_for_nobody(res: Resources) -> None:
    token, token_id = new_tenant_token(TENANT)
    forged = StoredToken(
        id=token_id,
        tenant=TENANT,
        scope="admin",
        name="forged",
        digest=token_digest(token),
        created_at=NOW,
        expires_at=NOW + DAY,
    )
    assert await res.access_tokens.add(forged, limit=MAX_TOKENS_PER_TENANT)
    assert await authenticate(res, token) is None
