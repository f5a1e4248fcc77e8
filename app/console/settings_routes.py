"""The settings page: edit a tenant's configuration, test its connections."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from app.console.web import Page, field, guarded, not_found
from app.service.access import Action
from app.service.tenant_settings import (
    SECRET_FIELDS,
    save_settings,
    settings_form,
    test_connection,
)


def _render(page: Page, form: object, status_code: int = 200) -> Response:
    return page.render(
        "settings.html",
        status_code,
        form=form,
        locked=() if page.allows(Action.CONFIGURE_SECRETS) else SECRET_FIELDS,
    )


@guarded(Action.CONFIGURE)
async def settings_page(page: Page) -> Response:
    assert page.tenant is not None
    form = await settings_form(page.res, page.tenant)
    return not_found(page.request) if form is None else _render(page, form)


@guarded(Action.CONFIGURE)
async def save(page: Page) -> Response:
    assert page.tenant is not None
    values = {k: v for k, v in (page.form or {}).items() if k != "csrf"}
    form = await save_settings(page.res, page.tenant, page.session.principal, values)
    return _render(page, form, 200 if form.saved else 422)


@guarded(Action.CONFIGURE)
async def test(page: Page) -> Response:
    assert page.tenant is not None
    system = field(page, "system")
    if system not in {"lucca", "elevo"}:
        return not_found(page.request)
    result = await test_connection(page.res, page.tenant, system)
    return page.render("_connection.html", result=result, system=system)


routes = [
    Route("/t/{tenant}/settings", settings_page, methods=["GET"]),
    Route("/t/{tenant}/settings", save, methods=["POST"]),
    Route("/t/{tenant}/settings/test", test, methods=["POST"]),
]
