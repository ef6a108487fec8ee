"""API_TOKEN: writes need the bearer token, reads and predictions need it only with PROTECT_READS.

The route sweeps walk `app.routes`, so a route added later is held to the same rules without
anyone remembering to add it here.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.factories import tiny_spec
from tests.helpers import WRITE_METHODS, endpoints, submit, writes

TOKEN = "s3cret"
# Load balancers probe it without credentials, so it stays open whatever the settings say.
ALWAYS_OPEN = frozenset({"/health", "/v2/health/live", "/v2/health/ready"})
MISSING = "needs an API token"
WRONG = "the API token is wrong"
STARTUP_WARNING = "API_TOKEN is not set"


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call(
    client: TestClient, method: str, path: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A request whose body is not awaited when it is an event stream, which never ends."""
    with client.stream(method, path, headers=headers) as response:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
        return response


def reads(app: FastAPI) -> list[tuple[str, str]]:
    """GETs and predictions, /health aside."""
    return [
        (method, path)
        for method, path, prediction in endpoints(app)
        if (method not in WRITE_METHODS or prediction) and path not in ALWAYS_OPEN
    ]


@pytest.fixture
def locked(app_with: Callable[..., TestClient]) -> TestClient:
    return app_with(api_token=TOKEN)


@pytest.fixture
def sealed(app_with: Callable[..., TestClient]) -> TestClient:
    return app_with(api_token=TOKEN, protect_reads=True)


def assert_unauthorized(response: httpx.Response, says: str) -> None:
    asked = f"{response.request.method} {response.request.url.path}"
    assert response.status_code == 401, f"{asked}: {response.status_code} {response.text}"
    body = response.json()
    if response.request.url.path.startswith("/v2"):  # the protocol's body: the message alone
        message = body["error"]
    else:
        assert body["error"] == "unauthorized", asked
        message = body["detail"]
    assert response.headers["WWW-Authenticate"] == "Bearer", asked
    assert says in message, asked
    assert "Authorization: Bearer" in message, asked


