"""Learning curves as pictures: one experiment's train/validation curves, or several compared;
each as SVG and as PNG."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response

from service.api.deps import ExperimentId, SessionDep, require_reader
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
from service.domain import EpochRecord
from service.errors import InvalidInput
from service.schemas.errors import error_responses

Format = Literal["svg", "png"]
MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}

# Every route answers a picture it renders itself, or an error about the experiments named.
router = APIRouter(
    tags=["charts"],
    dependencies=[Depends(require_reader)],
    default_response_class=Response,
    responses={
        200: {"content": {"image/svg+xml": {}, "image/png": {}}, "description": "a line chart"},
        **error_responses(401, 404, 422),
    },
)
MAX_COMPARED = 24


def _points(epochs: list[EpochRecord], metric: Metric) -> list[tuple[int, float | None]]:
    return [(record.epoch, getattr(record, metric)) for record in epochs]


def _picture(chart: tuple[int, int, list[Shape]], kind: Format) -> Response:
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
    experiment_id: str, session: SessionDep, metric: Literal["loss", "accuracy"], kind: Format
) -> Response:
    experiment = repository.get_experiment(session, experiment_id)
    _, epochs = repository.history(session, experiment_id)
    validation, training = _pair(metric)
    style = run_style(0)
    series = [
        Series("training", _points(epochs, training), faint(style)),
        Series("validation", _points(epochs, validation), style),
    ]
    legend = [LegendEntry(f"{s.label} {_number(final_value(s.points))}", s.style) for s in series]
    chart = layout(
        series,
        title=f"{experiment.name}: {metric} ({experiment.status.value})",
        y_label=metric,
        legend=legend,
    )
    return _picture(chart, kind)


HistoryMetric = Annotated[Literal["loss", "accuracy"], Query()]
# One route per chart serves both formats: `history.svg` and `history.png`.
Kind = Annotated[Format, Path(description="svg, or png for a PNG image of the same chart")]


@router.get("/experiments/{experiment_id}/history.{kind}")
def history(
    experiment_id: ExperimentId, kind: Kind, session: SessionDep, metric: HistoryMetric = "loss"
) -> Response:
    """Training (thin) and validation (bold) curves of one experiment; final values in legend."""
    return history_chart(experiment_id, session, metric, kind)


def _ids(values: list[str]) -> list[str]:
    """`ids=a&ids=b`, `ids=a,b` or both: each id once, in the order given."""
    ids = [part.strip() for value in values for part in value.split(",") if part.strip()]
    ids = list(dict.fromkeys(ids))
    if not 1 <= len(ids) <= MAX_COMPARED:
        raise InvalidInput(f"compare 1 to {MAX_COMPARED} experiments; got {len(ids)} ids")
    return ids


def compare_legend(runs: list[tuple[str, Series, Series | None]]) -> list[LegendEntry]:
    """One row per run: its name and the final value of each curve drawn for it."""
    entries = []
    for name, main, other in runs:
        text = f"{name} {_number(final_value(main.points))}"
        if other is not None:
            text += f" (train {_number(final_value(other.points))})"
        entries.append(LegendEntry(text, main.style))
    return entries


def compare_chart(
    session: SessionDep, ids: list[str], metric: Metric, training: bool, kind: Format
) -> Response:
    validation_metric, training_metric = _pair(metric)
    shown = metric if metric.startswith("val_") or not training else validation_metric
    runs: list[tuple[str, Series, Series | None]] = []
    for index, experiment_id in enumerate(_ids(ids)):
        experiment = repository.get_experiment(session, experiment_id)
        _, epochs = repository.history(session, experiment_id)
        style = run_style(index)
        main = Series(experiment.name, _points(epochs, shown), style)
        other = (
            Series(experiment.name, _points(epochs, training_metric), faint(style))
            if training
            else None
        )
        runs.append((experiment.name, main, other))
    series = [s for _, main, other in runs for s in (other, main) if s is not None]
    title = f"{shown} by epoch" + (f" (thin: {training_metric})" if training else "")
    chart = layout(series, title=title, y_label=shown, legend=compare_legend(runs))
    return _picture(chart, kind)


CompareIds = Annotated[
    list[str],
    Query(
        description=f"experiment ids, 1 to {MAX_COMPARED}: repeat the parameter "
        "(ids=A&ids=B) or separate them with commas (ids=A,B)"
    ),
]
CompareMetric = Annotated[Metric, Query(description=", ".join(METRICS))]
WithTraining = Annotated[
    bool,
    Query(description="also draw each run's training curve, thin, beside its validation curve"),
]


@router.get("/compare.{kind}")
def compare(
    session: SessionDep,
    ids: CompareIds,
    kind: Kind,
    metric: CompareMetric = "val_accuracy",
    training: WithTraining = True,
) -> Response:
    """One style per experiment (colour and dash): which net learns faster, which overfits."""
    return compare_chart(session, ids, metric, training, kind)
