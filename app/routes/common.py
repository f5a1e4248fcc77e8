"""Small helpers every route module shares."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from app.service.resources import Resources

TENANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # use fullmatch


def resources_of(request: Request) -> Resources:
    resources: Resources = request.state.resources
    return resources


def error(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status)
