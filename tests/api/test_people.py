"""People of a class: adding them (one, a list, a CSV), tokens shown once and stored hashed,
rotation, revocation that keeps their work, and the open service that needs none of it."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.db.models import PersonRow
from tests.factories import tiny_spec
from tests.helpers import ADMIN, Class, runtime_of, submit
from tests.helpers import class_bearer as bearer


@pytest.fixture
def school(app_with: Callable[..., TestClient]) -> Class:
    return Class(app_with(api_token=ADMIN))


def test_adding_a_person_answers_their_token_once_and_keeps_only_its_hash(school: Class) -> None:
    token = school.add("alice")
    assert len(token) >= 40  # 32 random bytes, URL-safe
    with runtime_of(school.client).db.scope() as session:
        row = session.scalar(select(PersonRow).where(PersonRow.name == "alice"))
        assert row is not None
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in {row.id, row.name, row.token_hash}
    listed = school.client.get("/people", headers=bearer(ADMIN)).json()
    assert listed["count"] == 1
    assert "token" not in listed["data"][0]
    assert listed["data"][0]["role"] == "student"


def test_a_person_token_opens_writes_and_owns_what_it_makes(school: Class) -> None:
    school.add("alice")
    created = submit(school.client, headers=school.as_("alice"))
    assert created["owner"] == "alice"
    read = school.client.get(f"/experiments/{created['id']}").json()
    assert read["owner"] == "alice"


def test_a_whole_class_at_once_and_its_sheet(school: Class) -> None:
    response = school.client.post(
        "/people",
        json={"people": ["ann", "ben", {"name": "tess", "role": "teacher"}]},
        headers=bearer(ADMIN),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["count"] == 3
    assert [(p["name"], p["role"]) for p in body["data"]] == [
        ("ann", "student"),
        ("ben", "student"),
        ("tess", "teacher"),
    ]
    assert len({p["token"] for p in body["data"]}) == 3
    tess = body["data"][2]["token"]
    # A teacher added this way adds people too.
    sheet = school.client.post(
        "/people?format=csv", json={"people": ["cy", "dee"]}, headers=bearer(tess)
    )
    assert sheet.status_code == 201, sheet.text
    assert sheet.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(sheet.text)))
    assert [row["name"] for row in rows] == ["cy", "dee"]
    assert all(len(row["token"]) >= 40 for row in rows)
    assert school.client.post("/experiments", json=tiny_spec(), headers=bearer(rows[0]["token"]))


def test_a_csv_upload_adds_the_class(school: Class) -> None:
    upload = "name,role\nann,\nben,student\ntess,teacher\n"
    response = school.client.post(
        "/people/upload",
        files={"file": ("class.csv", upload.encode(), "text/csv")},
        headers=bearer(ADMIN),
    )
    assert response.status_code == 201, response.text
    assert [(p["name"], p["role"]) for p in response.json()["data"]] == [
        ("ann", "student"),
        ("ben", "student"),
        ("tess", "teacher"),
    ]


@pytest.mark.parametrize(
    ("upload", "says"),
    [
        ("name,role\nann,wizard\n", "CSV person 1 ('ann', 'wizard')"),
        ("name\n\n", "no names"),
        ("name\nann\nann\n", "'ann' appear more than once"),
        ("name\nme\n", "reserved"),
    ],
)
def test_a_bad_csv_says_what_to_change(school: Class, upload: str, says: str) -> None:
    response = school.client.post(
        "/people/upload",
        files={"file": ("class.csv", upload.encode(), "text/csv")},
        headers=bearer(ADMIN),
    )
    assert response.status_code == 422, response.text
    assert says in response.json()["detail"]
    assert school.client.get("/people", headers=bearer(ADMIN)).json()["count"] == 0


def test_a_taken_name_is_a_409_and_adds_nobody(school: Class) -> None:
    school.add("alice")
    response = school.client.post(
        "/people", json={"people": ["bob", "alice"]}, headers=bearer(ADMIN)
    )
    assert response.status_code == 409, response.text
    assert "'alice'" in response.json()["detail"]
    assert school.client.get("/people", headers=bearer(ADMIN)).json()["count"] == 1


def test_rotation_refuses_the_old_token_at_once(school: Class) -> None:
    old = school.add("alice")
    rotated = school.client.post(f"/people/{school.ids['alice']}/token", headers=bearer(ADMIN))
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["token"]
    assert new != old
    refused = school.client.post("/experiments", json=tiny_spec(), headers=bearer(old))
    assert refused.status_code == 401
    assert "the API token is wrong" in refused.json()["detail"]
    submit(school.client, headers=bearer(new))


def test_revoking_keeps_the_work_and_refuses_the_token(school: Class) -> None:
    token = school.add("alice")
    made = submit(school.client, headers=bearer(token))
    gone = school.client.delete(f"/people/{school.ids['alice']}", headers=bearer(ADMIN))
    assert gone.status_code == 204, gone.text
    assert (
        school.client.post("/experiments", json=tiny_spec(), headers=bearer(token)).status_code
        == 401
    )
    kept = school.client.get(f"/experiments/{made['id']}").json()
    assert kept["owner"] == "alice"
    listed = school.client.get("/people", headers=bearer(ADMIN)).json()["data"]
    assert listed[0]["revoked"] is True
    assert listed[0]["queued"] == 1


def test_people_counts_their_work(school: Class) -> None:
    school.add("alice")
    school.add("bob")
    first = submit(school.client, headers=school.as_("alice"))
    submit(school.client, headers=school.as_("alice"))
    cancelled = school.client.post(
        f"/experiments/{first['id']}/cancel", headers=school.as_("alice")
    )
    assert cancelled.status_code == 202
    rows = {
        p["name"]: p for p in school.client.get("/people", headers=bearer(ADMIN)).json()["data"]
    }
    assert (rows["alice"]["queued"], rows["alice"]["running"], rows["alice"]["done"]) == (1, 0, 1)
    assert (rows["bob"]["queued"], rows["bob"]["done"]) == (0, 0)
    assert rows["alice"]["last_active"] is not None
    assert rows["bob"]["last_active"] is None


@pytest.mark.parametrize("route", ["list", "add", "rotate", "revoke"])
def test_a_student_may_not_manage_people(school: Class, route: str) -> None:
    school.add("alice")
    school.add("bob")
    calls: dict[str, tuple[str, str, Any]] = {
        "list": ("GET", "/people", None),
        "add": ("POST", "/people", {"name": "eve"}),
        "rotate": ("POST", f"/people/{school.ids['bob']}/token", None),
        "revoke": ("DELETE", f"/people/{school.ids['bob']}", None),
    }
    method, path, body = calls[route]
    response = school.client.request(method, path, json=body, headers=school.as_("alice"))
    assert response.status_code == 403, response.text
    assert "only a teacher" in response.json()["detail"]


def test_without_api_token_the_first_person_closes_the_open_service(client: TestClient) -> None:
    assert client.post("/experiments", json=tiny_spec()).status_code == 202  # open, as today
    added = client.post("/people", json={"name": "tess", "role": "teacher"})
    assert added.status_code == 201, added.text
    refused = client.post("/experiments", json=tiny_spec())
    assert refused.status_code == 401
    assert "needs an API token" in refused.json()["detail"]
    wrong = client.post("/experiments", json=tiny_spec(), headers=bearer("guess"))
    assert wrong.status_code == 401
    submit(client, headers=bearer(added.json()["token"]))


def test_people_are_named_in_the_log(school: Class, caplog: pytest.LogCaptureFixture) -> None:
    school.add("alice")
    with caplog.at_level(logging.INFO):
        made = submit(school.client, headers=school.as_("alice"))
        school.client.post(f"/experiments/{made['id']}/cancel", headers=school.as_("alice"))
        school.client.delete(f"/experiments/{made['id']}", headers=bearer(ADMIN))
    lines = [r.getMessage() for r in caplog.records if made["id"] in r.getMessage()]
    assert any("queued" in line and "by alice" in line for line in lines), lines
    assert any("cancel" in line and "by alice" in line for line in lines), lines
    assert any("deleted" in line and "by the teacher" in line for line in lines), lines


def test_a_csv_that_cannot_be_read_is_a_422(school: Class) -> None:
    response = school.client.post(
        "/people/upload",
        files={"file": ("class.csv", b'name\n"' + b"a" * 140_000 + b'"\n', "text/csv")},
        headers=bearer(ADMIN),
    )
    assert response.status_code == 422, response.text
    assert "the CSV cannot be read" in response.json()["detail"]
