"""Layer health: what one layer looked like at the end of one epoch, on a fixed probe batch."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# How many validation images the probe batch holds: always the first ones, so that every epoch
# of every experiment is measured on the same images and their figures compare.
PROBE_IMAGES = 512


@dataclass(frozen=True)
class LayerStats:
    depth: int
    """1 for the first layer with weights, 2 for the next, ...: where the layer sits in the net."""
    name: str
    type: str
    weight: str
    """Which weight the norms measure: `kernel`, or `gamma` for BatchNormalization."""
    activation: str
    """The nonlinearity after the layer (its own, or the activation layer that follows it)."""
    gradient_norm: float | None
    """L2 norm of the loss's gradient with respect to the weight, on the probe batch.

    None here and below: not a finite number (the training diverged)."""
    weight_norm: float | None
    update_ratio: float | None
    """How far the epoch moved the weight, relative to its norm: |W_end - W_start| / |W_end|."""
    activation_mean: float | None
    activation_std: float | None
    dead_fraction: float | None
    """ReLU family: the fraction of units never positive on the probe batch (None otherwise)."""
    saturated_fraction: float | None
    """sigmoid, tanh, softmax: the fraction of activations near their bounds (None otherwise)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> LayerStats:
        return cls(**body)


@dataclass(frozen=True)
class EpochLayers:
    """Every measured layer at the end of one epoch, first layer first."""

    epoch: int
    layers: list[LayerStats]
