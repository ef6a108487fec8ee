"""What the OpenAPI schema must say that pydantic's generated schema does not: rules across
fields, which the models check in a validator, stated in JSON Schema so that a client built
from the schema is never refused for a body the schema allows."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic.config import JsonDict, JsonValue

NULL: JsonDict = {"type": "null"}
NOT_NULL: JsonDict = {"not": NULL}


def exactly_one_of(
    fields: Sequence[str], *, with_each: dict[str, JsonDict] | None = None
) -> list[JsonValue]:
    """`oneOf` branches: one of `fields` given and not null, the others absent or null.

    `with_each` adds, per field, what else its branch requires (a preset takes no space).
    """
    branches: list[JsonValue] = []
    for field in fields:
        extra = (with_each or {}).get(field, {})
        properties: JsonDict = {other: NULL for other in fields if other != field}
        properties[field] = NOT_NULL
        properties.update(extra.get("properties", {}))  # type: ignore[arg-type]
        required: list[JsonValue] = [field, *extra.get("required", [])]  # type: ignore[misc]
        branches.append({"required": required, "properties": properties})
    return branches
