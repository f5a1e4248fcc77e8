"""Tenant tokens (admin only) and the tenant's audit list (issue 12):
`POST/GET /tenants/{tenant}/tokens`, `DELETE /tenants/{tenant}/tokens/{token_id}`,
`GET /tenants/{tenant}/audit`."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.auth import known_tenant, operator_of
from app.api.errors import ApiError
from app.api.responses import AuditLog, NewToken, TokenInfo, TokenList
from app.api.schemas import parse_token_request
from app.service.access import TOKEN_ID_RE, Action, Scope
from app.service.audit import audit_document
from app.service.resources import Resources
from app.service.tokens import issue_token, list_tokens, revoke_token
from app.store.access_tokens import StoredToken

MAX_BODY_BYTES: Final = 4 * 1024


def _info(token: StoredToken) -> TokenInfo:
    return TokenInfo(
        id=token.id,
        name=token.name,
        scope="sync" if token.scope == Scope.SYNC else "operator",
        created_at=token.created_at.isoformat(),
        expires_at=token.expires_at.isoformat(),
        last_used_at=token.last_used_at.isoformat() if token.last_used_at else None,
    )


@known_tenant(Action.MANAGE_TOKENS)
async def create_token(request: Request, res: Resources, tenant: str) -> Response:
    asked = parse_token_request(await request.body())
    issued = await issue_token(
        res,
        tenant,
        scope=Scope(asked.scope),
        name=asked.name,
        lifetime=timedelta(days=asked.expires_in_days),
        by=operator_of(request),
    )
    listed = msgspec.structs.asdict(_info(issued.stored))
    answer = NewToken(**listed, token=issued.token)
    return JSONResponse(msgspec.to_builtins(answer), status_code=201)


@known_tenant(Action.MANAGE_TOKENS)
async def tokens(request: Request, res: Resources, tenant: str) -> Response:
    listed = TokenList(tenant, [_info(token) for token in await list_tokens(res, tenant)])
    return JSONResponse(msgspec.to_builtins(listed))


@known_tenant(Action.MANAGE_TOKENS)
async def delete_token(request: Request, res: Resources, tenant: str) -> Response:
    token_id = request.path_params["token_id"]
    if not TOKEN_ID_RE.fullmatch(token_id) or not await revoke_token(
        res, tenant, token_id, by=operator_of(request)
    ):
        raise ApiError.unknown_token()
    return Response(status_code=204)


@known_tenant(Action.READ_STATUS)
async def audit(request: Request, res: Resources, tenant: str) -> Response:
    document = msgspec.convert(await audit_document(res, tenant), AuditLog)
    return JSONResponse(msgspec.to_builtins(document))


routes: list[Route] = [
    Route("/tenants/{tenant}/tokens", create_token, methods=["POST"], max_body_size=MAX_BODY_BYTES),
    Route("/tenants/{tenant}/tokens", tokens, methods=["GET"]),
    Route("/tenants/{tenant}/tokens/{token_id}", delete_token, methods=["DELETE"]),
    Route("/tenants/{tenant}/audit", audit, methods=["GET"]),
]
