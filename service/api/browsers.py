"""What keeps a browser from being turned against the lab: the Host check and the headers.

DNS rebinding: a page on `evil.example` that re-resolves its name to 127.0.0.1 reaches a lab
listening there with the browser's full say, reading and writing (no token is the default).
Its requests still carry `Host: evil.example`, so, as Jupyter does, a lab listening on a
loopback address answers only requests addressed to a loopback name, plus the names
`ALLOWED_HOSTS` lists; any other is a 400. A lab listening on another address (a server, the
compose file's 0.0.0.0) answers any name unless `ALLOWED_HOSTS` is set.

Every answer says `X-Content-Type-Options: nosniff` and may not be framed (`X-Frame-Options`,
CSP `frame-ancestors`); an answer that sets no Content-Security-Policy of its own (JSON, SVG,
files) gets the strictest one, which lets nothing run or load. The page and the docs set theirs.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.config import Settings
from service.errors import error_body

LOOPBACK_NAMES = frozenset({"localhost"})
NOTHING = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The lab page: its ES modules, stylesheet and pictures (fetched as blobs) from here, no inline
# script or style (it sets styles through the CSSOM), and it talks only to this origin.
PAGE = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_FIXED = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
)
_CSP = b"content-security-policy"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def docs_policy(html: bytes) -> str:
    """The policy of a docs page (Swagger UI, ReDoc): its inline start-up scripts by their
    hashes, and the inline styles and blob workers that those vendored bundles make."""
    scripts = " ".join(
        ["'self'"]
        + [
            "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
            for script in _INLINE_SCRIPT.findall(html)
        ]
    )
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _name(host_header: str) -> str:
    """The host name of a Host header: without its port, an IPv6 address without brackets."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")]
    return host_header.rpartition(":")[0] if ":" in host_header else host_header


class HostNames:
    """Which Host headers a lab listening on `settings.host` answers."""

    def __init__(self, settings: Settings) -> None:
        self.named = frozenset(
            name.strip().lower() for name in settings.allowed_hosts.split(",") if name.strip()
        )
        self.any = "*" in self.named or (not self.named and not _is_loopback(settings.host))

    def allow(self, host_header: str | None) -> bool:
        if self.any or host_header is None:  # no Host header: no browser sent it
            return True
        name = _name(host_header.strip().lower())
        return _is_loopback(name) or name in self.named


class BrowserDefences:
    """Refuses requests for host names the lab does not go by; adds the headers to answers."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.hosts = HostNames(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(name == _CSP for name, _ in headers):
                    headers.append((_CSP, NOTHING.encode()))
                message["headers"] = [*headers, *_FIXED]
            await send(message)

        host = next((value for name, value in scope["headers"] if name == b"host"), None)
        name = None if host is None else host.decode("latin-1")
        if self.hosts.allow(name):
            await self.app(scope, receive, send_with_headers)
            return
        detail = (
            f"this lab does not answer to the host name {name!r}: address it by a loopback "
            "name (localhost, 127.0.0.1, [::1]) or add that name to ALLOWED_HOSTS"
        )
        refusal = JSONResponse(error_body("host_not_allowed", detail), status_code=400)
        await refusal(scope, receive, send_with_headers)
