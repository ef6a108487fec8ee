"""What a browser is told and refused: the security headers on every kind of answer, the
docs' script hashes, and the Host check against DNS rebinding."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from tests.helpers import submit


@pytest.fixture
def app_with(
    settings: Settings, make_settings: Callable[..., Settings]
) -> Iterator[Callable[..., Callable[[str], TestClient]]]:
    """`app_with(**overrides)(base_url)`: a client of one app, sending that URL's Host."""
    clients: list[TestClient] = []

    def start(**overrides: Any) -> Callable[[str], TestClient]:
        app = create_app(make_settings(**overrides))
        entered = TestClient(app)
        entered.__enter__()
        clients.append(entered)
        return lambda base_url: TestClient(app, base_url=base_url)

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def _assert_defended(response: Any, policy_starts: str) -> None:
    asked = response.request.url.path
    assert response.headers["x-content-type-options"] == "nosniff", asked
    assert response.headers["x-frame-options"] == "DENY", asked
    policy = response.headers["content-security-policy"]
    assert policy.startswith(policy_starts), (asked, policy)
    assert "frame-ancestors 'none'" in policy, asked
    assert "unsafe-eval" not in policy, asked


NOTHING = "default-src 'none';"


def test_json_svg_errors_and_files_run_nothing_and_frame_nowhere(client: TestClient) -> None:
    experiment_id = submit(client)["id"]
    for path in (
        "/experiments",
        f"/experiments/{experiment_id}",
        f"/experiments/{experiment_id}/history.svg",
        "/experiments/nobody",  # a 404
        "/openapi.json",
        "/static/js/app.js",
        "/health",
    ):
        response = client.get(path)
        _assert_defended(response, NOTHING)
        assert response.headers["content-security-policy"].count("default-src") == 1
    refused = client.post("/experiments", json={"layers": "nope"})
    assert refused.status_code == 422
    _assert_defended(refused, NOTHING)


def test_the_page_may_run_only_its_own_modules(client: TestClient) -> None:
    response = client.get("/")
    _assert_defended(response, NOTHING)
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy
    assert "connect-src 'self'" in policy


@pytest.mark.parametrize("path", ["/docs", "/docs/oauth2-redirect", "/redoc"])
def test_the_docs_may_run_their_inline_scripts_by_hash_only(client: TestClient, path: str) -> None:
    response = client.get(path)
    _assert_defended(response, NOTHING)
    script_src = re.search(r"script-src ([^;]*)", response.headers["content-security-policy"])
    assert script_src is not None
    allowed = set(script_src.group(1).split())
    inline = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    hashes = {
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in inline
    }
    assert allowed == {"'self'", *hashes}


LOOPBACK = [
    "http://localhost:8000",
    "http://127.0.0.1:8000",
    "http://[::1]:8000",
    "http://localhost",
]


def test_a_loopback_lab_answers_only_loopback_names(
    app_with: Callable[..., Callable[[str], TestClient]],
) -> None:
    at = app_with(host="127.0.0.1", allowed_hosts="")
    for url in LOOPBACK:
        assert at(url).get("/health").status_code == 200, url
    for url in ("http://evil.example", "http://evil.example:8000", "http://10.0.0.1:8000"):
        response = at(url).post("/experiments", json={})
        assert response.status_code == 400, url
        body = response.json()
        assert body["error"] == "host_not_allowed"
        assert "ALLOWED_HOSTS" in body["detail"]
        _assert_defended(response, NOTHING)


def test_allowed_hosts_adds_names(app_with: Callable[..., Callable[[str], TestClient]]) -> None:
    at = app_with(host="127.0.0.1", allowed_hosts="lab.example, Lab.Internal")
    for url in ("http://lab.example:8000", "http://lab.internal", *LOOPBACK):
        assert at(url).get("/health").status_code == 200, url
    assert at("http://evil.example").get("/health").status_code == 400


def test_a_lab_listening_elsewhere_answers_any_name_unless_told(
    app_with: Callable[..., Callable[[str], TestClient]],
) -> None:
    open_ = app_with(host="0.0.0.0", allowed_hosts="")
    assert open_("http://lab.example").get("/health").status_code == 200
    named = app_with(host="0.0.0.0", allowed_hosts="lab.example")
    assert named("http://lab.example").get("/health").status_code == 200
    assert named("http://localhost:8000").get("/health").status_code == 200
    assert named("http://evil.example").get("/health").status_code == 400
    anything = app_with(host="127.0.0.1", allowed_hosts="*")
    assert anything("http://evil.example").get("/health").status_code == 200
