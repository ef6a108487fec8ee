"""Diagnostics: what a history and its layer health say went wrong, with evidence and a cure.

Pure functions of the recorded epochs and layer statistics, so they are computed on every
read and follow a running experiment epoch by epoch. Each finding names its kind, says what
happened in plain words, carries the epochs and numbers that show it, and suggests what the
notebook's chapter would try next. No evidence, no finding.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.domain import EpochRecord
from service.insight.layers import EpochLayers, LayerStats

OVERFITTING_PATIENCE = 2
"""Epochs since the validation loss was at its best before a rise counts, as Keras's
EarlyStopping(patience=2) would stop: one epoch above the best is SGD's noise."""
OVERFITTING_RISE = 0.10
"""...and the last validation loss must stand this far (10%) above the best: clearly risen, not
wobbling around it (EarlyStopping's min_delta, relative to the loss)."""
OVERFITTING_MIN_LOSS_GAP = 0.02
"""...and end at least this far above the training loss, so that a tiny rise of two tiny losses
(a net near perfect on both sets) raises nothing."""

STILL_CLIMBING_EPOCHS = 3
STILL_CLIMBING_PER_EPOCH = 0.003
"""Validation accuracy gaining a third of a point per epoch over the last 3 epochs: more epochs
(or a faster optimiser) would still pay; the notebook's SGD at 1e-3 is in this regime. A run
that ended below REACHABLE_ACCURACY still rising at every epoch (2 or 3 of them if that is all
it has) is stopped mid-climb too: two epochs of SGD at 0.60, the notebook's Dropout net at 0.91
after 10; two epochs of Adam at 0.97 are done."""
PLATEAU_EPOCHS = 3
PLATEAU_CHANGE = 0.002
"""A plateau: validation accuracy moves less than this over the last 3 epochs."""
REACHABLE_ACCURACY = 0.92
"""A plain softmax regression (Flatten, Dense 10) reaches about 0.92 on MNIST; a net that levels
off below it has stopped learning what even the smallest model learns: it underfits."""

DIVERGENCE_FACTOR = 1.5
"""A training loss 50% above its best so far: SGD noise and Dropout move it by a few percent,
so a jump this big means the steps are too large (or NaN/infinite, which always diverged)."""

GRADIENT_RATIO = 100.0
"""Kernel gradient norms of the first and last layers two orders of magnitude apart: the
chapter's vanishing (first layers barely learn) or exploding gradients. The notebook's
LeakyReLU + He net stays within a factor of 3; 8 sigmoid layers with random_normal, 1e6."""
DEAD_FRACTION = 0.5
"""Half of a ReLU layer's units never positive on the probe batch: they receive no gradient
and (almost always) never come back, so the layer works at half its width or less."""
SATURATED_FRACTION = 0.5
"""Half of a sigmoid/tanh layer's activations within 0.01 of a bound, where the slope (hence
the gradient passed down) is nearly 0."""


@dataclass(frozen=True)
class Finding:
    kind: str
    message: str
    evidence: dict[str, Any]
    suggestion: str


def diagnose(
    history: Sequence[EpochRecord], layers: Sequence[EpochLayers], *, finished: bool
) -> list[Finding]:
    """Every finding the epochs so far support; `finished`: no more epochs will come."""
    checks = [
        _divergence(history),
        _overfitting(history),
        _underfitting(history, finished=finished),
        _gradients(layers),
        _dying_relus(layers),
        _saturation(layers),
    ]
    return [finding for finding in checks if finding is not None]


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def _divergence(history: Sequence[EpochRecord]) -> Finding | None:
    suggestion = (
        "lower the learning_rate (by 10x), clip gradients (clipnorm=1.0), or add BatchNormalization"
    )
    best: EpochRecord | None = None
    for record in history:
        if not math.isfinite(record.loss):
            return Finding(
                kind="divergence",
                message=f"the training loss became NaN or infinite at epoch {record.epoch}",
                evidence={"epochs": [record.epoch], "loss": None},
                suggestion=suggestion,
            )
        if best is not None and record.loss > DIVERGENCE_FACTOR * best.loss:
            return Finding(
                kind="divergence",
                message=(
                    f"the training loss rose from {best.loss:.3g} (epoch {best.epoch}) to "
                    f"{record.loss:.3g} (epoch {record.epoch}): the optimiser overshoots"
                ),
                evidence={
                    "epochs": [best.epoch, record.epoch],
                    "loss": [_round(best.loss), _round(record.loss)],
                },
                suggestion=suggestion,
            )
        if best is None or record.loss < best.loss:
            best = record
    return None


