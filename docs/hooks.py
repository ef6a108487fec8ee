"""MkDocs hooks: the reference pages that are generated from the code at build time.

- reference/routes.md: every route of `create_app().openapi()`, grouped by tag.
- reference/settings.md: after the hand-written table, every field of `Settings` with its
  variable, type, default and bounds, so a new setting shows up without anyone writing it.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

ROUTES_PAGE = "reference/routes.md"
SETTINGS_PAGE = "reference/settings.md"
METHODS = ("get", "put", "post", "patch", "delete", "head", "options")


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri == ROUTES_PAGE:
        return markdown + "\n" + routes_markdown(openapi())
    if page.file.src_uri == SETTINGS_PAGE:
        return markdown + "\n" + settings_markdown()
    return markdown


def openapi() -> dict[str, Any]:
    """The app's OpenAPI document, built on throwaway paths (building the app touches none)."""
    from service.api.app import create_app
    from service.config import Settings

    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(
            database_url=f"sqlite:///{scratch}/docs.db",
            queue_url=f"sqlite:///{scratch}/queue.db",
            models_dir=os.path.join(scratch, "models"),
            work_dir=os.path.join(scratch, "work"),
        )
        return create_app(settings, migrate=False).openapi()


def _text(text: str) -> str:
    """Plain text into Markdown: `<API_TOKEN>` is not an HTML tag."""
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _cell(text: str) -> str:
    return _text(" ".join(text.split())).replace("|", "\\|")


def _schema_name(schema: dict[str, Any] | None) -> str:
    if not schema:
        return ""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"array of {_schema_name(schema.get('items')) or 'items'}"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(filter(None, (_schema_name(s) for s in schema[key])))
    return str(schema.get("type", ""))


def routes_markdown(doc: dict[str, Any]) -> str:
    by_tag: dict[str, list[str]] = {}
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            lines = [f"### `{method.upper()} {path}`", ""]
            if op.get("summary"):
                lines += [f"**{op['summary']}**", ""]
            if op.get("description"):
                lines += [_text(op["description"].strip()), ""]
            params = op.get("parameters", [])
            if params:
                lines += [
                    "| parameter | in | type | required | meaning |",
                    "| --- | --- | --- | --- | --- |",
                ]
                for p in params:
                    lines.append(
                        f"| `{p['name']}` | {p['in']} | {_cell(_schema_name(p.get('schema')))} "
                        f"| {'yes' if p.get('required') else 'no'} "
                        f"| {_cell(p.get('description', ''))} |"
                    )
                lines.append("")
            body = op.get("requestBody", {}).get("content", {})
            if body:
                kinds = ", ".join(
                    f"`{kind}` ({_schema_name(c.get('schema')) or 'any'})"
                    for kind, c in body.items()
                )
                lines += [f"Body: {kinds}", ""]
            responses = op.get("responses", {})
            if responses:
                lines += ["| status | meaning |", "| --- | --- |"]
                for status, response in responses.items():
                    lines.append(f"| {status} | {_cell(response.get('description', ''))} |")
                lines.append("")
            tag = (op.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append("\n".join(lines))
    out = [
        f"Generated from the OpenAPI document of version {doc['info']['version']} "
        "(`create_app().openapi()`) when the site is built. A running service serves the same "
        "document at `/openapi.json`, and tries each route out at `/docs`.",
        "",
    ]
    for tag, ops in by_tag.items():
        out += [f"## {tag}", "", *ops]
    return "\n".join(out) + "\n"


def settings_markdown() -> str:
    from pydantic_core import PydanticUndefined

    from service.config import Settings

    rows = [
        "## Every setting, from the code",
        "",
        "Generated from `service.config.Settings` when the site is built: each variable "
        "with its type, default and bounds.",
        "",
        "| variable | type | default | bounds | note |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if default is PydanticUndefined:
            shown = ""
        elif isinstance(default, (dict, list)):
            shown = f"`{json.dumps(default)}`"
        else:
            shown = "unset" if default is None else f"`{default}`"
        bounds = ", ".join(
            f"{op} {getattr(m, attr)}"
            for m in field.metadata
            for op, attr in ((">", "gt"), ("≥", "ge"), ("<", "lt"), ("≤", "le"))
            if getattr(m, attr, None) is not None
        )
        kind = getattr(field.annotation, "__name__", None) or str(field.annotation)
        rows.append(
            f"| `{name.upper()}` | {_cell(kind.replace('typing.', ''))} | {shown} | {bounds} "
            f"| {_cell(field.description or '')} |"
        )
    return "\n".join(rows) + "\n"
