"""The experiment list: its filters, its count, and its pages, by keyset or by offset.

A keyset page reads from the position the previous page ended at, an index range scan that
costs the same on page 1 and page 2,000. Sorting by test accuracy puts the runs without one
last; that page is read as two segments (the scored rows, then the unscored by id) so that
each is one range of the (test_accuracy, id) index on SQLite and PostgreSQL alike, whose
NULLs sort at opposite ends.

A page is read in two steps: the ids of its rows first, from index entries alone where an
index covers the filter and the sort, then those rows. A tag's page joins the tag's entries in
experiment_tags to the narrow (id, client_id, created_at, test_accuracy) index and sorts those;
reading the rows themselves, wide with their spec and summary, to sort all of a tag's runs
took several times as long.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Row, Select, and_, func, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from service.db import repository
from service.db.models import ExperimentRow, ExperimentTagRow
from service.db.ownership import OwnerFilter
from service.db.repository import to_experiments
from service.domain import Status
from service.domain.pages import CompactPage, ExperimentPage, Order, Position, RunHead


def list_experiments(
    session: Session,
    *,
    status: Status | None = None,
    tags: Sequence[str] = (),
    order: Order = "-created",
    limit: int = 50,
    offset: int = 0,
    after: Position | None = None,
    owner: OwnerFilter | None = None,
) -> ExperimentPage:
    """A page of experiments in `status` (any when None) carrying every one of `tags`, of
    `owner` when given: the rows after `after` (a keyset page), or past `offset` rows."""

    def filtered(query: Select[Any]) -> Select[Any]:
        return _filtered(query, status=status, tags=tags, owner=owner)

    ids, more = _page_ids(session, filtered, order, limit, offset, after)
    rows = _rows(session, ids)
    if tags and status is None and owner is None:
        count = _tagged_count(tags)
    else:
        count = filtered(select(func.count()).select_from(ExperimentRow))
    return ExperimentPage(
        items=to_experiments(session, rows),
        count=session.scalar(count) or 0,
        next=_position(rows[-1], order) if more and rows else None,
    )


def compact_page(
    session: Session,
    *,
    status: Status | None = None,
    tags: Sequence[str] = (),
    order: Order = "-created",
    limit: int = 50,
    offset: int = 0,
    after: Position | None = None,
    owner: OwnerFilter | None = None,
) -> CompactPage:
    """The page `list_experiments` would answer, as the compact table shows its rows: only
    the columns it shows, the spec's epochs and the summary's parameters read by the database
    from their JSON. Building 200 whole experiments, their spec, summary and trial parameters
    decoded, was most of a 200-run CSV page, and the table shows none of it."""

    def filtered(query: Select[Any]) -> Select[Any]:
        return _filtered(query, status=status, tags=tags, owner=owner)

    ids, more = _page_ids(session, filtered, order, limit, offset, after)
    query = select(
        ExperimentRow.id,
        ExperimentRow.name,
        ExperimentRow.status,
        ExperimentRow.created_at,
        ExperimentRow.test_loss,
        ExperimentRow.test_accuracy,
        ExperimentRow.spec[("fit", "epochs")].label("epochs"),
        ExperimentRow.summary[("total_params",)].label("params"),
    ).where(ExperimentRow.id.in_(ids))
    found = {row.id: row for row in session.execute(query)}
    rows = [found[experiment_id] for experiment_id in ids if experiment_id in found]
    tags_of = repository.tags_of(session, ids)
    return CompactPage(
        items=[
            RunHead(
                id=row.id,
                name=row.name,
                status=Status(row.status),
                tags=tuple(tags_of.get(row.id, ())),
                epochs=row.epochs,
                params=row.params,
                test_loss=row.test_loss,
                test_accuracy=row.test_accuracy,
            )
            for row in rows
        ],
        next=_position(rows[-1], order) if more and rows else None,
    )


Filter = Callable[[Select[Any]], Select[Any]]


def _page_ids(
    session: Session,
    filtered: Filter,
    order: Order,
    limit: int,
    offset: int,
    after: Position | None,
) -> tuple[list[str], bool]:
    """The ids of a page's rows in its order, and whether more rows follow them."""
    if offset and after is None:
        ids = _offset_page(filtered, order, limit + 1, offset, session)
    else:
        ids = _keyset_page(filtered, order, limit + 1, after, session)
    return ids[:limit], len(ids) > limit