def _overfitting(history: Sequence[EpochRecord]) -> Finding | None:
    """Judged as EarlyStopping(monitor="val_loss", patience=2) and a person reading the curves
    would: the validation loss has not beaten its best for OVERFITTING_PATIENCE epochs, ends
    clearly above it, and the training loss still falls meanwhile."""
    if len(history) < OVERFITTING_PATIENCE + 1 or not all(
        record.val_loss is not None and math.isfinite(record.val_loss) for record in history
    ):
        return None
    best = min(history, key=lambda record: record.val_loss or 0.0)
    best_loss = best.val_loss or 0.0
    last = history[-1]
    since = [record for record in history if record.epoch > best.epoch]
    if len(since) < OVERFITTING_PATIENCE:
        return None
    risen = (last.val_loss or 0.0) >= best_loss * (1 + OVERFITTING_RISE)
    falling = last.loss < history[-(OVERFITTING_PATIENCE + 1)].loss and last.loss < best.loss
    gap = (last.val_loss or 0.0) - last.loss
    if not (risen and falling and gap >= OVERFITTING_MIN_LOSS_GAP):
        return None
    window = [best, *since]
    accuracy = ""
    if last.accuracy is not None and last.val_accuracy is not None:
        accuracy = f" (accuracy {last.accuracy:.3g} on training vs {last.val_accuracy:.3g})"
    return Finding(
        kind="overfitting",
        message=(
            f"the validation loss was lowest at epoch {best.epoch} ({best_loss:.3g}) and rose "
            f"to {last.val_loss:.3g} by epoch {last.epoch}, while the training loss kept "
            f"falling, to {last.loss:.3g}{accuracy}: the net memorises the training images"
        ),
        evidence={
            "epochs": [record.epoch for record in window],
            "best_epoch": best.epoch,
            "loss": [_round(record.loss) for record in window],
            "val_loss": [_round(record.val_loss or 0.0) for record in window],
        },
        suggestion=(
            f"stop at epoch {best.epoch} (fit.epochs {best.epoch}, or early_stopping on "
            "val_loss with restore_best_weights), or regularise: Dropout (rate 0.2), "
            "BatchNormalization, l2 kernel_regularizer"
        ),
    )


# What an underfitting net should try, whether it stalled or ran out of epochs.
_UNDERFITTING_ADVICE = (
    "train more epochs, raise the learning_rate, or use an adaptive optimiser (Adam)"
)


def _accuracy_evidence(metric: str, points: Sequence[tuple[int, float]]) -> dict[str, Any]:
    return {
        "epochs": [epoch for epoch, _ in points],
        f"{'val_' if metric == 'validation' else ''}accuracy": [
            _round(score) for _, score in points
        ],
    }


def _plateau(known: Sequence[tuple[int, float]], metric: str) -> Finding | None:
    """Accuracy flat over the last epochs, and low: the net is not learning."""
    plateau = known[-(PLATEAU_EPOCHS + 1) :]
    if len(plateau) < PLATEAU_EPOCHS + 1:
        return None
    values = [score for _, score in plateau]
    if max(values) - min(values) >= PLATEAU_CHANGE or values[-1] >= REACHABLE_ACCURACY:
        return None
    return Finding(
        kind="underfitting",
        message=(
            f"{metric} accuracy levelled off at {values[-1]:.3g} from epoch "
            f"{plateau[0][0]} to {plateau[-1][0]}, below the {REACHABLE_ACCURACY} a "
            "plain softmax regression reaches on MNIST: the net is not learning"
        ),
        evidence=_accuracy_evidence(metric, plateau),
        suggestion=(
            f"{_UNDERFITTING_ADVICE}; check for vanishing gradients or saturated units below, "
            "and use He initialisation with ReLU-family activations"
        ),
    )


