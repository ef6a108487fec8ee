"""The interactive docs and the OpenAPI schema, behind the same rule as every read: open unless
PROTECT_READS is set (the schema maps every route, which is what PROTECT_READS hides).

Swagger UI and ReDoc load from the package's static files, not a CDN: they work offline.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

from service.api.browsers import docs_policy
from service.api.deps import Reader, TokenFirstRoute
from service.api.routes.web import STATIC, VENDOR

OPENAPI_URL = "/openapi.json"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = docs_policy(bytes(page.body))
    return page


router = APIRouter(route_class=TokenFirstRoute, include_in_schema=False, dependencies=[Reader])


@router.get(OPENAPI_URL)
async def openapi(request: Request) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi()
    return schema


@router.get(DOCS_URL)
async def swagger_ui(request: Request) -> HTMLResponse:
    return _with_policy(
        get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{request.app.title} - Swagger UI",
            oauth2_redirect_url=f"{DOCS_URL}/oauth2-redirect",
            swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon.svg",
        )
    )


@router.get(f"{DOCS_URL}/oauth2-redirect")
async def swagger_ui_redirect() -> HTMLResponse:
    return _with_policy(get_swagger_ui_oauth2_redirect_html())


@router.get(REDOC_URL)
async def redoc(request: Request) -> HTMLResponse:
    return _with_policy(
        get_redoc_html(
            openapi_url=OPENAPI_URL,
            title=f"{request.app.title} - ReDoc",
            redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC}/favicon.svg",
            with_google_fonts=False,
        )
    )
