"""Request-validation errors in a person's words: what was wrong, where, and what to send.

FastAPI hands us pydantic's errors ("Value error, ...", "String should match pattern '^...$'",
"JSON decode error" at a character offset); a learner reads those as a stack trace. Each is
rewritten here once, for every route.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Characters shown on each side of the place a JSON body stops parsing.
JSON_CONTEXT = 20
# Pydantic's wording, by error type, for the errors people actually make; the rest keep theirs.
_PLAIN = {
    "missing": "is required",
    "model_attributes_type": "must be a JSON object ({...})",
    "dict_type": "must be a JSON object ({...})",
    "model_type": "must be a JSON object ({...})",
    "list_type": "must be a JSON list ([...])",
    "string_type": "must be a string",
    "int_parsing": "must be a whole number",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false",
    "string_pattern_mismatch": "is not in the expected form",
}
_PREFIXES = ("Value error, ", "Assertion failed, ")


def required_of(model: Any) -> str:
    """What a body of `model` must carry, in words: its BODY_REQUIRES when it says, else its
    required fields (`name, layers and compile`)."""
    said = getattr(model, "BODY_REQUIRES", None)
    if isinstance(said, str):
        return said
    fields = getattr(model, "model_fields", {})
    names = [name for name, field in fields.items() if field.is_required()]
    if not names:
        return "a JSON object"
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"a JSON object with {listed}"


def field_errors(
    errors: Sequence[Mapping[str, Any]],
    *,
    body: Any,
    content_type: str | None,
    body_model: Any = None,
) -> list[dict[str, Any]]:
    """One `{loc, msg, type}` per problem, each message written for a person; `body_model`,
    the route's body, says what an empty body should have carried."""
    if isinstance(body, bytes | bytearray) and body and _whole_body_refused(errors):
        # FastAPI keeps a body it was not told is JSON as bytes, so every field looks missing.
        sent = f"as {content_type!r}" if content_type else "without a Content-Type"
        message = (
            f"the body was sent {sent}; send JSON with the header "
            "'Content-Type: application/json' (curl: -H 'content-type: application/json')"
        )
        return [{"loc": ["body"], "msg": message, "type": "content_type"}]
    found = [_field_error(error, body) for error in errors]
    for problem in found:
        if problem["type"] == "missing" and problem["loc"] == ["body"]:
            problem["msg"] = f"the body is required: send {required_of(body_model)}"
    return found


def _whole_body_refused(errors: Sequence[Mapping[str, Any]]) -> bool:
    return any(tuple(error.get("loc", ())) == ("body",) for error in errors)


def _field_error(error: Mapping[str, Any], body: Any) -> dict[str, Any]:
    kind = str(error.get("type", ""))
    loc = list(error.get("loc", ()))
    if kind == "json_invalid":
        position = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
        reason = str((error.get("ctx") or {}).get("error", "not valid JSON"))
        return json_error(body, position, reason)
    message = str(error.get("msg", ""))
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    if kind in _PLAIN:
        message = _PLAIN[kind] + _given(kind, error.get("input"))
    return {"loc": loc, "msg": message, "type": kind}


def _given(kind: str, value: Any) -> str:
    if kind in {"missing", "string_pattern_mismatch"} or isinstance(value, dict | list):
        return ""
    return f", not {value!r}"


def json_error(document: Any, position: int, reason: str) -> dict[str, Any]:
    """Where a JSON body stops parsing: its line, its column and the text around it."""
    text = (
        document.decode("utf-8", "replace")
        if isinstance(document, bytes | bytearray)
        else str(document or "")
    )
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    before = text[max(0, position - JSON_CONTEXT) : position].split("\n")[-1]
    after = text[position : position + JSON_CONTEXT].split("\n")[0]
    message = (
        f"the body is not valid JSON: {reason.lower()} at line {line}, column {column}, "
        f"here: {before}>>>{after}"
    )
    return {
        "loc": ["body"],
        "msg": message,
        "type": "json_invalid",
        "line": line,
        "column": column,
    }


def summary(details: list[dict[str, Any]], *, shown: int = 5) -> str:
    """The `detail` line: each problem once, prefixed by its place unless it names it itself."""
    parts = []
    for item in details[:shown]:
        where = _place(item["loc"])
        message = item["msg"]
        if not where or message.startswith(where.split(".")[-1].split("[")[0]):
            parts.append(message)
        elif message.startswith(("is ", "must ")):
            parts.append(f"{where} {message}")
        else:
            parts.append(f"{where}: {message}")
    more = f" (and {len(details) - shown} more)" if len(details) > shown else ""
    return "; ".join(parts) + more


def _place(loc: list[Any]) -> str:
    """`fit.epochs`, `query.limit`: the field, as the client's request nests it."""
    return ".".join(str(part) for part in loc if part != "body")