def _filtered(
    query: Select[Any], *, status: Status | None, tags: Sequence[str], owner: OwnerFilter | None
) -> Select[Any]:
    """The query of experiments kept to those of `owner`, in `status`, carrying every one of
    `tags`. Each tag is a join on experiment_tags' key (experiment, tag): at most one row an
    experiment, and the planner may start from the tag's entries."""
    for tag in sorted(set(tags)):
        tagged = aliased(ExperimentTagRow)
        query = query.join(
            tagged, and_(tagged.experiment_id == ExperimentRow.id, tagged.tag == tag)
        )
    conditions = list(owner.where(ExperimentRow)) if owner else []
    if status is not None:
        conditions.append(ExperimentRow.status == status)
    return query.where(*conditions)


def _tagged_count(tags: Sequence[str]) -> Select[Any]:
    """How many experiments carry every one of `tags`, from experiment_tags alone: each of its
    rows has its experiment (a foreign key that deletes them with it), and joining all of a
    tag's 1,000 runs to experiments only to count them took most of a tag's page."""
    first, *others = sorted(set(tags))
    query = select(func.count()).select_from(ExperimentTagRow).where(ExperimentTagRow.tag == first)
    for tag in others:
        also = aliased(ExperimentTagRow)
        query = query.join(
            also, and_(also.experiment_id == ExperimentTagRow.experiment_id, also.tag == tag)
        )
    return query


def _rows(session: Session, ids: list[str]) -> list[ExperimentRow]:
    """The experiments of `ids`, in that order; one deleted since its id was read (each
    statement may see a newer snapshot) is left out, as it would be a moment later."""
    found = {
        row.id: row
        for row in session.scalars(select(ExperimentRow).where(ExperimentRow.id.in_(ids)))
    }
    return [found[experiment_id] for experiment_id in ids if experiment_id in found]


def _sort_column(order: Order) -> InstrumentedAttribute[Any]:
    return ExperimentRow.created_at if order.endswith("created") else ExperimentRow.test_accuracy


def _offset_page(
    filtered: Filter, order: Order, limit: int, offset: int, session: Session
) -> list[str]:
    """The old way, kept for clients that page with `offset`: the same order as the keyset
    pages, every skipped row read."""
    column, descending = _sort_column(order), order.startswith("-")
    sort = column.desc() if descending else column.asc()
    if order.endswith("test_accuracy"):
        sort = sort.nulls_last()
    by_id = ExperimentRow.id.desc() if descending else ExperimentRow.id.asc()
    query = filtered(select(ExperimentRow.id)).order_by(sort, by_id)
    return list(session.scalars(query.limit(limit).offset(offset)))


def _keyset_page(
    filtered: Filter,
    order: Order,
    limit: int,
    after: Position | None,
    session: Session,
) -> list[str]:
    column, descending = _sort_column(order), order.startswith("-")
    key = tuple_(column, ExperimentRow.id)
    rows: list[str] = []
    if after is None or after.value is not None:
        query = _sorted(filtered(select(ExperimentRow.id)), descending, column)
        if order.endswith("test_accuracy"):
            query = query.where(column.is_not(None))
        if after is not None:
            query = query.where(
                key < (after.value, after.id) if descending else key > (after.value, after.id)
            )
        rows = list(session.scalars(query.limit(limit)))
    if len(rows) < limit and order.endswith("test_accuracy"):
        query = _sorted(filtered(select(ExperimentRow.id)).where(column.is_(None)), descending)
        if after is not None and after.value is None:
            beyond = ExperimentRow.id < after.id if descending else ExperimentRow.id > after.id
            query = query.where(beyond)
        rows += session.scalars(query.limit(limit - len(rows)))
    return rows


def _sorted(
    query: Select[Any], descending: bool, *columns: InstrumentedAttribute[Any]
) -> Select[Any]:
    keys = [*columns, ExperimentRow.id]
    return query.order_by(*(key.desc() if descending else key.asc() for key in keys))


def _position(row: ExperimentRow | Row[Any], order: Order) -> Position:
    value = row.created_at if order.endswith("created") else row.test_accuracy
    return Position(order=order, value=value, id=row.id)
