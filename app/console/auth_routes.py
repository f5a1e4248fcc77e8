"""Signing in and out of the console."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.auth import resources_of
from app.console.web import (
    COOKIE,
    PREFIX,
    Page,
    console_enabled,
    guarded,
    read_form,
    redirect,
    refused_origin,
    render,
    same_origin,
)
from app.service.access import Action
from app.service.console_sessions import cookie_value, sign_in, sign_out

log = logging.getLogger(__name__)

MAX_TOKEN_LENGTH = 512


async def sign_in_page(request: Request) -> Response:
    res = resources_of(request)
    if not console_enabled(res):
        return Response("Not Found", status_code=404)
    if request.method == "GET":
        return render(request, "sign_in.html", error=None)
    if not same_origin(request, res):
        return refused_origin(request)
    token = (await read_form(request)).get("token", "")
    session = None
    if 0 < len(token) <= MAX_TOKEN_LENGTH:
        session = await sign_in(res, token)
    if session is None:
        log.info("console sign-in refused")
        return render(request, "sign_in.html", 401, error="That token is not valid.")
    log.info("console sign-in by %s", session.principal.name)
    response = redirect(f"{PREFIX}/", request)
    public = res.settings.public_url or ""
    response.set_cookie(
        COOKIE,
        cookie_value(res, session.id),
        max_age=res.settings.console_session_seconds,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=public.startswith("https://"),
    )
    return response


# READ_RUNS is the least any scope holds: signing out needs no more.
@guarded(Action.READ_RUNS)
async def sign_out_page(page: Page) -> Response:
    await sign_out(page.res, page.session)
    response = redirect(f"{PREFIX}/sign-in", page.request)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


routes = [
    Route("/sign-in", sign_in_page, methods=["GET", "POST"]),
    Route("/sign-out", sign_out_page, methods=["POST"]),
]
