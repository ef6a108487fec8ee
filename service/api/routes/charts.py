"""Learning curves as pictures: one experiment's train/validation curves, or several compared;
each as SVG and as PNG."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from service.api.deps import DatabaseDep, ExperimentId, Reader, TokenFirstRoute
from service.charts import (
    METRICS,
    LegendEntry,
    Metric,
    Series,
    Shape,
    faint,
    final_value,
    layout,
    run_style,
    to_png,
    to_svg,
)
from service.db import repository
from service.db.session import Database
from service.domain import EpochRecord
from service.schemas.errors import error_responses
from service.schemas.studies import compared_ids_schema
from service.studies.leaderboard import DEFAULT_THRESHOLD
from service.usecases import comparison as comparisons
from service.usecases.comparison import MAX_COMPARED, split_ids

Format = Literal["svg", "png"]
MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}

PICTURE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/svg+xml": {}, "image/png": {}}, "description": "a line chart"}
}
# Every route answers a picture it renders itself, or an error about the experiments named.
router = APIRouter(
    route_class=TokenFirstRoute,
    tags=["charts"],
    dependencies=[Reader],
    default_response_class=Response,
    responses={**PICTURE, **error_responses(401, 404, 422)},
)


def points(epochs: list[EpochRecord], metric: Metric) -> list[tuple[int, float | None]]:
    return [(record.epoch, getattr(record, metric)) for record in epochs]


Chart = tuple[int, int, list[Shape]]


def picture(chart: Chart, kind: Format) -> Response:
    """The chart as the route's answer, in the format its path asked for."""
    body: str | bytes = to_svg(*chart) if kind == "svg" else to_png(*chart)
    return Response(body, media_type=MEDIA_TYPES[kind])


def _pair(metric: Metric) -> tuple[Metric, Metric]:
    """(validation, training) for either spelling of a metric."""
    base = metric.removeprefix("val_")
    validation: Metric = "val_loss" if base == "loss" else "val_accuracy"
    training: Metric = "loss" if base == "loss" else "accuracy"
    return validation, training


def _number(value: float | None) -> str:
    """Four decimals, as Keras prints scores, so that close runs can be told apart."""
    if value is None:
        return "-"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.4g}"


def history_chart(
    experiment_id: str, db: Database, metric: Literal["loss", "accuracy"], kind: Format
) -> Response:
    with db.scope() as session:
        experiment = repository.get_experiment(session, experiment_id)
        _, epochs = repository.history(session, experiment_id)
    validation, training = _pair(metric)
    style = run_style(0)
    series = [
        Series("training", points(epochs, training), faint(style)),
        Series("validation", points(epochs, validation), style),
    ]
    legend = [LegendEntry(f"{s.label} {_number(final_value(s.points))}", s.style) for s in series]
    chart = layout(
        series,
        title=f"{experiment.name}: {metric} ({experiment.status.value})",
        y_label=metric,
        legend=legend,
    )
    return picture(chart, kind)


HistoryMetric = Annotated[Literal["loss", "accuracy"], Query()]
# One route per chart serves both formats: `history.svg` and `history.png`.
Kind = Annotated[Format, Path(description="svg, or png for a PNG image of the same chart")]


@router.get("/experiments/{experiment_id}/history.{kind}")
def history(
    experiment_id: ExperimentId, kind: Kind, db: DatabaseDep, metric: HistoryMetric = "loss"
) -> Response:
    """Training (thin) and validation (bold) curves of one experiment; final values in legend."""
    return history_chart(experiment_id, db, metric, kind)


def compare_legend(runs: list[tuple[str, Series, Series | None]]) -> list[LegendEntry]:
    """One entry per run: its name, and under it the final value of each curve drawn for it."""
    entries = []
    for name, main, other in runs:
        detail = f"final {_number(final_value(main.points))}"
        if other is not None:
            detail += f", train {_number(final_value(other.points))}"
        entries.append(LegendEntry(name, main.style, detail))
    return entries


def overlay(
    runs: Sequence[tuple[str, list[EpochRecord]]],
    *,
    metric: Metric,
    training: bool,
    title: str | None = None,
) -> Chart:
    """One style per run (colour and dash), validation bold and, with `training`, the training
    curve thin beside it; each run's final values in the legend."""
    validation_metric, training_metric = _pair(metric)
    shown = metric if metric.startswith("val_") or not training else validation_metric
    drawn: list[tuple[str, Series, Series | None]] = []
    for index, (label, epochs) in enumerate(runs):
        style = run_style(index)
        main = Series(label, points(epochs, shown), style)
        other = Series(label, points(epochs, training_metric), faint(style)) if training else None
        drawn.append((label, main, other))
    series = [s for _, main, other in drawn for s in (other, main) if s is not None]
    title = (title or f"{shown} by epoch") + (f" (thin: {training_metric})" if training else "")
    return layout(series, title=title, y_label=shown, legend=compare_legend(drawn))


def compare_chart(
    db: Database, ids: list[str], metric: Metric, training: bool, kind: Format
) -> Response:
    with db.scope() as session:
        comparison = comparisons.compare(
            session, split_ids(ids), threshold=DEFAULT_THRESHOLD, at_least=1
        )
    # The legend names each run and its final values; GET /compare says how their specs differ.
    names = [experiment.name for experiment in comparison.experiments]
    runs = list(zip(names, comparison.histories, strict=True))
    return picture(overlay(runs, metric=metric, training=training), kind)


CompareIds = Annotated[
    list[str],
    Query(
        description=f"experiment ids, 1 to {MAX_COMPARED}: repeat the parameter "
        "(ids=A&ids=B) or separate them with commas (ids=A,B)",
        json_schema_extra=compared_ids_schema(1, MAX_COMPARED),
    ),
]
CompareMetric = Annotated[Metric, Query(description=", ".join(METRICS))]
WithTraining = Annotated[
    bool,
    Query(description="also draw each run's training curve, thin, beside its validation curve"),
]


@router.get("/compare.{kind}")
def compare(
    db: DatabaseDep,
    ids: CompareIds,
    kind: Kind,
    metric: CompareMetric = "val_accuracy",
    training: WithTraining = True,
) -> Response:
    """One style per experiment (colour and dash): which net learns faster, which overfits."""
    return compare_chart(db, ids, metric, training, kind)
