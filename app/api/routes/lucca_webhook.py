"""`POST /tenants/{tenant}/webhook` (admin): register the tenant's webhook endpoint through
Lucca's API now, with its `lucca.oauth` client (issue 15). An active endpoint is kept (200);
a missing or suspended one is replaced (201). Lucca's refusals are in the answer's
`webhook.error`; the signing secret is stored, never shown.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.auth import known_tenant
from app.api.errors import ApiError, ErrorCode
from app.api.responses import WebhookRegistration
from app.service.access import Action
from app.service.lucca_webhook import WebhookNotConfigured, register_now
from app.service.resources import Resources


@known_tenant(Action.CONFIGURE_SECRETS)
async def register_webhook(request: Request, res: Resources, tenant: str) -> Response:
    try:
        registration = await register_now(res, tenant)
    except WebhookNotConfigured as exc:
        raise ApiError.of(ErrorCode.CONFLICT, str(exc)) from None
    answer = msgspec.convert(
        {"created": registration.created, "webhook": registration.state.document()},
        WebhookRegistration,
    )
    return JSONResponse(
        msgspec.to_builtins(answer), status_code=201 if registration.created else 200
    )


routes: list[Route] = [
    Route("/tenants/{tenant}/webhook", register_webhook, methods=["POST"]),
]
