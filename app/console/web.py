"""The console's plumbing: templates (autoescaped), the session guard every page goes
through (404 when the console is off or the scope forbids, sign-in when no session, CSRF on
every POST) and the security headers of every answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app.api.auth import resources_of
from app.schemas.common import TENANT_RE
from app.service.access import Action
from app.service.console_sessions import Session, current_session
from app.service.resources import Resources
from app.service.tenants import get_tenant

HERE = Path(__file__).parent
MAX_FORM_BYTES = 16 * 1024
COOKIE = "console_session"
PREFIX = "/console"

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def when(value: str | None) -> str:
    """An ISO time as `2026-12-05 07:10:03` (UTC), or a dash."""
    return value[:19].replace("T", " ") if value else "—"


def shown(value: object) -> str:
    """A value of a diff as an operator reads it: JSON's words, not Python's."""
    if value is None:
        return "∅"
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def field_label(path: str) -> str:
    """A SCIM path without its schema URN: `enterprise: department`."""
    if not path.startswith("urn:"):
        return path
    schema, _, attribute = path.rpartition(":")
    return f"{schema.split(':')[6]}: {attribute}" if schema.count(":") > 6 else attribute


def seconds(value: float | None) -> str:
    """A duration as `80 ms` or `1.2 s`, or a dash."""
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


templates.filters.update(when=when, shown=shown, field_label=field_label, seconds=seconds)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = templates.get_template(template).render(request=request, prefix=PREFIX, **context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def not_found(request: Request) -> HTMLResponse:
    return render(request, "error.html", 404, title="Not found", message="There is no such page.")


def redirect(url: str, request: Request) -> Response:
    """A 303 for a form; htmx follows `HX-Redirect` instead of swapping the next page in."""
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def same_origin(request: Request, res: Resources) -> bool:
    """Whether a POST comes from the console's own pages, as far as the browser says
    (`Origin`): PUBLIC_URL when set, else the host asked. Defence in depth beside the CSRF
    token, and the only guard of the sign-in form, which no session protects yet."""
    origin = request.headers.get("origin")
    if not origin:
        return True  # sent by every current browser on a POST; its absence proves nothing
    if res.settings.public_url:
        expected = urlsplit(res.settings.public_url)
        return origin == f"{expected.scheme}://{expected.netloc}"
    return urlsplit(origin).netloc == request.headers.get("host", "")


def refused_origin(request: Request) -> HTMLResponse:
    return render(
        request, "error.html", 403, title="Refused",
        message="This form was sent from another site.",
    )  # fmt: skip


def console_enabled(res: Resources) -> bool:
    return res.settings.session_key is not None


@dataclass(frozen=True, slots=True)
class Page:
    """What a guarded page gets: the request, the resources, the session and the tenant of
    the path (None on pages of no tenant), and a POST's form (its CSRF checked)."""

    request: Request
    res: Resources
    session: Session
    tenant: str | None
    form: dict[str, str] | None

    def allows(self, action: Action) -> bool:
        return self.session.principal.allows(action, self.tenant)

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return render(
            self.request,
            template,
            status_code,
            session=self.session,
            principal=self.session.principal,
            tenant=self.tenant,
            allows=self.allows,
            Action=Action,
            **context,
        )


Endpoint = Callable[[Request], Awaitable[Response]]
PageEndpoint = Callable[[Page], Awaitable[Response]]


def guarded(action: Action) -> Callable[[PageEndpoint], Endpoint]:
    """A page that needs a session whose principal `allows(action, tenant)`; what the scope
    forbids is answered as if it did not exist (404)."""

    def decorate(endpoint: PageEndpoint) -> Endpoint:
        @wraps(endpoint)
        async def guard(request: Request) -> Response:
            res = resources_of(request)
            if not console_enabled(res):
                return Response("Not Found", status_code=404)
            session = await current_session(res, request.cookies.get(COOKIE))
            if session is None:
                return redirect(f"{PREFIX}/sign-in", request)
            tenant = request.path_params.get("tenant")
            if tenant is not None and (
                not TENANT_RE.fullmatch(tenant) or await get_tenant(res, tenant) is None
            ):
                return not_found(request)
            # A page of no tenant (the overview) asks for the principal's own tenant, if any.
            if not session.principal.allows(action, tenant or session.principal.tenant):
                return not_found(request)
            form = None
            if request.method == "POST":
                if not same_origin(request, res):
                    return refused_origin(request)
                form = await read_form(request)
                if not session.csrf_matches(form.get("csrf")):
                    return render(
                        request,
                        "error.html",
                        403,
                        title="Refused",
                        message="This form was not sent from this console (its CSRF token is "
                        "missing or wrong). Reload the page and try again.",
                    )
            return await endpoint(Page(request, res, session, tenant, form))

        return guard

    return decorate


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form (the console's forms are small and send no files); a body too
    large or of another type reads as empty, which its CSRF check then refuses."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip()
    body = await request.body()
    if kind != "application/x-www-form-urlencoded" or len(body) > MAX_FORM_BYTES:
        return {}
    try:
        return dict(parse_qsl(body.decode(), max_num_fields=20))
    except (UnicodeDecodeError, ValueError):
        return {}


def field(page: Page, name: str) -> str:
    """A text field of the page's form ("" when absent)."""
    return (page.form or {}).get(name, "")
