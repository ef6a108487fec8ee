"""A Jupyter notebook (nbformat 4 JSON) as the cells service/spec/from_code/ reads: code cells
in order, numbered as they appear, and the Markdown headings that describe them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
NOT_A_NOTEBOOK = (
    'send a Jupyter notebook: the JSON of an .ipynb file ({"cells": [...], "nbformat": 4, ...})'
)


class NotANotebook(ValueError):
    """The document is not nbformat 4 JSON; the message says what to send."""


@dataclass(frozen=True)
class NotebookCell:
    number: int
    kind: str
    source: str


@dataclass(frozen=True)
class Notebook:
    name: str
    cells: tuple[NotebookCell, ...]

    @property
    def code_cells(self) -> list[NotebookCell]:
        return [cell for cell in self.cells if cell.kind == "code"]

    def heading_before(self, number: int) -> str | None:
        """The last Markdown heading above cell `number` (the section the model is in)."""
        for cell in reversed(self.cells[: max(number - 1, 0)]):
            if cell.kind != "markdown":
                continue
            for line in reversed(cell.source.splitlines()):
                found = HEADING.match(line)
                if found:
                    return found.group(1)[:2000]
        return None


def _text(source: Any, where: str) -> str:
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    raise NotANotebook(f"{where}: a cell's source is a string or a list of strings")


def parse_notebook(document: Any, *, name: str) -> Notebook:
    """The notebook in `document` (its JSON text or already parsed)."""
    if isinstance(document, bytes | str):
        try:
            document = json.loads(document)
        except (ValueError, RecursionError) as error:
            raise NotANotebook(f"not JSON ({error}); {NOT_A_NOTEBOOK}") from None
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
        raise NotANotebook(NOT_A_NOTEBOOK)
    if document.get("nbformat", 4) != 4:
        raise NotANotebook(
            f"nbformat {document.get('nbformat')!r}: only nbformat 4 notebooks are read; save "
            "it with a current Jupyter"
        )
    cells = []
    for number, cell in enumerate(document["cells"], start=1):
        if not isinstance(cell, dict):
            raise NotANotebook(f"cell {number} is not an object; {NOT_A_NOTEBOOK}")
        kind = cell.get("cell_type")
        if kind not in ("code", "markdown", "raw"):
            raise NotANotebook(f"cell {number}: unknown cell_type {kind!r}")
        cells.append(NotebookCell(number, kind, _text(cell.get("source", ""), f"cell {number}")))
    return Notebook(name=name, cells=tuple(cells))


def notebook_name(filename: str | None, document: Any = None) -> str:
    """What a notebook is called: its file's name without .ipynb, else its title."""
    if filename:
        stem = filename.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".ipynb").strip()
        if stem:
            return stem
    if isinstance(document, dict):
        title = (document.get("metadata") or {}).get("title")
        if isinstance(title, str) and title.strip():
            return title.strip()
    return "notebook"
