"""What differs between experiments' specs, and their histories aligned epoch by epoch."""

from __future__ import annotations

from typing import Any

from service.charts import METRICS
from service.domain import EpochRecord

MISSING = object()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a spec by its path (`compile.optimizer.learning_rate`, `layers[1].units`).

    Lists of scalars (`metrics`, `target_shape`) are leaves.
    """
    if isinstance(value, dict):
        found: dict[str, Any] = {}
        for key, item in value.items():
            found.update(flatten(item, f"{prefix}.{key}" if prefix else key))
        return found
    if isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        found = {}
        for index, item in enumerate(value):
            found.update(flatten(item, f"{prefix}[{index}]"))
        return found
    return {prefix: value}


def differences(specs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The paths whose values are not the same in every spec, with each spec's value (None
    where a spec has no such place, e.g. a layer that only a deeper net has)."""
    flat = [flatten(spec) for spec in specs]
    paths: list[str] = []
    for one in flat:
        paths += [path for path in one if path not in paths]
    diff: dict[str, list[Any]] = {}
    for path in paths:
        values = [one.get(path, MISSING) for one in flat]
        if any(value != values[0] for value in values[1:]):
            diff[path] = [None if value is MISSING else value for value in values]
    return diff


def aligned(
    histories: list[list[EpochRecord]],
) -> tuple[list[int], list[dict[str, list[float | None]]]]:
    """Epochs 1..longest, and per run each metric at those epochs (None past its end)."""
    longest = max((len(history) for history in histories), default=0)
    epochs = list(range(1, longest + 1))
    series: list[dict[str, list[float | None]]] = []
    for history in histories:
        by_epoch = {record.epoch: record for record in history}
        series.append(
            {
                metric: [
                    _finite(getattr(by_epoch[e], metric)) if e in by_epoch else None for e in epochs
                ]
                for metric in METRICS
            }
        )
    return epochs, series


def _finite(value: float | None) -> float | None:
    return value if value is not None and value == value else None
