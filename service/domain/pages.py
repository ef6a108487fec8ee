"""Keyset pages: where a page of experiments ends, as the opaque cursor a client sends back.

A cursor names the last row a page showed (its sort value and its id) and the order it was
sorted in. The next page is the rows after that position, found with an index range scan
whatever the depth, where `offset` reads and throws away every row before it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from service.domain.experiments import Experiment, Status
from service.errors import InvalidCursor

Order = Literal["created", "-created", "test_accuracy", "-test_accuracy"]
ORDERS: tuple[Order, ...] = ("created", "-created", "test_accuracy", "-test_accuracy")
FOREIGN = (
    "not a cursor this service wrote: pass a page's next_cursor as it came, or leave cursor "
    "out for the first page"
)


@dataclass(frozen=True)
class Position:
    """The last row of a page: the order, that row's sort value (None: no test accuracy) and
    its id, which breaks ties."""

    order: Order
    value: datetime | float | None
    id: str

    def cursor(self) -> str:
        value = self.value.isoformat() if isinstance(self.value, datetime) else self.value
        raw = json.dumps([self.order, value, self.id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def position(cursor: str, order: Order) -> Position:
    """The position a cursor names; InvalidCursor when it is not one of ours or
    not for `order`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_order, value, last_id = json.loads(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as error:
        raise InvalidCursor(FOREIGN) from error
    if cursor_order not in ORDERS or not isinstance(last_id, str) or not last_id:
        raise InvalidCursor(FOREIGN)
    if cursor_order != order:
        raise InvalidCursor(
            f"this cursor continues order={cursor_order}; ask with order={cursor_order}, or "
            "leave cursor out to start the list again"
        )
    if order.endswith("created"):
        if not isinstance(value, str):
            raise InvalidCursor(FOREIGN)
        try:
            when = datetime.fromisoformat(value)
        except ValueError as error:
            raise InvalidCursor(FOREIGN) from error
        if when.tzinfo is None:
            raise InvalidCursor(FOREIGN)
        return Position(order, when, last_id)
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    ):
        raise InvalidCursor(FOREIGN)
    return Position(order, None if value is None else float(value), last_id)


@dataclass(frozen=True)
class ExperimentPage:
    """One page of the experiment list: its experiments, how many match over all pages, and
    where the next page starts (None: this is the last)."""

    items: list[Experiment]
    count: int
    next: Position | None


@dataclass(frozen=True)
class RunHead:
    """What the compact table shows of an experiment's own row, its epochs aside: `epochs` as
    its spec's fit asks (None: the spec does not say), `params` its summary's total_params."""

    id: str
    name: str
    status: Status
    tags: tuple[str, ...]
    epochs: int | None
    params: int | None
    test_loss: float | None
    test_accuracy: float | None


@dataclass(frozen=True)
class CompactPage:
    """A page of the compact table read without the rest of each row (no count: the CSV, which
    reads it, does not show one); `next` as in ExperimentPage."""

    items: list[RunHead]
    next: Position | None
