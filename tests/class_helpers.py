"""A class on one server for tests: a teacher (API_TOKEN), people added through the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

ADMIN = "teacher-s3cret"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Class:
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, role: str = "student", *, admin: str = ADMIN) -> str:
        response = self.client.post(
            "/people", json={"name": name, "role": role}, headers=bearer(admin)
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        self.tokens[name] = body["token"]
        self.ids[name] = body["id"]
        return str(body["token"])

    def as_(self, name: str) -> dict[str, str]:
        return bearer(self.tokens[name] if name != "admin" else ADMIN)
