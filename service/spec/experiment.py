"""An experiment's spec: a Sequential net with its compile and fit arguments, as in Keras."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.spec.architecture import ArchitectureError, infer_architecture
from service.spec.layers import Layer
from service.spec.training import CompileSpec, FitSpec


class ExperimentSpec(BaseModel):
    """Everything needed to rebuild and retrain the same model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layers: list[Layer] = Field(min_length=1, description="Sequential([...]) in order")
    compile: CompileSpec
    fit: FitSpec = Field(default_factory=FitSpec)

    @field_validator("layers")
    @classmethod
    def _net_is_buildable(cls, layers: list[Layer]) -> list[Layer]:
        try:
            infer_architecture(layers)
        except ArchitectureError as error:
            raise ValueError(str(error)) from None
        return layers

    @property
    def parameter_count(self) -> int:
        return sum(layer.params for layer in infer_architecture(self.layers))
