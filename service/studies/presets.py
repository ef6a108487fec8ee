"""The notebook's own questions as ready-made studies: a base spec and one grid axis, labelled.

`optimizers`: the LeakyReLU net with each optimiser of chapter 11, with the notebook's exact
arguments (learning rate 0.001 throughout). `batchnorm`: the BatchNormalization net with and
without its BatchNormalization layers. `dropout`: the Dropout net with and without Dropout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from service.spec.notebook import Spec, notebook_layers, notebook_spec

PresetName = Literal["optimizers", "batchnorm", "dropout"]


@dataclass(frozen=True)
class Variant:
    label: str
    value: Any


@dataclass(frozen=True)
class Preset:
    base: Spec
    path: str
    variants: tuple[Variant, ...]


def _lr(optimizer: str, **arguments: Any) -> Spec:
    return {"type": optimizer, "learning_rate": 0.001, **arguments}


OPTIMIZERS: tuple[Variant, ...] = (
    Variant("SGD", _lr("SGD")),
    Variant("SGD momentum 0.9", _lr("SGD", momentum=0.9)),
    Variant("SGD Nesterov 0.9", _lr("SGD", momentum=0.9, nesterov=True)),
    Variant("Adagrad", _lr("Adagrad")),
    Variant("RMSprop", _lr("RMSprop", rho=0.9)),
    Variant("Adam", _lr("Adam", beta_1=0.9, beta_2=0.999)),
    Variant("Adamax", _lr("Adamax", beta_1=0.9, beta_2=0.999)),
    Variant("Nadam", _lr("Nadam", beta_1=0.9, beta_2=0.999)),
)


def _without(net: str, layer_type: str) -> list[Spec]:
    return [layer for layer in notebook_layers(net) if layer["type"] != layer_type]


def preset(name: PresetName) -> Preset:
    """A fresh copy of one preset."""
    if name == "optimizers":
        return Preset(notebook_spec("leaky_relu"), "compile.optimizer", OPTIMIZERS)
    if name == "batchnorm":
        variants = (
            Variant("plain", _without("batchnorm", "BatchNormalization")),
            Variant("BatchNormalization", notebook_layers("batchnorm")),
        )
        return Preset(notebook_spec("batchnorm"), "layers", variants)
    variants = (
        Variant("without Dropout", _without("dropout", "Dropout")),
        Variant("with Dropout", notebook_layers("dropout")),
    )
    return Preset(notebook_spec("dropout"), "layers", variants)
