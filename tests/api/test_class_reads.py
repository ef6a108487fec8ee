"""Whose work a list shows (?owner=me, ?owner=<name>), and CLASS_READS=own, which keeps each
student to their own work (an exam) while a teacher still reads everyone's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.factories import tiny_spec
from tests.helpers import ADMIN, Class, class_bearer, submit


def _school(app_with: Callable[..., TestClient], **settings: Any) -> Class:
    school = Class(app_with(api_token=ADMIN, **settings))
    for name in ("alice", "bob"):
        school.add(name)
    school.add("tess", "teacher")
    return school


def _names(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(item["name"] for item in response.json()["data"])


def test_owner_filters_the_lists(app_with: Callable[..., TestClient]) -> None:
    school = _school(app_with)
    submit(school.client, {**tiny_spec(), "name": "a1"}, headers=school.as_("alice"))
    submit(school.client, {**tiny_spec(), "name": "b1"}, headers=school.as_("bob"))
    submit(school.client, {**tiny_spec(), "name": "t1"}, headers=class_bearer(ADMIN))
    client = school.client
    assert _names(client.get("/experiments")) == ["a1", "b1", "t1"]
    assert _names(client.get("/experiments?owner=me", headers=school.as_("alice"))) == ["a1"]
    assert _names(client.get("/experiments?owner=me", headers=class_bearer(ADMIN))) == ["t1"]
    assert _names(client.get("/experiments?owner=bob")) == ["b1"]
    assert _names(client.get("/experiments?owner=nobody-here")) == []
    base = tiny_spec()
    del base["name"]
    study = client.post(
        "/studies",
        json={"name": "bs", "base": base, "space": {"fit.seed": [1]}},
        headers=school.as_("bob"),
    )
    assert study.status_code == 202, study.text
    assert study.json()["owner"] == "bob"
    assert _names(client.get("/studies?owner=bob")) == ["bs"]
    assert _names(client.get("/studies?owner=me", headers=school.as_("alice"))) == []


def test_class_reads_own_keeps_a_student_to_their_own_work(
    app_with: Callable[..., TestClient],
) -> None:
    school = _school(app_with, class_reads="own")
    client = school.client
    mine = submit(client, {**tiny_spec(), "name": "a1"}, headers=school.as_("alice"))["id"]
    theirs = submit(client, {**tiny_spec(), "name": "b1"}, headers=school.as_("bob"))["id"]
    alice = school.as_("alice")
    assert _names(client.get("/experiments", headers=alice)) == ["a1"]
    assert _names(client.get("/experiments?owner=bob", headers=alice)) == ["a1"]
    assert client.get(f"/experiments/{mine}", headers=alice).status_code == 200
    for path in (f"/experiments/{theirs}", f"/experiments/{theirs}/history"):
        refused = client.get(path, headers=alice)
        assert refused.status_code == 403, refused.text
        assert "belongs to bob" in refused.json()["detail"]
        assert "CLASS_READS=own" in refused.json()["detail"]
    assert client.get(f"/experiments/{theirs}").status_code == 401  # a token is needed
    assert _names(client.get("/experiments", headers=school.as_("tess"))) == ["a1", "b1"]
    assert client.get(f"/experiments/{theirs}", headers=school.as_("tess")).status_code == 200
