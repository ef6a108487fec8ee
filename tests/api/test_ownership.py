"""Ownership: every write route against every kind of caller (the owner, another student, a
teacher, a revoked person, anyone while the service is open).

The matrix is checked against the app's own routes: a write route added later fails
`test_every_write_route_is_in_the_matrix` until its row is written here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.export import notebook
from tests.factories import tiny_spec
from tests.helpers import (
    ADMIN,
    Class,
    notebook_of,
    publish,
    save_untrained_model,
    submit,
    unsaved_experiment,
    writes,
)
from tests.helpers import class_bearer as bearer

Kind = Literal["create", "owned", "teacher"]
Request = tuple[str, dict[str, Any]]  # path, request keywords


def _base() -> dict[str, Any]:
    base = tiny_spec()
    del base["name"]
    return base


def _study(school: Class, headers: dict[str, str]) -> str:
    response = school.client.post(
        "/studies", json={"base": _base(), "space": {"fit.seed": [1, 2]}}, headers=headers
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _cancelled(school: Class, headers: dict[str, str]) -> str:
    made = submit(school.client, headers=headers)["id"]
    assert school.client.post(f"/experiments/{made}/cancel", headers=headers).status_code == 202
    return str(made)


def _cancelled_study(school: Class, headers: dict[str, str]) -> str:
    study = _study(school, headers)
    assert school.client.post(f"/studies/{study}/cancel", headers=headers).status_code == 202
    return study


@dataclass(frozen=True)
class Route:
    kind: Kind
    """create: anyone signed in; owned: the owner of what the path names, or a teacher;
    teacher: teachers only."""
    make: Callable[[Class, dict[str, str], Path], Request]
    """Builds what the call needs, owned by the caller whose headers it is given."""


def _challenge(school: Class) -> str:
    """A challenge the teacher (API_TOKEN) opens: a teacher's to set up and close."""
    response = school.client.post("/challenges", json={"name": "c"}, headers=bearer(ADMIN))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _code() -> str:
    """tiny_spec's model, compile and fit cells, as a learner pastes them."""
    cells = notebook.cells(unsaved_experiment(tiny_spec()))
    return "\n\n".join(cell.code for cell in cells[3:6])


def _alias(school: Class, headers: dict[str, str], tmp: Path) -> str:
    model = publish(school.client, save_untrained_model(tmp / "m.keras"), headers=headers)
    response = school.client.put("/models/mine", json={"experiment_id": model}, headers=headers)
    assert response.status_code == 200, response.text
    return model


MATRIX: dict[tuple[str, str], Route] = {
    ("POST", "/experiments"): Route(
        "create", lambda s, h, t: ("/experiments", {"json": tiny_spec()})
    ),
    ("POST", "/experiments/validate"): Route(
        "create", lambda s, h, t: ("/experiments/validate", {"json": tiny_spec()})
    ),
    ("POST", "/experiments/{id}/rerun"): Route(
        "create", lambda s, h, t: (f"/experiments/{submit(s.client, headers=h)['id']}/rerun", {})
    ),
    ("POST", "/experiments/{id}/cancel"): Route(
        "owned", lambda s, h, t: (f"/experiments/{submit(s.client, headers=h)['id']}/cancel", {})
    ),
    ("DELETE", "/experiments/{id}"): Route(
        "owned", lambda s, h, t: (f"/experiments/{_cancelled(s, h)}", {})
    ),
    ("PUT", "/models/{id}"): Route(
        "owned", lambda s, h, t: ("/models/mine", {"json": {"experiment_id": _alias(s, h, t)}})
    ),
    ("DELETE", "/models/{id}"): Route(
        "owned", lambda s, h, t: (_alias(s, h, t) and "/models/mine", {})
    ),
    ("POST", "/studies"): Route(
        "create",
        lambda s, h, t: (
            "/studies",
            {"json": {"base": _base(), "space": {"fit.seed": [1]}}},
        ),
    ),
    ("POST", "/studies/{id}/cancel"): Route(
        "owned", lambda s, h, t: (f"/studies/{_study(s, h)}/cancel", {})
    ),
    ("DELETE", "/studies/{id}"): Route(
        "owned", lambda s, h, t: (f"/studies/{_cancelled_study(s, h)}", {})
    ),
    ("POST", "/people"): Route(
        "teacher", lambda s, h, t: ("/people", {"json": {"name": "newbie"}})
    ),
    ("POST", "/people/upload"): Route(
        "teacher",
        lambda s, h, t: ("/people/upload", {"files": {"file": ("c.csv", b"name\nnewbie\n")}}),
    ),
    ("POST", "/people/{id}/token"): Route(
        "teacher", lambda s, h, t: (f"/people/{s.ids['bob']}/token", {})
    ),
    ("POST", "/experiments/from-code"): Route(
        "create", lambda s, h, t: ("/experiments/from-code", {"json": {"code": _code()}})
    ),
    ("POST", "/notebooks"): Route(
        "create", lambda s, h, t: ("/notebooks", {"json": notebook_of(tiny_spec())})
    ),
    ("POST", "/challenges"): Route(
        "teacher", lambda s, h, t: ("/challenges", {"json": {"name": "n"}})
    ),
    ("POST", "/challenges/{id}/entries"): Route(
        "create", lambda s, h, t: (f"/challenges/{_challenge(s)}/entries", {"json": tiny_spec()})
    ),
    ("POST", "/challenges/{id}/entries/validate"): Route(
        "create",
        lambda s, h, t: (f"/challenges/{_challenge(s)}/entries/validate", {"json": tiny_spec()}),
    ),
    ("POST", "/challenges/{id}/close"): Route(
        "teacher", lambda s, h, t: (f"/challenges/{_challenge(s)}/close", {})
    ),
    ("DELETE", "/people/{id}"): Route("teacher", lambda s, h, t: (f"/people/{s.ids['bob']}", {})),
}


