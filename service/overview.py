"""One experiment's run in one row: final and best scores, the epoch of the best, its pace.

The table that answers "does it overfit?" for every run at once (GET /experiments?view=compact).
The best epoch is the one with the highest validation accuracy (the training accuracy when the
run has no validation data), as ModelCheckpoint(save_best_only=True) would choose.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from service.domain import EpochRecord, Experiment
from service.domain.pages import RunHead
from service.estimates import epochs_asked, mean_seconds


@dataclass(frozen=True)
class RunOverview:
    """A row of the compact view: `epochs` asked for, `params` as model.summary() counts them,
    `best_*` the best value each metric reached, `best_epoch` as the module says."""

    id: str
    name: str
    status: str
    tags: tuple[str, ...]
    epochs: int
    epochs_done: int
    params: int | None
    seconds_per_epoch: float | None
    final_loss: float | None
    final_accuracy: float | None
    final_val_loss: float | None
    final_val_accuracy: float | None
    best_epoch: int | None
    best_loss: float | None
    best_accuracy: float | None
    best_val_loss: float | None
    best_val_accuracy: float | None
    test_loss: float | None
    test_accuracy: float | None


COLUMNS = tuple(field.name for field in fields(RunOverview))


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _present(values: Sequence[float | None]) -> list[float]:
    # The test inline, not a call to _finite: a 200-run page filters some 10,000 values, and
    # a call for each was a fifth of building its rows.
    return [v for v in values if v is not None and math.isfinite(v)]


def _lowest(values: Sequence[float | None]) -> float | None:
    return min(_present(values), default=None)


def _highest(values: Sequence[float | None]) -> float | None:
    return max(_present(values), default=None)


@dataclass(frozen=True)
class EpochColumns:
    """A run's epochs as one sequence a metric, in epoch order: what its row summarises. A
    200-run page has 2,000 epochs, and building an EpochRecord for each was a fifth of it."""

    epoch: Sequence[int]
    loss: Sequence[float | None]
    accuracy: Sequence[float | None]
    val_loss: Sequence[float | None]
    val_accuracy: Sequence[float | None]
    seconds: Sequence[float]

    @classmethod
    def of_rows(cls, rows: Sequence[Sequence[Any]]) -> EpochColumns:
        """From rows of (epoch, loss, accuracy, val_loss, val_accuracy, seconds)."""
        return cls(*zip(*rows, strict=True)) if rows else cls((), (), (), (), (), ())

    @classmethod
    def of(cls, epochs: Sequence[EpochRecord]) -> EpochColumns:
        return cls.of_rows(
            [(r.epoch, r.loss, r.accuracy, r.val_loss, r.val_accuracy, r.seconds) for r in epochs]
        )


def _best_epoch(epochs: EpochColumns) -> int | None:
    # The earliest of equals (the larger -epoch): the one early stopping would have kept.
    for metric in (epochs.val_accuracy, epochs.accuracy):
        scored = [
            (value, -epoch)
            for value, epoch in zip(metric, epochs.epoch, strict=True)
            if value is not None and math.isfinite(value)
        ]
        if scored:
            return -max(scored)[1]
    return None


def head(experiment: Experiment) -> RunHead:
    """What the compact table shows of an experiment's own row."""
    return RunHead(
        id=experiment.id,
        name=experiment.name,
        status=experiment.status,
        tags=experiment.tags,
        epochs=experiment.spec.get("fit", {}).get("epochs"),
        params=(experiment.summary or {}).get("total_params"),
        test_loss=experiment.test_loss,
        test_accuracy=experiment.test_accuracy,
    )


def overview(run: RunHead, epochs: EpochColumns) -> RunOverview:
    done = len(epochs.epoch)
    pace = mean_seconds(epochs.seconds)
    return RunOverview(
        id=run.id,
        name=run.name,
        status=run.status.value,
        tags=run.tags,
        epochs=epochs_asked(run.epochs),
        epochs_done=done,
        params=run.params,
        seconds_per_epoch=round(pace, 3) if pace is not None else None,
        final_loss=_finite(epochs.loss[-1]) if done else None,
        final_accuracy=_finite(epochs.accuracy[-1]) if done else None,
        final_val_loss=_finite(epochs.val_loss[-1]) if done else None,
        final_val_accuracy=_finite(epochs.val_accuracy[-1]) if done else None,
        best_epoch=_best_epoch(epochs),
        best_loss=_lowest(epochs.loss),
        best_accuracy=_highest(epochs.accuracy),
        best_val_loss=_lowest(epochs.val_loss),
        best_val_accuracy=_highest(epochs.val_accuracy),
        test_loss=run.test_loss,
        test_accuracy=run.test_accuracy,
    )
