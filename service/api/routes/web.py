"""The lab page (`/`) and its static files (`/static`, with the vendored Swagger UI and ReDoc
that the docs router serves from the package instead of a CDN), so all work offline.

The page is a shell of HTML; plain ES modules under static/js/ fetch the JSON API.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from service import __version__
from service.api.browsers import PAGE
from service.config import Settings
from service.db import people
from service.runtime import Runtime
from service.spec.notebook import NETS, notebook_spec

WEB = Path(__file__).resolve().parents[2] / "web"
STATIC = "/static"
VENDOR = f"{STATIC}/vendor"


@cache
def _shell() -> str:
    # The version in asset URLs makes a browser fetch new modules after an upgrade.
    shell = (WEB / "templates" / "index.html").read_text(encoding="utf-8")
    return shell.replace("{{ version }}", __version__)


def page_config(settings: Settings, *, class_exists: bool = False) -> dict[str, object]:
    """What the page needs before its first request: whether to ask for the token (API_TOKEN,
    or people added), and the notebook's nets to start a new experiment from (one definition:
    service/spec/notebook.py)."""
    closed = bool(settings.api_token) or class_exists
    return {
        "token_required": closed,
        "class": class_exists,
        "protect_reads": closed and (settings.protect_reads or settings.class_reads == "own"),
        "presets": {net: notebook_spec(net) for net in NETS},
        "limits": {"max_epochs": settings.max_epochs, "max_layers": settings.max_layers},
    }


async def lab_page(request: Request) -> HTMLResponse:
    runtime: Runtime = request.app.state.runtime
    if not runtime.class_exists:
        runtime.class_exists = await run_in_threadpool(_anyone, runtime)
    config = json.dumps(page_config(runtime.settings, class_exists=runtime.class_exists))
    # "</" cannot end the script element that holds the JSON.
    return HTMLResponse(
        _shell().replace("{{ config }}", config.replace("</", "<\\/")),
        headers={"Content-Security-Policy": PAGE},
    )


def _anyone(runtime: Runtime) -> bool:
    with runtime.db.scope() as session:
        return people.anyone(session)


def mount(app: FastAPI) -> None:
    """Add the page and its files to `app`.

    Plain Starlette routes, not API routes: they are pages, open to anyone (the page itself
    asks for the token), and not part of the API's schema.
    """
    app.add_route("/", lab_page, include_in_schema=False)
    app.mount(STATIC, StaticFiles(directory=WEB / "static"), name="static")
