"""Diagnostics about the history's shape, on crafted histories: each kind raised on the history
made to show it, none on a healthy one, and never a finding without its evidence."""

from __future__ import annotations

import math

import pytest

from service.insight.diagnostics import (
    DIVERGENCE_FACTOR,
    Finding,
    diagnose,
)
from tests.insight.labelled_histories import CASES, Case, history

# The rules that read the history alone (the layer rules read layer health, tested apart).
HISTORY_RULES = ("overfitting", "underfitting", "too_slow", "divergence")


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


@pytest.mark.parametrize("rule", HISTORY_RULES)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_rule_fires_on_exactly_the_cases_labelled_with_it(rule: str, case: Case) -> None:
    findings = diagnose(case.records, [], finished=case.finished)

    assert (rule in {finding.kind for finding in findings}) == (rule in case.label), findings
    assert_evidenced(findings)


def test_the_table_holds_each_rule_and_a_healthy_run() -> None:
    labels = [case.label for case in CASES]
    assert frozenset() in labels
    for rule in HISTORY_RULES:
        assert sum(rule in label for label in labels) >= 2, rule


def test_overfitting_names_the_best_epoch_as_early_stopping_would() -> None:
    adam = next(case for case in CASES if case.name == "adam-8-epochs-overfits")

    overfitting = only(diagnose(adam.records, [], finished=True), "overfitting")

    assert overfitting.evidence["best_epoch"] == 2
    assert overfitting.evidence["epochs"] == [2, 3, 4, 5, 6, 7, 8]
    assert overfitting.evidence["val_loss"][0] == 0.0875
    assert overfitting.evidence["val_loss"][-1] == 0.1282
    assert "lowest at epoch 2 (0.0875)" in overfitting.message
    assert "0.0189" in overfitting.message
    assert overfitting.suggestion.startswith("stop at epoch 2")
    assert "regularise: Dropout (rate 0.2), BatchNormalization, l2" in overfitting.suggestion


def test_overfitting_waits_for_patience_epochs_after_the_best() -> None:
    records = history(loss=[0.30, 0.20, 0.12, 0.07], val_loss=[0.28, 0.22, 0.21, 0.27])
    assert "overfitting" not in {f.kind for f in diagnose(records, [], finished=True)}
    records = history(loss=[0.30, 0.20, 0.12, 0.07, 0.05], val_loss=[0.28, 0.22, 0.21, 0.27, 0.3])
    assert "overfitting" in {f.kind for f in diagnose(records, [], finished=True)}


def test_two_epochs_of_sgd_near_0_60_are_too_slow() -> None:
    sgd = next(case for case in CASES if case.name == "sgd-two-epochs-near-0.60")

    too_slow = only(diagnose(sgd.records, [], finished=True), "too_slow")

    assert too_slow.evidence == {"epochs": [1, 2], "val_accuracy": [0.4906, 0.6684]}
    assert "ending at 0.668" in too_slow.message
    assert "more epochs" in too_slow.suggestion


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
