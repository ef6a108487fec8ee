"""Learning curves as pictures: one experiment's train/validation curves, or several compared."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from service.api.deps import ExperimentId, SessionDep, require_reader
from service.charts import METRICS, Metric, Series, render
from service.db import repository
from service.domain import EpochRecord
from service.errors import InvalidInput
from service.schemas.errors import error_responses

# Both routes answer an SVG they render themselves, or an error about the experiments named.
router = APIRouter(
    tags=["charts"],
    dependencies=[Depends(require_reader)],
    default_response_class=Response,
    responses={
        200: {"content": {"image/svg+xml": {}}, "description": "an SVG line chart"},
        **error_responses(401, 404, 422),
    },
)
MAX_COMPARED = 8


def _points(epochs: list[EpochRecord], metric: Metric) -> list[tuple[int, float | None]]:
    return [(record.epoch, getattr(record, metric)) for record in epochs]


def _svg(svg: str) -> Response:
    return Response(svg, media_type="image/svg+xml")


@router.get("/experiments/{experiment_id}/history.svg")
def history_chart(
    experiment_id: ExperimentId,
    session: SessionDep,
    metric: Annotated[Literal["loss", "accuracy"], Query()] = "loss",
) -> Response:
    """Training (solid) and validation (dashed) curves of one experiment."""
    experiment = repository.get_experiment(session, experiment_id)
    _, epochs = repository.history(session, experiment_id)
    validation: Metric = "val_loss" if metric == "loss" else "val_accuracy"
    svg = render(
        [
            Series("training", _points(epochs, metric)),
            Series("validation", _points(epochs, validation), dashed=True),
        ],
        title=f"{experiment.name}: {metric} ({experiment.status.value})",
        y_label=metric,
    )
    return _svg(svg)


@router.get("/compare.svg")
def compare_chart(
    session: SessionDep,
    ids: Annotated[
        list[str],
        Query(description=f"experiment ids, 1 to {MAX_COMPARED}; repeat the parameter"),
    ],
    metric: Annotated[Metric, Query(description=", ".join(METRICS))] = "val_accuracy",
) -> Response:
    """One curve per experiment for the chosen metric: which net learns faster, which overfits."""
    if not 1 <= len(ids) <= MAX_COMPARED:
        raise InvalidInput(f"compare 1 to {MAX_COMPARED} experiments; got {len(ids)} ids")
    series = []
    for experiment_id in ids:
        experiment = repository.get_experiment(session, experiment_id)
        _, epochs = repository.history(session, experiment_id)
        series.append(Series(experiment.name, _points(epochs, metric)))
    return _svg(render(series, title=f"{metric} by epoch", y_label=metric))
