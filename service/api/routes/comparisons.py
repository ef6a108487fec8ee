"""Comparing any experiments: the spec difference, the per-run table, aligned histories."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.api.deps import DatabaseDep, Reader, TokenFirstRoute
from service.schemas.errors import error_responses
from service.schemas.studies import (
    ComparisonPublic,
    HistorySeriesPublic,
    LeaderboardRowPublic,
    RunLayersPublic,
    compared_ids_schema,
)
from service.studies.leaderboard import DEFAULT_THRESHOLD
from service.usecases.comparison import MAX_COMPARED, compare, split_ids

router = APIRouter(route_class=TokenFirstRoute, tags=["comparisons"], dependencies=[Reader])


@router.get("/compare", response_model=ComparisonPublic, responses=error_responses(401, 404, 422))
def compare_experiments(
    db: DatabaseDep,
    ids: Annotated[
        list[str],
        Query(
            description=f"2 to {MAX_COMPARED} experiment ids: comma-separated, or the parameter "
            "repeated",
            json_schema_extra=compared_ids_schema(2, MAX_COMPARED),
        ),
    ],
    threshold: Annotated[
        float, Query(ge=0, le=1, description="the validation accuracy to count epochs up to")
    ] = DEFAULT_THRESHOLD,
) -> ComparisonPublic:
    """What differs between the runs (in Keras terms), how each did, and their curves."""
    with db.scope() as session:
        wanted = split_ids(ids)
        comparison = compare(session, wanted, threshold=threshold)
        return ComparisonPublic(
            ids=wanted,
            differences=comparison.differences,
            layers=[RunLayersPublic(net=run.net, changes=run.changes) for run in comparison.layers],
            runs=[LeaderboardRowPublic.of(row) for row in comparison.runs],
            threshold=threshold,
            epochs=comparison.epochs,
            histories=[
                HistorySeriesPublic(experiment_id=experiment_id, **series)
                for experiment_id, series in zip(wanted, comparison.series, strict=True)
            ],
        )
