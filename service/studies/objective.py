"""A study's objective: which per-epoch metric it ranks trials by, and which way is better."""

from __future__ import annotations

from service.domain import EpochRecord, ObjectiveMetric

DEFAULT_OBJECTIVE: ObjectiveMetric = "val_accuracy"


def maximises(metric: ObjectiveMetric) -> bool:
    return metric.endswith("accuracy")


def per_epoch(history: list[EpochRecord], metric: ObjectiveMetric) -> dict[int, float]:
    """The metric at each epoch that has a finite value of it."""
    values: dict[int, float] = {}
    for record in history:
        value = getattr(record, metric)
        if value is not None and value == value:  # NaN: a diverged epoch has no value
            values[record.epoch] = float(value)
    return values


def best(history: list[EpochRecord], metric: ObjectiveMetric) -> tuple[float, int] | None:
    """The best value of the metric over the epochs and the (first) epoch that reached it."""
    values = per_epoch(history, metric)
    if not values:
        return None
    pick = max if maximises(metric) else min
    value = pick(values.values())
    return value, min(epoch for epoch, v in values.items() if v == value)
