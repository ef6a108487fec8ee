"""SQL functions SQLite and PostgreSQL spell differently, as one expression for both."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

UNIX_EPOCH_JULIAN_DAY = 2440587.5


class epoch_seconds(FunctionElement[float]):
    """A timestamp column as seconds since 1970, a float to the microsecond. SQLite holds the
    text SQLAlchemy writes (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC) and its julianday() keeps
    milliseconds only, so there the whole seconds (julianday's days of the text without its
    fraction, rounded: exact) and the fraction are added (strftime('%s') is as exact and takes
    twice as long); PostgreSQL extracts the epoch."""

    type = Float()
    inherit_cache = True
    name = "epoch_seconds"

    def __init__(self, stamp: ColumnElement[Any] | InstrumentedAttribute[Any]) -> None:
        super().__init__(stamp)


@compiles(epoch_seconds, "sqlite")
def _sqlite_epoch_seconds(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    stamp = compiler.process(element.clauses, **kw)
    whole = f"round((julianday(substr({stamp}, 1, 19)) - {UNIX_EPOCH_JULIAN_DAY}) * 86400.0)"
    return f"({whole} + CAST(substr({stamp}, 20) AS REAL))"


@compiles(epoch_seconds)
def _epoch_seconds(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    stamp = compiler.process(element.clauses, **kw)
    return f"CAST(EXTRACT(EPOCH FROM {stamp}) AS DOUBLE PRECISION)"


class greatest(FunctionElement[float]):
    """The largest of its (not NULL) arguments: SQLite's many-argument max(), PostgreSQL's
    greatest(). Each argument is written once, where a CASE would repeat them."""

    type = Float()
    inherit_cache = True
    name = "greatest"


@compiles(greatest, "sqlite")
def _sqlite_greatest(element: greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


@compiles(greatest)
def _greatest(element: greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"greatest({compiler.process(element.clauses, **kw)})"
