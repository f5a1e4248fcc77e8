"""Console sign-in: a token becomes a server-side session named by a random id, signed in
the cookie with SESSION_KEY; every request finds the session again and asks `still_valid`,
so a revoked token ends its sessions at once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from app.service.access import Action, Principal, Scope, authenticate, still_valid
from app.service.resources import Resources
from app.store.console_sessions import ConsoleSessions, StoredSession


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in operator: who, and the CSRF token every form of theirs carries."""

    id: str
    principal: Principal
    csrf: str

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


def _signature(session_key: str, session_id: str) -> str:
    return hmac.new(session_key.encode(), session_id.encode(), hashlib.sha256).hexdigest()


def cookie_value(res: Resources, session_id: str) -> str:
    """`<id>.<HMAC of the id>`: a forged or altered id is refused before Redis is asked."""
    key = res.settings.session_key
    assert key is not None  # the console is off without it
    return f"{session_id}.{_signature(key.reveal(), session_id)}"


def _session_id(res: Resources, cookie: str | None) -> str | None:
    key = res.settings.session_key
    if key is None or not cookie:
        return None
    session_id, _, signature = cookie.partition(".")
    expected = _signature(key.reveal(), session_id)
    if not session_id or not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    return session_id


async def sign_in(res: Resources, token: str) -> Session | None:
    """A new session for the principal the token stands for; None for a token of nobody, or
    of a scope that may not read a tenant's status (a `sync` token is for Elevo's backend)."""
    principal = await authenticate(res, token.strip())
    if principal is None or not principal.allows(Action.READ_STATUS, principal.tenant):
        return None
    session = Session(secrets.token_urlsafe(32), principal, secrets.token_urlsafe(32))
    stored = StoredSession(
        name=principal.name,
        scope=principal.scope.value,
        tenant=principal.tenant or "",
        csrf=session.csrf,
    )
    await ConsoleSessions(res.redis).create(
        session.id, stored, res.settings.console_session_seconds
    )
    return session


async def current_session(res: Resources, cookie: str | None) -> Session | None:
    """The session a cookie names, if it is genuine, unexpired and its token still stands
    (a session whose token was revoked is ended here)."""
    session_id = _session_id(res, cookie)
    if session_id is None:
        return None
    sessions = ConsoleSessions(res.redis)
    stored = await sessions.get(session_id)
    if stored is None:
        return None
    principal = Principal(stored.name, Scope(stored.scope), stored.tenant or None)
    if not await still_valid(res, principal):
        await sessions.delete(session_id)
        return None
    return Session(session_id, principal, stored.csrf)


async def sign_out(res: Resources, session: Session) -> None:
    await ConsoleSessions(res.redis).delete(session.id)
