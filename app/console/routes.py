"""The console mounted under /console: its pages, its buttons and its static files."""

from __future__ import annotations

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from app.console import actions, auth_routes, pages, settings_routes, tenant_actions
from app.console.web import HERE, PREFIX

mount = Mount(
    PREFIX,
    routes=[
        *auth_routes.routes,
        *pages.routes,
        *actions.routes,
        *tenant_actions.routes,
        *settings_routes.routes,
        Mount("/static", StaticFiles(directory=HERE / "static"), name="console-static"),
    ],
)
