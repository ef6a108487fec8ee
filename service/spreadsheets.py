"""CSV the way spreadsheets open it safely: text that would start a formula is kept as text.

A cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula (`=HYPERLINK(...)`, `=cmd|' /C calc'!A0`), so a name
or tag a user typed could run in the spreadsheet of whoever downloads the table. OWASP's advice:
prefix such text with a single quote, which spreadsheets show as text and do not display.
Numbers are the service's own values, never a user's text: a loss of -0.5 stays a number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | float | None


def safe_cell(value: Cell) -> str | int | float:
    """The value as a CSV cell: None empty, text that could start a formula quoted."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def as_csv(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """One header line, one line per row, every cell made safe: every CSV the service writes."""
    out = io.StringIO()
    # RFC 4180's CRLF: the writer quotes a field holding any character of its line ending,
    # so a name with a lone carriage return cannot split its row in a reader.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(safe_cell(name) for name in header)
    writer.writerows((safe_cell(value) for value in row) for row in rows)
    return out.getvalue()
