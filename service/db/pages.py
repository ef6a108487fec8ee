"""The experiment list: its filters, its count, and its pages, by keyset or by offset.

A keyset page reads from the position the previous page ended at, an index range scan that
costs the same on page 1 and page 2,000. Sorting by test accuracy puts the runs without one
last; that page is read as two segments (the scored rows, then the unscored by id) so that
each is one range of the (test_accuracy, id) index on SQLite and PostgreSQL alike, whose
NULLs sort at opposite ends.

A page is read in two steps: the ids of its rows first, from index entries alone where an
index covers the filter and the sort, then those rows. A tag's page in created order is a range
of experiment_tags' (tag, created_at, experiment_id) index, each tag beside its experiment's
created_at (0015); in accuracy order it joins the tag's entries to the narrow (id, client_id,
created_at, test_accuracy) index and sorts those. Reading the rows themselves, wide with their
spec and summary, to sort all of a tag's runs took several times as long.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
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

    ids, more = _page_ids(session, filtered, _keys(order, tags), limit, offset, after)
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

    ids, more = _page_ids(session, filtered, _keys(order, tags), limit, offset, after)
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


@dataclass(frozen=True)
class _Keys:
    """What a page sorts by: `value` (created_at or test_accuracy), then `id`, the tie-break;
    the same values whichever table's columns they are read from."""

    order: Order
    value: InstrumentedAttribute[Any]
    id: InstrumentedAttribute[Any]

    @property
    def descending(self) -> bool:
        return self.order.startswith("-")

    @property
    def by_accuracy(self) -> bool:
        return self.order.endswith("test_accuracy")


def _keys(order: Order, tags: Sequence[str]) -> _Keys:
    """The sort keys of a page in `order` of the runs carrying `tags`. A tag's page in created
    order sorts by the first tag's own copy of created_at, so that its page is one range of
    the (tag, created_at, experiment_id) index."""
    if order.endswith("test_accuracy"):
        return _Keys(order, ExperimentRow.test_accuracy, ExperimentRow.id)
    if tags:
        return _Keys(order, ExperimentTagRow.created_at, ExperimentTagRow.experiment_id)
    return _Keys(order, ExperimentRow.created_at, ExperimentRow.id)


def _page_ids(
    session: Session,
    filtered: Filter,
    keys: _Keys,
    limit: int,
    offset: int,
    after: Position | None,
) -> tuple[list[str], bool]:
    """The ids of a page's rows in its order, and whether more rows follow them."""
    if offset and after is None:
        ids = _offset_page(filtered, keys, limit + 1, offset, session)
    else:
        ids = _keyset_page(filtered, keys, limit + 1, after, session)
    return ids[:limit], len(ids) > limit


def _filtered(
    query: Select[Any], *, status: Status | None, tags: Sequence[str], owner: OwnerFilter | None
) -> Select[Any]:
    """The query of experiments kept to those of `owner`, in `status`, carrying every one of
    `tags`. Each tag is a join on experiment_tags' key (experiment, tag): at most one row an
    experiment, and the planner may start from the tag's entries. The first tag joins
    experiment_tags itself, not an alias, so that a page can sort by its columns (`_keys`)."""
    for number, tag in enumerate(sorted(set(tags))):
        tagged = ExperimentTagRow if number == 0 else aliased(ExperimentTagRow)
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


def _offset_page(
    filtered: Filter, keys: _Keys, limit: int, offset: int, session: Session
) -> list[str]:
    """The old way, kept for clients that page with `offset`: the same order as the keyset
    pages, every skipped row read."""
    sort = keys.value.desc() if keys.descending else keys.value.asc()
    if keys.by_accuracy:
        sort = sort.nulls_last()
    by_id = keys.id.desc() if keys.descending else keys.id.asc()
    query = filtered(select(ExperimentRow.id)).order_by(sort, by_id)
    return list(session.scalars(query.limit(limit).offset(offset)))


def _keyset_page(
    filtered: Filter,
    keys: _Keys,
    limit: int,
    after: Position | None,
    session: Session,
) -> list[str]:
    descending = keys.descending
    key = tuple_(keys.value, keys.id)
    rows: list[str] = []
    if after is None or after.value is not None:
        query = _sorted(filtered(select(ExperimentRow.id)), descending, keys.value, keys.id)
        if keys.by_accuracy:
            query = query.where(keys.value.is_not(None))
        if after is not None:
            query = query.where(
                key < (after.value, after.id) if descending else key > (after.value, after.id)
            )
        rows = list(session.scalars(query.limit(limit)))
    if len(rows) < limit and keys.by_accuracy:
        unscored = filtered(select(ExperimentRow.id)).where(keys.value.is_(None))
        query = _sorted(unscored, descending, keys.id)
        if after is not None and after.value is None:
            beyond = keys.id < after.id if descending else keys.id > after.id
            query = query.where(beyond)
        rows += session.scalars(query.limit(limit - len(rows)))
    return rows


def _sorted(query: Select[Any], descending: bool, *keys: InstrumentedAttribute[Any]) -> Select[Any]:
    return query.order_by(*(key.desc() if descending else key.asc() for key in keys))


def _position(row: ExperimentRow | Row[Any], order: Order) -> Position:
    value = row.created_at if order.endswith("created") else row.test_accuracy
    return Position(order=order, value=value, id=row.id)
