"""Servable models and the aliases that name them (`production`, `staging`, ...)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from service.api.deps import (
    DatabaseDep,
    Owner,
    Reader,
    RuntimeDep,
    TokenFirstRoute,
    Writer,
    WriterDep,
)
from service.db import registry
from service.schemas.errors import error_responses
from service.schemas.predict import (
    AliasName,
    AliasPublic,
    AliasUpdate,
    ModelName,
    ModelPublic,
    ModelsPublic,
)

router = APIRouter(route_class=TokenFirstRoute, prefix="/models", tags=["models"])
# One path for the three: a model's name is an alias, an experiment id, `best` or `latest`, and
# PUT and DELETE take aliases only. Two path templates for one URL would hide PUT from GET's.


@router.get(
    "",
    response_model=ModelsPublic,
    dependencies=[Reader],
    responses=error_responses(401),
)
def list_models(db: DatabaseDep) -> ModelsPublic:
    """Succeeded experiments with a saved model, most accurate first, with their aliases."""
    with db.scope() as session:
        return ModelsPublic.of(registry.list_servable(session))


@router.get(
    "/{name}",
    response_model=ModelPublic,
    dependencies=[Reader],
    responses=error_responses(401, 404, 409, 422),
)
def read_model(name: ModelName, db: DatabaseDep) -> ModelPublic:
    """What `best`, `latest`, an alias or an experiment id points at right now."""
    with db.scope() as session:
        return ModelPublic.of(registry.with_aliases(session, registry.resolve(session, name)))


@router.put(
    "/{name}",
    response_model=AliasPublic,
    dependencies=[Writer, Owner],
    responses=error_responses(401, 403, 404, 409, 422),
)
def put_alias(
    name: AliasName, update: AliasUpdate, runtime: RuntimeDep, caller: WriterDep
) -> AliasPublic:
    """Point the alias `name` at a succeeded experiment; usable wherever a model id is. A new
    alias is the caller's; only its owner or a teacher may move it."""
    with runtime.db.scope() as session:
        alias = registry.set_alias(
            session, alias=name, experiment_id=update.experiment_id, owner_id=caller.owner_id
        )
    runtime.predictions.alias_moved(name)
    return AliasPublic.of(alias)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Writer, Owner],
    responses=error_responses(401, 403, 404, 422),
)
def delete_alias(name: AliasName, runtime: RuntimeDep) -> Response:
    with runtime.db.scope() as session:
        registry.delete_alias(session, name)
    runtime.predictions.alias_moved(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
