"""What differs between experiments' specs, and their histories aligned epoch by epoch."""

from __future__ import annotations

import difflib
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


# Layers that only apply an activation: folded into the Dense or Conv2D before them, so that
# `Dense 300` + `LeakyReLU` reads as one layer whose activation is LeakyReLU.
_ACTIVATION_LAYERS = {"Activation", "LeakyReLU", "ReLU", "ELU", "PReLU"}
_DEFAULT_SLOPE = {"LeakyReLU": 0.3, "ReLU": 0.0}
_WEIGHTED = {"Dense", "Conv2D"}
_KEY_ORDER = {"units": 0, "filters": 0, "rate": 0, "activation": 1}
"""A changed layer's size first, then its activation, then the rest in the spec's order."""
_SIZE = {"Dense": "units", "Conv2D": "filters", "Dropout": "rate", "AlphaDropout": "rate"}


def _activation_of(layer: dict[str, Any]) -> str:
    kind = layer["type"]
    if kind == "Activation":
        return str(layer["activation"])
    slope = layer.get("negative_slope")
    if slope is not None and slope != _DEFAULT_SLOPE.get(kind, slope):
        return f"{kind}({slope:g})"
    return str(kind)


def folded(layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The layer list as a learner reads it: Input dropped, an activation layer merged into the
    Dense or Conv2D before it (whose own activation was None), None values left out."""
    result: list[dict[str, Any]] = []
    for layer in layers:
        if layer["type"] == "Input":
            continue
        previous = result[-1] if result else None
        if (
            layer["type"] in _ACTIVATION_LAYERS
            and previous is not None
            and previous["type"] in _WEIGHTED
            and previous.get("activation") in (None, "linear")
        ):
            previous["activation"] = _activation_of(layer)
            continue
        result.append({key: value for key, value in layer.items() if value is not None})
    for layer in result:
        if layer["type"] in _WEIGHTED:
            layer.setdefault("activation", "linear")
    return result


def layer_name(layer: dict[str, Any]) -> str:
    """`Dense 300`, `Dropout 0.2`, `Conv2D 32`, `Flatten`."""
    size = layer.get(_SIZE.get(layer["type"], ""))
    return f"{layer['type']} {size:g}" if isinstance(size, int | float) else str(layer["type"])


def net_summary(layers: list[dict[str, Any]]) -> str:
    """`Flatten, Dense 300 LeakyReLU, Dense 100 LeakyReLU, Dense 10 softmax`."""
    return ", ".join(
        f"{layer_name(layer)} {layer['activation']}" if "activation" in layer else layer_name(layer)
        for layer in folded(layers)
    )


def _which(indices: list[int], reference: list[dict[str, Any]], kind: str) -> str:
    """The reference layers at `indices`, said briefly: `each hidden Dense` when they are all
    of one type but the output layer, else their names."""
    same_type = [i for i, layer in enumerate(reference) if layer["type"] == kind]
    hidden = [i for i in same_type if i != len(reference) - 1]
    if len(indices) > 1 and sorted(indices) == hidden:
        return f"hidden {kind}"
    return ", ".join(layer_name(reference[i]) for i in indices)


def _places(anchors: list[int], reference: list[dict[str, Any]]) -> str:
    """Where inserted or removed layers sit: `after Flatten, after each hidden Dense`."""
    words: list[str] = []
    if -1 in anchors:
        words.append("at the start")
    by_type: dict[str, list[int]] = {}
    for index in dict.fromkeys(anchors):
        if index >= 0:
            by_type.setdefault(reference[index]["type"], []).append(index)
    for kind, indices in by_type.items():
        which = _which(indices, reference, kind)
        words.append(f"after {'each ' if which.startswith('hidden') else ''}{which}")
    return ", ".join(words)


def _value(value: Any) -> str:
    if isinstance(value, dict) and "type" in value:
        arguments = ", ".join(f"{k}={v!r}" for k, v in value.items() if k != "type")
        return f"{value['type']}({arguments})"
    return f"{value:g}" if isinstance(value, float) else str(value)


Block = tuple[list[int], int]
"""Consecutive layers added (indices into the other list) or removed (into the reference),
and the reference index they follow (-1: the start)."""


def _pairs(
    reference: list[dict[str, Any]], other: list[dict[str, Any]]
) -> tuple[list[tuple[int, int]], list[Block], list[Block]]:
    """Aligned (reference, other) index pairs, the blocks of layers added and removed. Layers
    are first lined up by name (type and size, as a diff lines up equal lines), then, within
    each stretch that differs, by type alone: Dense 100 against Dense 50 is one layer changed."""
    pairs: list[tuple[int, int]] = []
    added: list[Block] = []
    removed: list[Block] = []

    def align(keys: Any, i0: int, i_end: int, j0: int, j_end: int, fine: bool) -> None:
        matcher = difflib.SequenceMatcher(
            None,
            [keys(layer) for layer in reference[i0:i_end]],
            [keys(layer) for layer in other[j0:j_end]],
            False,
        )
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            i1, i2, j1, j2 = i1 + i0, i2 + i0, j1 + j0, j2 + j0
            if tag == "equal":
                pairs.extend(zip(range(i1, i2), range(j1, j2), strict=True))
            elif tag == "replace" and fine:
                align(lambda layer: layer["type"], i1, i2, j1, j2, False)
            else:
                if j2 > j1:
                    added.append((list(range(j1, j2)), i1 - 1))
                if i2 > i1:
                    removed.append((list(range(i1, i2)), i1 - 1))

    align(layer_name, 0, len(reference), 0, len(other), True)
    return pairs, added, removed


def layer_changes(
    reference_layers: list[dict[str, Any]], layers: list[dict[str, Any]]
) -> list[str]:
    """`layers` against `reference_layers`, aligned as a diff aligns lines (difflib), in a
    learner's words: `+ BatchNormalization after Flatten, after each hidden Dense`,
    `- Dropout 0.2 after Flatten`, `hidden Dense: activation LeakyReLU -> relu`."""
    reference, other = folded(reference_layers), folded(layers)
    pairs, inserted, deleted = _pairs(reference, other)
    added: dict[str, list[int]] = {}
    for block, anchor in inserted:
        added.setdefault(", ".join(layer_name(other[j]) for j in block), []).append(anchor)
    removed: dict[str, list[int]] = {}
    for block, anchor in deleted:
        removed.setdefault(", ".join(layer_name(reference[i]) for i in block), []).append(anchor)
    changed: dict[tuple[str, str, str, str], list[int]] = {}
    for i, j in pairs:
        before, after = reference[i], other[j]
        for key in [*before, *(k for k in after if k not in before)]:
            if key != "type" and before.get(key) != after.get(key):
                change = (before["type"], key, _value(before.get(key)), _value(after.get(key)))
                changed.setdefault(change, []).append(i)
    lines = [f"+ {name} {_places(anchors, reference)}" for name, anchors in added.items()]
    lines += [f"- {name} {_places(anchors, reference)}" for name, anchors in removed.items()]
    lines += [
        f"{_which(indices, reference, kind)}: {key} {before} -> {after}"
        for (kind, key, before, after), indices in sorted(
            changed.items(), key=lambda item: _KEY_ORDER.get(item[0][1], len(_KEY_ORDER))
        )
    ]
    return lines
