"""What reading code gives: the models read, what was skipped, and where (line, column, cell);
`CodeRefused` when the source says something the spec cannot hold."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Where:
    """A place in the source: 1-based line and column, and the notebook cell (1-based)."""

    line: int
    column: int
    cell: int | None = None

    def __str__(self) -> str:
        place = f"line {self.line}, column {self.column}"
        return f"cell {self.cell}, {place}" if self.cell is not None else place

    def as_dict(self) -> dict[str, int]:
        found = {"line": self.line, "column": self.column}
        return found if self.cell is None else {"cell": self.cell, **found}


class CodeRefused(ValueError):
    """The source says something the spec cannot hold; the message says what would work."""

    def __init__(self, where: Where, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.reason = message


@dataclass(frozen=True)
class Skipped:
    """A statement or argument read and left out, and why."""

    where: Where
    code: str
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.where.as_dict(), "code": self.code, "why": self.why}


@dataclass
class ReadModel:
    """One `Sequential` with what its `add`, `compile` and `fit` calls said.

    `places` maps a path in the spec (("layers", 2, "units")) to where the source wrote it,
    so that the spec's own refusals can name a line and column too.
    """

    variable: str
    where: Where
    name: str | None = None
    layers: list[dict[str, Any]] = field(default_factory=list)
    compile: dict[str, Any] | None = None
    fit: dict[str, Any] | None = None
    places: dict[tuple[str | int, ...], Where] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def spec(self) -> dict[str, Any]:
        """The spec as JSON (before the spec's own validation)."""
        spec: dict[str, Any] = {"layers": self.layers, "compile": self.compile or {}}
        if self.fit is not None:
            spec["fit"] = self.fit
        return spec

    def where_is(self, loc: Iterable[str | int]) -> Where:
        """The closest place the source wrote `loc` (or its nearest parent)."""
        path = tuple(loc)
        while path:
            if path in self.places:
                return self.places[path]
            path = path[:-1]
        return self.where


@dataclass
class Reading:
    models: list[ReadModel]
    skipped: list[Skipped]
