"""An experiment's spec: a Sequential net with its compile and fit arguments, as in Keras."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from service.spec.architecture import ArchitectureError, infer_architecture
from service.spec.base import SpecModel
from service.spec.layers import Layer
from service.spec.suggestions import spec_error
from service.spec.training import CompileSpec, FitSpec


class ExperimentSpec(SpecModel):
    """Everything needed to rebuild and retrain the same model."""

    WHAT: ClassVar[str] = "the experiment"

    layers: list[Layer] = Field(min_length=1, description="Sequential([...]) in order")
    compile: CompileSpec
    fit: FitSpec = Field(default_factory=FitSpec)

    @field_validator("layers")
    @classmethod
    def _net_is_buildable(cls, layers: list[Layer]) -> list[Layer]:
        try:
            infer_architecture(layers)
        except ArchitectureError as error:
            raise spec_error("architecture", str(error)) from None
        return layers

    @model_validator(mode="after")
    def _plateau_needs_a_plain_rate(self) -> ExperimentSpec:
        schedule = self.compile.optimizer.learning_rate
        if self.fit.reduce_lr_on_plateau is not None and isinstance(schedule, SpecModel):
            raise spec_error(
                "reduce_lr_on_plateau",
                f"reduce_lr_on_plateau changes the optimizer's learning rate, which a "
                f"{schedule.type} schedule already sets at every step (Keras refuses both); "
                "give a number as learning_rate, or drop reduce_lr_on_plateau",
            )
        return self

    @property
    def parameter_count(self) -> int:
        return sum(layer.params for layer in infer_architecture(self.layers))
