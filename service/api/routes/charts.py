"""Learning curves as pictures: one experiment's train/validation curves, or several compared."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from service.api.deps import ExperimentId, SessionDep, require_reader
from service.charts import METRICS, Metric, Series, render
from service.db import repository
from service.domain import EpochRecord
from service.schemas.errors import error_responses
from service.studies.leaderboard import DEFAULT_THRESHOLD
from service.usecases.comparison import MAX_COMPARED, compare, split_ids

SVG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/svg+xml": {}}, "description": "an SVG line chart"}
}
# Both routes answer an SVG they render themselves, or an error about the experiments named.
router = APIRouter(
    tags=["charts"],
    dependencies=[Depends(require_reader)],
    default_response_class=Response,
    responses={**SVG, **error_responses(401, 404, 422)},
)


def points(epochs: list[EpochRecord], metric: Metric) -> list[tuple[int, float | None]]:
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
            Series("training", points(epochs, metric)),
            Series("validation", points(epochs, validation), dashed=True),
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
        Query(
            description=f"experiment ids, 1 to {MAX_COMPARED}: comma-separated, or the "
            "parameter repeated"
        ),
    ],
    metric: Annotated[Metric, Query(description=", ".join(METRICS))] = "val_accuracy",
) -> Response:
    """One curve per experiment for the chosen metric: which net learns faster, which overfits."""
    comparison = compare(session, split_ids(ids), threshold=DEFAULT_THRESHOLD, at_least=1)
    # The legend says what sets each run apart (`learning_rate=0.1`), as GET /compare does.
    series = [
        Series(label, points(history, metric))
        for label, history in zip(comparison.labels(), comparison.histories, strict=True)
    ]
    svg = render(series, title=f"{metric} by epoch", y_label=metric, legend_chars=40)
    return _svg(svg)