WRITES = [
    ("POST", "/experiments", tiny_spec()),
    ("POST", "/experiments/{id}/cancel", None),
    ("DELETE", "/experiments/{id}", None),
]
BAD_CREDENTIALS = [
    pytest.param({}, MISSING, id="missing"),
    pytest.param({"Authorization": ""}, MISSING, id="empty"),
    pytest.param(bearer("wrong"), WRONG, id="wrong-token"),
    pytest.param(bearer(TOKEN + "x"), WRONG, id="token-plus-one"),
    pytest.param(bearer(TOKEN[:-1]), WRONG, id="token-prefix"),
    pytest.param({"Authorization": "Bearer "}, WRONG, id="bearer-without-token"),
    pytest.param({"Authorization": TOKEN}, WRONG, id="no-scheme"),
    pytest.param({"Authorization": f"Basic {TOKEN}"}, WRONG, id="basic-scheme"),
    pytest.param({"Authorization": f"Token {TOKEN}"}, WRONG, id="token-scheme"),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
@pytest.mark.parametrize(("headers", "says"), BAD_CREDENTIALS)
def test_write_without_the_right_token_is_401(
    locked: TestClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: dict[str, str],
    says: str,
) -> None:
    experiment_id = submit(locked, headers=bearer())["id"]
    response = locked.request(method, path.format(id=experiment_id), json=body, headers=headers)
    assert_unauthorized(response, says)
    after = locked.get(f"/experiments/{experiment_id}").json()
    assert after["status"] == "queued"  # nothing was cancelled or deleted
    assert locked.get("/experiments").json()["count"] == 1  # nothing was created


def test_writes_with_the_token_succeed(locked: TestClient) -> None:
    experiment_id = submit(locked, headers=bearer())["id"]
    cancelled = locked.post(f"/experiments/{experiment_id}/cancel", headers=bearer())
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    deleted = locked.delete(f"/experiments/{experiment_id}", headers=bearer())
    assert deleted.status_code == 204, deleted.text
    assert locked.get(f"/experiments/{experiment_id}").status_code == 404


def test_bearer_scheme_is_case_insensitive(locked: TestClient) -> None:
    response = locked.post(
        "/experiments", json=tiny_spec(), headers={"Authorization": "bearer " + TOKEN}
    )
    assert response.status_code == 202, response.text


def test_token_is_compared_in_constant_time(
    locked: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[Any, Any]] = []
    original = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert locked.post("/experiments/x/cancel", headers=bearer("nope")).status_code == 401
    assert compared == [(b"nope", TOKEN.encode())]


def test_every_write_route_needs_the_token(locked: TestClient) -> None:
    app = locked.app
    assert isinstance(app, FastAPI)
    found = writes(app)
    assert {("POST", "/experiments"), ("POST", "/experiments/dummy/cancel")} <= set(found)
    assert ("DELETE", "/experiments/dummy") in found
    for method, path in found:
        assert_unauthorized(locked.request(method, path), MISSING)
        assert_unauthorized(locked.request(method, path, headers=bearer("wrong")), WRONG)


def test_reads_and_predictions_stay_open_by_default(locked: TestClient) -> None:
    experiment_id = submit(locked, headers=bearer())["id"]
    assert locked.get("/experiments").json()["count"] == 1
    assert locked.get(f"/experiments/{experiment_id}").status_code == 200
    assert locked.get(f"/experiments/{experiment_id}/history").status_code == 200
    app = locked.app
    assert isinstance(app, FastAPI)
    for method, path in [*reads(app), ("GET", "/health")]:
        for headers in ({}, bearer("wrong")):
            response = call(locked, method, path, headers=headers)
            assert response.status_code != 401, f"{method} {path}: {response.text}"


def test_protect_reads_closes_reads_and_predictions(sealed: TestClient) -> None:
    experiment_id = submit(sealed, headers=bearer())["id"]
    app = sealed.app
    assert isinstance(app, FastAPI)
    found = reads(app)
    assert {("GET", "/experiments"), ("GET", "/experiments/dummy")} <= set(found)
    assert ("GET", "/experiments/dummy/history") in found
    for method, path in found:
        assert_unauthorized(sealed.request(method, path), MISSING)
        assert_unauthorized(sealed.request(method, path, headers=bearer("wrong")), WRONG)
        allowed = call(sealed, method, path, headers=bearer())
        assert allowed.status_code != 401, f"{method} {path}: {allowed.text}"
    for path in ("/experiments", f"/experiments/{experiment_id}"):
        assert sealed.get(path, headers=bearer()).status_code == 200


def test_health_stays_open_when_reads_are_protected(sealed: TestClient) -> None:
    response = sealed.get("/health")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"


DOCS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")


def test_protect_reads_closes_the_docs_and_the_schema(sealed: TestClient) -> None:
    for path in DOCS:
        assert_unauthorized(sealed.get(path), MISSING)
        assert_unauthorized(sealed.get(path, headers=bearer("wrong")), WRONG)
        assert sealed.get(path, headers=bearer()).status_code == 200, path
    assert "/experiments" in sealed.get("/openapi.json", headers=bearer()).json()["paths"]


def test_the_docs_stay_open_by_default(locked: TestClient) -> None:
    for path in DOCS:
        assert locked.get(path).status_code == 200, path
    assert "/openapi.json" in locked.get("/docs").text


def test_every_token_holder_shares_one_queue_cap(app_with: Callable[..., TestClient]) -> None:
    capped = app_with(api_token=TOKEN, max_queued_per_client=1)
    submit(capped, headers={**bearer(), "X-Client-Id": "alice"})
    rotated = capped.post(
        "/experiments", json=tiny_spec(), headers={**bearer(), "X-Client-Id": "bob"}
    )
    assert rotated.status_code == 429


def test_writes_stay_open_without_a_token(client: TestClient) -> None:
    created = client.post("/experiments", json=tiny_spec())
    assert created.status_code == 202, created.text
    experiment_id = created.json()["id"]
    assert client.post(f"/experiments/{experiment_id}/cancel").status_code == 202
    assert client.delete(f"/experiments/{experiment_id}").status_code == 204


@pytest.mark.parametrize("token", [None, ""], ids=["unset", "empty"])
def test_open_service_warns_at_startup(
    app_with: Callable[..., TestClient], caplog: pytest.LogCaptureFixture, token: str | None
) -> None:
    with caplog.at_level(logging.WARNING, logger="service.api.app"):
        app_with(api_token=token)
    warnings = [r for r in caplog.records if STARTUP_WARNING in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING


def test_locked_service_does_not_warn(
    app_with: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="service.api.app"):
        app_with(api_token=TOKEN)
    assert not [r for r in caplog.records if STARTUP_WARNING in r.getMessage()]


BROKEN_BODIES = [
    pytest.param(b"{", "application/json", id="json-that-does-not-parse"),
    pytest.param(b"\xff\xfe", "application/json", id="not-utf-8"),
    pytest.param(b"--x\r\nbroken", "multipart/form-data; boundary=x", id="broken-multipart"),
]


@pytest.mark.parametrize(("body", "content_type"), BROKEN_BODIES)
def test_the_token_is_checked_before_the_body_of_every_write(
    locked: TestClient, body: bytes, content_type: str
) -> None:
    app = locked.app
    assert isinstance(app, FastAPI)
    headers = {"Content-Type": content_type}
    for method, path in writes(app):
        assert_unauthorized(locked.request(method, path, content=body, headers=headers), MISSING)
        wrong = {**headers, **bearer("wrong")}
        assert_unauthorized(locked.request(method, path, content=body, headers=wrong), WRONG)


@pytest.mark.parametrize(("body", "content_type"), BROKEN_BODIES)
def test_the_token_is_checked_before_the_body_of_a_protected_read(
    sealed: TestClient, body: bytes, content_type: str
) -> None:
    app = sealed.app
    assert isinstance(app, FastAPI)
    posts = [(method, path) for method, path in reads(app) if method == "POST"]
    assert ("POST", "/predict") in posts
    for method, path in posts:
        response = sealed.request(
            method, path, content=body, headers={"Content-Type": content_type}
        )
        assert_unauthorized(response, MISSING)


def test_a_broken_body_with_the_token_is_still_a_422(locked: TestClient) -> None:
    response = locked.post(
        "/experiments", content=b"{", headers={**bearer(), "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