def _still_climbing(known: Sequence[tuple[int, float]], metric: str) -> Finding | None:
    """Accuracy still rising at the last epoch, steadily or from too low: stopped too soon."""
    climb = known[-(STILL_CLIMBING_EPOCHS + 1) :]
    if len(climb) < 2:
        return None
    gains = [later - earlier for (_, earlier), (_, later) in itertools.pairwise(climb)]
    final = climb[-1][1]
    steady = len(climb) == STILL_CLIMBING_EPOCHS + 1 and all(
        gain >= STILL_CLIMBING_PER_EPOCH for gain in gains
    )
    low = final < REACHABLE_ACCURACY and all(gain > 0 for gain in gains)
    if not (steady or low):
        return None
    per_epoch = sum(gains) / len(gains)
    below = f", below the {REACHABLE_ACCURACY} a plain softmax regression reaches" if low else ""
    return Finding(
        kind="too_slow",
        message=(
            f"{metric} accuracy was still climbing at the last epoch "
            f"(+{per_epoch * 100:.2g} points per epoch over epochs {climb[0][0]} to "
            f"{climb[-1][0]}, ending at {final:.3g}{below}): the training ended before the "
            "net finished learning"
        ),
        evidence=_accuracy_evidence(metric, climb),
        suggestion=_UNDERFITTING_ADVICE,
    )


def _underfitting(history: Sequence[EpochRecord], *, finished: bool) -> Finding | None:
    scores = [
        (record.epoch, record.val_accuracy if record.val_accuracy is not None else record.accuracy)
        for record in history
    ]
    known = [(epoch, score) for epoch, score in scores if score is not None]
    metric = "validation" if history and history[-1].val_accuracy is not None else "training"
    found = _plateau(known, metric)
    if found is None and finished:
        found = _still_climbing(known, metric)
    return found


def _kernels(epoch: EpochLayers) -> list[LayerStats]:
    return [layer for layer in epoch.layers if layer.weight == "kernel"]


def _gradient_ratio(epoch: EpochLayers) -> float | None:
    """Last kernel's gradient norm over the first's: > 1 vanishing, < 1 exploding, inf NaN."""
    kernels = _kernels(epoch)
    if len(kernels) < 2:
        return None
    first, last = kernels[0].gradient_norm, kernels[-1].gradient_norm
    if first is None or last is None:
        return 0.0  # a non-finite gradient: treated as exploding
    if first == 0.0:
        return math.inf if last > 0 else None
    return last / first


def _gradients(layers: Sequence[EpochLayers]) -> Finding | None:
    if not layers:
        return None
    latest = layers[-1]
    ratio = _gradient_ratio(latest)
    if ratio is None or 1 / GRADIENT_RATIO < ratio < GRADIENT_RATIO:
        return None
    vanishing = ratio >= GRADIENT_RATIO
    held = [
        epoch.epoch
        for epoch in layers
        if (r := _gradient_ratio(epoch)) is not None
        and (r >= GRADIENT_RATIO if vanishing else r <= 1 / GRADIENT_RATIO)
    ]
    kernels = _kernels(latest)
    norms = {layer.name: layer.gradient_norm for layer in kernels}
    evidence: dict[str, Any] = {
        "epochs": held,
        "epoch": latest.epoch,
        "gradient_norms": {
            name: None if norm is None else _round(norm) for name, norm in norms.items()
        },
    }
    if vanishing:
        return _vanishing(latest, kernels, ratio, evidence)
    return _exploding(latest, kernels, ratio, evidence)


