"""The one error body every 4xx and 5xx answer carries."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorPublic(BaseModel):
    error: str = Field(description="machine-readable code, e.g. invalid_spec")
    detail: str = Field(description="what was wrong and what to change")
    details: Any = None


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations so that clients (and schemathesis) know every error's shape."""
    descriptions = {
        401: "Missing or wrong API token",
        403: "Not yours (the owner is named), a teacher's action, or sealed until a close",
        404: "Not found",
        409: "Conflicts with the current state",
        413: "Request too large",
        422: "Invalid request; `details` names each field",
        429: "Over a limit (queued, daily minutes, a challenge's entries, decoded pixels); "
        "says what to wait for",
        503: "A dependency is unavailable",
    }
    return {
        status: {"model": ErrorPublic, "description": descriptions[status]} for status in statuses
    }
