"""Which trained model answers: `best`, `latest`, a named alias, or an experiment id."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Insert, Select, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.db.models import ExperimentRow, ModelAliasRow
from service.domain import BEST, LATEST, Alias, ServableModel, Status, alias_problem, utcnow
from service.errors import (
    ExperimentNotFound,
    Forbidden,
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
)
from service.spec.suggestions import closest

# The order `best` picks in: most accurate, ties to the earlier run (see `resolve`).
BEST_FIRST = (
    ExperimentRow.test_accuracy.desc().nulls_last(),
    ExperimentRow.finished_at.asc(),
    ExperimentRow.id,
)


def _servable(row: ExperimentRow, aliases: tuple[str, ...] = ()) -> ServableModel:
    assert row.model_uri is not None
    return ServableModel(
        experiment_id=row.id,
        name=row.name,
        test_accuracy=row.test_accuracy,
        test_loss=row.test_loss,
        finished_at=row.finished_at,
        model_uri=row.model_uri,
        aliases=aliases,
    )


def _servable_rows() -> Select[ExperimentRow]:
    return select(ExperimentRow).where(
        ExperimentRow.status == Status.SUCCEEDED, ExperimentRow.model_uri.is_not(None)
    )


def _unknown_reference(session: Session, reference: str) -> ModelNotFound:
    """No experiment or alias is called `reference`: name the one it most likely meant."""
    names = [BEST, LATEST, *session.scalars(select(ModelAliasRow.alias)).all()]
    suggestion = closest(reference, names)
    hint = f"did you mean {suggestion!r}? Or " if suggestion else ""
    return ModelNotFound(
        f"no experiment or alias {reference!r}; {hint}use 'best', 'latest', an alias from "
        "GET /models, or an experiment id"
    )


def _require_servable(session: Session, row: ExperimentRow | None, reference: str) -> ServableModel:
    if row is None:
        raise _unknown_reference(session, reference)
    if row.status != Status.SUCCEEDED or row.model_uri is None:
        raise ModelNotReady(
            f"experiment {row.id} is {row.status}, so it has no trained model yet; "
            "wait until it has succeeded or choose another model"
        )
    return _servable(row)


def with_aliases(session: Session, model: ServableModel) -> ServableModel:
    aliases = session.scalars(
        select(ModelAliasRow.alias).where(ModelAliasRow.experiment_id == model.experiment_id)
    ).all()
    return replace(model, aliases=tuple(sorted(aliases)))


def resolve(session: Session, reference: str, *, owner_id: str | None = None) -> ServableModel:
    """The model a request names: best (highest test accuracy), latest, an alias, or an id.

    `best`'s ties go to the earlier run: seeded reruns tie exactly, and a class makes many, so
    breaking ties toward the newest would move `best` (and reload it) at every finish.

    With `owner_id` (a student while CLASS_READS=own) only that person's models answer: `best`
    and `latest` among theirs, an alias or id naming anybody else's is Forbidden."""
    if owner_id is not None:
        return _resolve_owned(session, reference, owner_id)
    if reference == BEST:
        row = session.scalars(_servable_rows().order_by(*BEST_FIRST).limit(1)).first()
    elif reference == LATEST:
        row = session.scalars(
            _servable_rows().order_by(ExperimentRow.finished_at.desc()).limit(1)
        ).first()
    else:
        alias = session.get(ModelAliasRow, reference)
        row = session.get(ExperimentRow, alias.experiment_id if alias else reference)
        return _require_servable(session, row, reference)
    if row is None:
        raise ModelNotFound(
            f"no trained model yet for {reference!r}: no experiment has succeeded; "
            "POST /experiments and wait for it to finish"
        )
    return _servable(row)


def _resolve_owned(session: Session, reference: str, owner_id: str) -> ServableModel:
    if reference in (BEST, LATEST):
        owned = _servable_rows().where(ExperimentRow.owner_id == owner_id)
        if reference == BEST:
            owned = owned.order_by(*BEST_FIRST)
        else:
            owned = owned.order_by(ExperimentRow.finished_at.desc())
        row = session.scalars(owned.limit(1)).first()
        if row is None:
            raise ModelNotFound(
                f"no trained model of yours yet for {reference!r}: while CLASS_READS=own it "
                "names your own models only; POST /experiments and wait for it to finish"
            )
        return _servable(row)
    alias = session.get(ModelAliasRow, reference)
    row = session.get(ExperimentRow, alias.experiment_id if alias else reference)
    if row is not None and row.owner_id != owner_id:
        named = (
            f"{reference!r} names experiment {row.id}, which" if alias else f"experiment {row.id}"
        )
        raise Forbidden(
            f"{named} belongs to {row.owner_name or 'somebody else'}; while CLASS_READS=own you "
            "predict only with your own models"
        )
    return _require_servable(session, row, reference)


def list_servable(session: Session) -> list[ServableModel]:
    """Every servable model, best first, in the order `best` picks."""
    rows = session.scalars(_servable_rows().order_by(*BEST_FIRST)).all()
    aliases: dict[str, list[str]] = {}
    for alias, experiment_id in session.execute(
        select(ModelAliasRow.alias, ModelAliasRow.experiment_id)
    ):
        aliases.setdefault(experiment_id, []).append(alias)
    return [_servable(row, tuple(sorted(aliases.get(row.id, [])))) for row in rows]


def set_alias(
    session: Session, *, alias: str, experiment_id: str, owner_id: str | None = None
) -> Alias:
    """Point `alias` at the experiment; a new alias is `owner_id`'s, a moved one keeps its
    owner."""
    problem = alias_problem(alias)
    if problem is not None:
        raise InvalidInput(problem)
    row = session.get(ExperimentRow, experiment_id)
    if row is None:
        raise ExperimentNotFound(f"no experiment with id {experiment_id!r}")
    _require_servable(session, row, experiment_id)
    now = utcnow()
    # One upsert, not a read then an insert: two PUTs of a new alias at once both succeed
    # (the later wins) instead of one failing on the primary key.
    values = {
        "alias": alias,
        "experiment_id": experiment_id,
        "updated_at": now,
        "owner_id": owner_id,
    }
    session.execute(
        _insert_aliases(session)
        .values(**values)
        .on_conflict_do_update(
            index_elements=[ModelAliasRow.alias],
            set_={"experiment_id": experiment_id, "updated_at": now},
        )
    )
    session.expire_all()  # an alias row this session holds is stale after the upsert
    stored = session.get(ModelAliasRow, alias)
    assert stored is not None
    return Alias(alias=alias, experiment_id=experiment_id, updated_at=now, owner=stored.owner_name)


def _insert_aliases(session: Session) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT with ON CONFLICT (both SQLite and PostgreSQL speak it)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement: Insert = insert(ModelAliasRow)
    assert isinstance(statement, postgresql.Insert | sqlite.Insert)
    return statement


def delete_alias(session: Session, alias: str) -> None:
    existing = session.get(ModelAliasRow, alias)
    if existing is None:
        raise ModelNotFound(f"no alias {alias!r}; GET /models lists them")
    session.delete(existing)
