"""The compact table's row of one run: its best epoch and best values, NaN and inf left out."""

from __future__ import annotations

import math

from service.domain import EpochRecord, Status
from service.domain.pages import RunHead
from service.overview import EpochColumns, RunOverview
from service.overview import overview as overview_of


def overview(run: RunHead, epochs: list[EpochRecord]) -> RunOverview:
    return overview_of(run, EpochColumns.of(epochs))


RUN = RunHead("r", "run", Status.SUCCEEDED, ("t",), None, 1000, 0.3, 0.9)


def _epoch(n: int, accuracy: float | None, val_accuracy: float | None) -> EpochRecord:
    return EpochRecord(n, 1.0 / n, accuracy, math.inf if n == 2 else 0.5, val_accuracy, 2.0)


def test_the_best_epoch_is_the_earliest_of_equal_validation_accuracies() -> None:
    row = overview(RUN, [_epoch(1, 0.5, 0.8), _epoch(2, 0.6, 0.9), _epoch(3, 0.9, 0.9)])
    assert (row.best_epoch, row.best_val_accuracy, row.best_val_loss) == (2, 0.9, 0.5)
    assert (row.epochs, row.epochs_done, row.seconds_per_epoch) == (10, 3, 2.0)


def test_without_validation_the_best_epoch_is_by_training_accuracy() -> None:
    row = overview(RUN, [_epoch(1, 0.7, None), _epoch(2, math.nan, None), _epoch(3, 0.7, None)])
    assert (row.best_epoch, row.best_accuracy, row.final_val_accuracy) == (1, 0.7, None)


def test_a_run_without_scores_has_no_best_epoch() -> None:
    row = overview(RUN, [_epoch(1, None, math.nan)])
    assert (row.best_epoch, row.best_accuracy, row.best_val_accuracy) == (None, None, None)
    assert overview(RUN, []).best_epoch is None