def _vanishing(
    latest: EpochLayers, kernels: list[LayerStats], ratio: float, evidence: dict[str, Any]
) -> Finding:
    shown = "more than 1e308" if math.isinf(ratio) else f"{ratio:.2g}"
    evidence["ratio_last_to_first"] = None if math.isinf(ratio) else _round(ratio)
    return Finding(
        kind="vanishing_gradients",
        message=(
            f"at epoch {latest.epoch} the gradient reaching the first layer "
            f"({kernels[0].name}) is {shown} times smaller than at the last "
            f"({kernels[-1].name}): the lower layers barely learn"
        ),
        evidence=evidence,
        suggestion=(
            "use He initialisation (kernel_initializer he_normal) with a non-saturating "
            "activation (LeakyReLU, elu, or selu with lecun_normal), or add "
            "BatchNormalization"
        ),
    )


def _exploding(
    latest: EpochLayers, kernels: list[LayerStats], ratio: float, evidence: dict[str, Any]
) -> Finding:
    """`ratio` 0 stands for a gradient that is not a finite number."""
    evidence["ratio_first_to_last"] = None if ratio == 0 else _round(1 / ratio)
    return Finding(
        kind="exploding_gradients",
        message=(
            f"at epoch {latest.epoch} the gradient reaching the first layer ({kernels[0].name}) "
            f"is {'not a finite number' if ratio == 0 else f'{1 / ratio:.2g} times larger than'}"
            f"{'' if ratio == 0 else f' at the last ({kernels[-1].name})'}: updates blow up"
        ),
        evidence=evidence,
        suggestion=(
            "lower the learning_rate, clip gradients (clipnorm=1.0), use He or Glorot "
            "initialisation, or add BatchNormalization"
        ),
    )


def _hidden(epoch: EpochLayers) -> list[LayerStats]:
    """Every measured layer but the output: a softmax near its bounds is a confident answer."""
    return epoch.layers[:-1]


def _layers_over(
    layers: Sequence[EpochLayers], fraction: str, threshold: float
) -> tuple[EpochLayers, dict[str, float], str] | None:
    """The latest epoch, its hidden layers whose `fraction` is at least `threshold`, the worst."""
    if not layers:
        return None
    latest = layers[-1]
    over = {
        layer.name: _round(value)
        for layer in _hidden(latest)
        if (value := getattr(layer, fraction)) is not None and value >= threshold
    }
    if not over:
        return None
    return latest, over, max(over, key=lambda name: over[name])


def _dying_relus(layers: Sequence[EpochLayers]) -> Finding | None:
    found = _layers_over(layers, "dead_fraction", DEAD_FRACTION)
    if found is None:
        return None
    latest, dead, worst = found
    return Finding(
        kind="dying_relu",
        message=(
            f"at epoch {latest.epoch}, {dead[worst]:.0%} of {worst}'s ReLU units never fire on "
            "the probe images: dead units get no gradient and stop learning"
        ),
        evidence={"epochs": [latest.epoch], "dead_fraction": dead},
        suggestion=(
            "use LeakyReLU or elu instead of relu, He initialisation, or a lower learning_rate"
        ),
    )


def _saturation(layers: Sequence[EpochLayers]) -> Finding | None:
    found = _layers_over(layers, "saturated_fraction", SATURATED_FRACTION)
    if found is None:
        return None
    latest, saturated, worst = found
    activation = next(layer.activation for layer in latest.layers if layer.name == worst)
    return Finding(
        kind="saturation",
        message=(
            f"at epoch {latest.epoch}, {saturated[worst]:.0%} of {worst}'s {activation} "
            "activations sit at their bounds, where the slope and so the gradient are near 0"
        ),
        evidence={"epochs": [latest.epoch], "saturated_fraction": saturated},
        suggestion=(
            "use a non-saturating activation (LeakyReLU, elu, selu), Glorot or He "
            "initialisation so activations start in the linear range, or BatchNormalization"
        ),
    )
