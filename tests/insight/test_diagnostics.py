"""Diagnostics about the history's shape, judged on a table of histories a teacher would label
(every history rule against every case), plus crafted histories for each rule's details.

The notebook's three nets are their Keras histories on full MNIST (SGD at 1e-3, 10 epochs of
32, the first 5,000 images held out, seed 42), rounded to 4 digits. The Adam overfitting run
and the two-epoch SGD run carry the numbers issue 25 reported; the rest are drawn as a
textbook draws each shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from service.domain import EpochRecord
from service.insight.diagnostics import (
    DIVERGENCE_FACTOR,
    Finding,
    diagnose,
)


@dataclass(frozen=True)
class Case:
    name: str
    label: frozenset[str]
    """The findings a teacher reading the curves would give: empty for a healthy run."""
    records: list[EpochRecord]
    finished: bool = True


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


def case(
    name: str,
    *labels: str,
    finished: bool = True,
    loss: list[float],
    val_loss: list[float] | None = None,
    acc: list[float] | None = None,
    val_acc: list[float] | None = None,
) -> Case:
    records = history(loss, val_loss, accuracy=acc, val_accuracy=val_acc)
    return Case(name, frozenset(labels), records, finished)


CASES: list[Case] = [
    # The notebook's three nets: still climbing at epoch 10 (LeakyReLU), settled (BatchNorm)...
    case(
        "notebook-leaky-relu-sgd",
        "too_slow",
        loss=[1.5814, 0.7842, 0.5561, 0.4663, 0.4174, 0.3858, 0.3632, 0.346, 0.3321, 0.3205],
        val_loss=[1.0085, 0.6089, 0.4779, 0.4144, 0.3764, 0.3507, 0.3319, 0.3174, 0.3056, 0.2957],
        acc=[0.5804, 0.8159, 0.8579, 0.8747, 0.8856, 0.8927, 0.8985, 0.9035, 0.9071, 0.9101],
        val_acc=[0.7824, 0.8572, 0.8808, 0.8894, 0.8994, 0.9056, 0.9104, 0.9142, 0.9184, 0.9218],
    ),
    case(
        "notebook-batchnorm-sgd",
        loss=[0.8431, 0.4223, 0.3443, 0.3008, 0.2707, 0.2479, 0.2295, 0.2143, 0.2012, 0.1898],
        val_loss=[0.4299, 0.3223, 0.2758, 0.2479, 0.2285, 0.2142, 0.203, 0.1942, 0.1868, 0.1806],
        acc=[0.7411, 0.8775, 0.9004, 0.9132, 0.9223, 0.9292, 0.9346, 0.9394, 0.9436, 0.9475],
        val_acc=[0.877, 0.9064, 0.9204, 0.9282, 0.9348, 0.9392, 0.9424, 0.945, 0.9468, 0.9474],
    ),
    # ...and the Dropout net still rising at 0.91, below what a softmax regression reaches.
    case(
        "notebook-dropout-sgd",
        "too_slow",
        loss=[1.4105, 0.7821, 0.6374, 0.5716, 0.5315, 0.5021, 0.4825, 0.4641, 0.4499, 0.4415],
        val_loss=[0.734, 0.5223, 0.4419, 0.3996, 0.372, 0.3527, 0.3386, 0.3268, 0.3173, 0.3095],
        acc=[0.5427, 0.7613, 0.8058, 0.8261, 0.8375, 0.8451, 0.8534, 0.8585, 0.8635, 0.866],
        val_acc=[0.8178, 0.8664, 0.8818, 0.8904, 0.8946, 0.9004, 0.9032, 0.9064, 0.9086, 0.9098],
    ),
    # Issue 25: Adam, 8 epochs, full MNIST. Validation loss bottoms at 0.0875 in epoch 2 and ends
    # at 0.1282 while the training loss falls to 0.0189; the gap dips once (0.0745 -> 0.0739).
    case(
        "adam-8-epochs-overfits",
        "overfitting",
        loss=[0.2210, 0.0905, 0.0610, 0.0452, 0.0350, 0.0280, 0.0231, 0.0189],
        val_loss=[0.1043, 0.0875, 0.0893, 0.0962, 0.1095, 0.1019, 0.1137, 0.1282],
        acc=[0.935, 0.972, 0.981, 0.985, 0.988, 0.990, 0.992, 0.993],
        val_acc=[0.968, 0.974, 0.975, 0.974, 0.973, 0.975, 0.973, 0.972],
    ),
    case(
        "small-slice-overfits-fast",
        "overfitting",
        loss=[0.30, 0.20, 0.12, 0.07, 0.04],
        val_loss=[0.28, 0.22, 0.21, 0.23, 0.27],
        acc=[0.91, 0.94, 0.965, 0.98, 0.99],
        val_acc=[0.92, 0.935, 0.94, 0.939, 0.937],
    ),
    # One epoch above the best is noise: EarlyStopping(patience=2) would not stop yet.
    case(
        "adam-one-bump-in-validation",
        loss=[0.30, 0.15, 0.10, 0.08, 0.065, 0.055],
        val_loss=[0.16, 0.12, 0.105, 0.098, 0.095, 0.108],
        acc=[0.91, 0.955, 0.97, 0.976, 0.98, 0.984],
        val_acc=[0.952, 0.964, 0.969, 0.971, 0.972, 0.970],
    ),
    # Validation loss wobbling a few percent around its best once learnt: settled, not overfit.
    case(
        "adam-settled",
        loss=[0.25, 0.11, 0.085, 0.075, 0.07, 0.067, 0.065, 0.064],
        val_loss=[0.12, 0.09, 0.085, 0.082, 0.084, 0.081, 0.083, 0.082],
        acc=[0.93, 0.967, 0.974, 0.977, 0.978, 0.979, 0.98, 0.98],
        val_acc=[0.963, 0.972, 0.974, 0.975, 0.975, 0.976, 0.975, 0.976],
    ),
    case(
        "healthy-settling",
        loss=[0.60, 0.35, 0.28, 0.25, 0.24, 0.235],
        val_loss=[0.40, 0.30, 0.27, 0.255, 0.25, 0.248],
        acc=[0.84, 0.90, 0.92, 0.93, 0.935, 0.936],
        val_acc=[0.90, 0.92, 0.93, 0.935, 0.936, 0.9365],
    ),
    case(
        "adam-two-epochs-done",
        loss=[0.24, 0.10],
        val_loss=[0.12, 0.09],
        acc=[0.93, 0.97],
        val_acc=[0.964, 0.972],
    ),
    # Issue 25: two epochs of SGD at 1e-3 stop near 0.60, mid-climb.
    case(
        "sgd-two-epochs-near-0.60",
        "too_slow",
        loss=[2.0519, 1.4377],
        val_loss=[1.8012, 1.3348],
        acc=[0.3215, 0.5870],
        val_acc=[0.4906, 0.6684],
    ),
    case(
        "sgd-still-climbing",
        "too_slow",
        loss=[0.9, 0.7, 0.6, 0.5, 0.45],
        val_acc=[0.80, 0.84, 0.86, 0.875, 0.885],
    ),
    # Still running: more epochs are coming, so not "too slow" yet.
    case(
        "sgd-climbing-while-running",
        finished=False,
        loss=[0.9, 0.7, 0.6, 0.5, 0.45],
        val_acc=[0.80, 0.84, 0.86, 0.875, 0.885],
    ),
    case(
        "stalled-at-0.53",
        "underfitting",
        finished=False,
        loss=[2.1, 1.9, 1.85, 1.84, 1.84],
        val_acc=[0.40, 0.531, 0.531, 0.532, 0.532],
    ),
    # 8 sigmoid layers with random_normal: chance level, nothing learns.
    case(
        "deep-sigmoid-at-chance",
        "underfitting",
        loss=[2.3021, 2.3013, 2.3012, 2.3012, 2.3011, 2.3011],
        val_loss=[2.3016, 2.3014, 2.3013, 2.3013, 2.3012, 2.3012],
        acc=[0.1105, 0.1124, 0.1124, 0.1125, 0.1124, 0.1124],
        val_acc=[0.1064, 0.1064, 0.1064, 0.1064, 0.1064, 0.1064],
    ),
    case(
        "sgd-learning-rate-too-high",
        "divergence",
        loss=[0.9, 0.6, 1.2, 2.3, 2.31],
        val_loss=[0.7, 0.65, 1.4, 2.3, 2.31],
        acc=[0.75, 0.82, 0.55, 0.11, 0.11],
        val_acc=[0.80, 0.81, 0.40, 0.10, 0.10],
    ),
    case(
        "loss-became-nan",
        "divergence",
        loss=[0.5, 0.4, float("nan")],
        val_loss=[0.45, 0.41, float("nan")],
        acc=[0.86, 0.89, 0.0986],
        val_acc=[0.88, 0.89, 0.0991],
    ),
]


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