def _template(path: str) -> str:
    return "/".join("{id}" if part == "dummy" else part for part in path.split("/"))


def test_every_write_route_is_in_the_matrix() -> None:
    app = create_app()
    assert isinstance(app, FastAPI)
    assert {(method, _template(path)) for method, path in writes(app)} == set(MATRIX)


ROUTES = sorted(MATRIX)
IDS = [f"{method} {path}" for method, path in ROUTES]


@pytest.fixture
def school(app_with: Callable[..., TestClient]) -> Class:
    school = Class(app_with(api_token=ADMIN))
    school.add("alice")
    school.add("bob")
    school.add("tess", "teacher")
    school.add("gone")
    gone = school.client.delete(f"/people/{school.ids['gone']}", headers=bearer(ADMIN))
    assert gone.status_code == 204
    return school


def _succeeded(response: Any) -> bool:
    return 200 <= response.status_code < 300


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=IDS)
def test_a_student_may_do_what_the_route_allows_them(
    school: Class, tmp_path: Path, method: str, path: str
) -> None:
    route = MATRIX[(method, path)]
    target, keywords = route.make(school, school.as_("alice"), tmp_path)
    response = school.client.request(method, target, headers=school.as_("alice"), **keywords)
    if route.kind == "teacher":
        assert response.status_code == 403, response.text
        assert "only a teacher" in response.json()["detail"]
    else:
        assert _succeeded(response), response.text


@pytest.mark.parametrize(
    ("method", "path"), [r for r in ROUTES if MATRIX[r].kind == "owned"], ids=str
)
def test_another_student_gets_403_naming_the_owner(
    school: Class, tmp_path: Path, method: str, path: str
) -> None:
    target, keywords = MATRIX[(method, path)].make(school, school.as_("alice"), tmp_path)
    response = school.client.request(method, target, headers=school.as_("bob"), **keywords)
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"
    assert "belongs to alice" in response.json()["detail"]
    # The same call by the owner goes through: nothing was changed by the refusal.
    again = school.client.request(method, target, headers=school.as_("alice"), **keywords)
    assert _succeeded(again), again.text


@pytest.mark.parametrize("teacher", ["admin", "tess"])
@pytest.mark.parametrize(("method", "path"), ROUTES, ids=IDS)
def test_a_teacher_may_do_everything(
    school: Class, tmp_path: Path, method: str, path: str, teacher: str
) -> None:
    target, keywords = MATRIX[(method, path)].make(school, school.as_("alice"), tmp_path)
    response = school.client.request(method, target, headers=school.as_(teacher), **keywords)
    assert _succeeded(response), response.text


@pytest.mark.parametrize("who", ["revoked", "anonymous", "wrong"])
@pytest.mark.parametrize(("method", "path"), ROUTES, ids=IDS)
def test_revoked_anonymous_and_wrong_tokens_get_401(
    school: Class, tmp_path: Path, method: str, path: str, who: str
) -> None:
    target, keywords = MATRIX[(method, path)].make(school, school.as_("alice"), tmp_path)
    headers = {
        "revoked": school.as_("gone"),
        "anonymous": {},
        "wrong": bearer("guess"),
    }[who]
    response = school.client.request(method, target, headers=headers, **keywords)
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"


# A person to rotate or revoke would close the service: those two are a class's routes only.
OPEN_ROUTES = [route for route in ROUTES if "/people/{id}" not in route[1]]


@pytest.mark.parametrize(("method", "path"), OPEN_ROUTES, ids=[" ".join(r) for r in OPEN_ROUTES])
def test_anyone_may_do_everything_while_the_service_is_open(
    client: TestClient, tmp_path: Path, method: str, path: str
) -> None:
    """No API_TOKEN and nobody added: the laptop case, as it was before people existed."""
    open_class = Class(client)
    target, keywords = MATRIX[(method, path)].make(open_class, {}, tmp_path)
    response = client.request(method, target, **keywords)
    assert _succeeded(response), response.text
