"""Diagnostics about the history's shape, on crafted histories: each kind raised on the history
made to show it, none on a healthy one, and never a finding without its evidence."""

from __future__ import annotations

import math

import pytest

from service.domain import EpochRecord
from service.insight.diagnostics import (
    DIVERGENCE_FACTOR,
    Finding,
    diagnose,
)


def history(
    loss: list[float],
    val_loss: list[float] | None = None,
    accuracy: list[float] | None = None,
    val_accuracy: list[float] | None = None,
) -> list[EpochRecord]:
    count = len(loss)
    return [
        EpochRecord(
            epoch=index + 1,
            loss=loss[index],
            accuracy=(accuracy or [0.9] * count)[index],
            val_loss=(val_loss or loss)[index],
            val_accuracy=(val_accuracy or [0.9] * count)[index],
            seconds=1.0,
        )
        for index in range(count)
    ]


# A net that learns and then settles: losses fall, validation follows, accuracy levels off high.
HEALTHY = history(
    loss=[0.60, 0.35, 0.28, 0.25, 0.24, 0.235],
    val_loss=[0.40, 0.30, 0.27, 0.255, 0.25, 0.248],
    accuracy=[0.84, 0.90, 0.92, 0.93, 0.935, 0.936],
    val_accuracy=[0.90, 0.92, 0.93, 0.935, 0.936, 0.9365],
)


def only(findings: list[Finding], kind: str) -> Finding:
    matching = [finding for finding in findings if finding.kind == kind]
    assert len(matching) == 1, findings
    return matching[0]


def assert_evidenced(findings: list[Finding]) -> None:
    for finding in findings:
        assert finding.message
        assert finding.suggestion
        assert finding.evidence["epochs"], finding


def test_healthy_history_raises_nothing() -> None:
    assert diagnose(HEALTHY, [], finished=True) == []
    assert diagnose(HEALTHY[:2], [], finished=False) == []
    assert diagnose([], [], finished=False) == []


def test_growing_gap_while_training_loss_falls_is_overfitting() -> None:
    records = history(
        loss=[0.30, 0.20, 0.12, 0.07, 0.04],
        val_loss=[0.28, 0.22, 0.21, 0.23, 0.27],
        accuracy=[0.91, 0.94, 0.965, 0.98, 0.99],
        val_accuracy=[0.92, 0.935, 0.94, 0.939, 0.937],
    )

    findings = diagnose(records, [], finished=True)

    overfitting = only(findings, "overfitting")
    assert overfitting.evidence["epochs"] == [2, 3, 4, 5]
    assert overfitting.evidence["loss_gap"] == [0.02, 0.09, 0.16, 0.23]
    assert "Dropout" in overfitting.suggestion
    assert_evidenced(findings)


def test_gap_that_stops_growing_is_not_overfitting() -> None:
    records = history(
        loss=[0.30, 0.20, 0.12, 0.07, 0.04],
        val_loss=[0.28, 0.22, 0.21, 0.23, 0.20],
    )
    assert "overfitting" not in {finding.kind for finding in diagnose(records, [], finished=True)}


def test_plateau_far_below_what_mnist_allows_is_underfitting() -> None:
    records = history(
        loss=[2.1, 1.9, 1.85, 1.84, 1.84],
        val_accuracy=[0.40, 0.531, 0.531, 0.532, 0.532],
    )

    findings = diagnose(records, [], finished=False)

    underfitting = only(findings, "underfitting")
    assert underfitting.evidence["val_accuracy"] == [0.531, 0.531, 0.532, 0.532]
    assert "0.532" in underfitting.message
    assert_evidenced(findings)


def test_accuracy_still_climbing_at_the_last_epoch_is_too_slow_once_finished() -> None:
    records = history(
        loss=[0.9, 0.7, 0.6, 0.5, 0.45],
        val_accuracy=[0.80, 0.84, 0.86, 0.875, 0.885],
    )

    assert "too_slow" not in {f.kind for f in diagnose(records, [], finished=False)}
    findings = diagnose(records, [], finished=True)

    too_slow = only(findings, "too_slow")
    assert too_slow.evidence["epochs"] == [2, 3, 4, 5]
    assert "more epochs" in too_slow.suggestion
    assert "Adam" in too_slow.suggestion
    assert_evidenced(findings)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_loss_that_is_not_a_number_is_divergence(bad: float) -> None:
    records = history(loss=[0.5, 0.4, bad])

    divergence = only(diagnose(records, [], finished=True), "divergence")

    assert divergence.evidence["epochs"] == [3]
    assert "learning_rate" in divergence.suggestion
    assert "clip" in divergence.suggestion


def test_loss_rising_sharply_is_divergence() -> None:
    records = history(loss=[0.5, 0.3, 0.3 * DIVERGENCE_FACTOR * 1.1, 2.0])

    divergence = only(diagnose(records, [], finished=True), "divergence")

    assert divergence.evidence == {"epochs": [2, 3], "loss": [0.3, 0.495]}
    assert "BatchNormalization" in divergence.suggestion


def test_small_loss_wobble_is_not_divergence() -> None:
    records = history(loss=[0.5, 0.3, 0.31, 0.29])
    assert "divergence" not in {f.kind for f in diagnose(records, [], finished=True)}
