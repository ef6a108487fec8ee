"""Predictions and the models that make them: requests, answers, model listings and aliases.

Image fields are typed loosely on purpose: validating 784 floats one by one in pydantic costs
far more than one numpy pass in `service.images`, which also says precisely what is wrong.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from service.domain import (
    ALIAS_PATTERN,
    BEST,
    EXPERIMENT_ID_PATTERN,
    REFERENCE_PATTERN,
    Alias,
    ImagesToPredict,
    ServableModel,
    alias_problem,
    reference_problem,
)
from service.mnist import PIXELS, SIDE, AssumedScale, Scale
from service.schemas.openapi import exactly_one_of

_PIXEL = {"type": "number", "minimum": 0, "maximum": 255}
_ROWS = {
    "type": "array",
    "minItems": SIDE,
    "maxItems": SIDE,
    "items": {"type": "array", "minItems": SIDE, "maxItems": SIDE, "items": _PIXEL},
}
_FLAT = {"type": "array", "minItems": PIXELS, "maxItems": PIXELS, "items": _PIXEL}
PixelImage = Annotated[
    list[Any],
    WithJsonSchema(
        {
            "anyOf": [_ROWS, _FLAT],
            "description": f"{SIDE} rows of {SIDE} pixel values, or {PIXELS} values row by "
            "row; light digit on black as in MNIST, values 0-255 or 0-1 (see `scale`)",
        }
    ),
]
INPUT_FIELDS = ("image", "images", "image_base64", "images_base64")


def _experiment_id_problem(value: str) -> str | None:
    if EXPERIMENT_ID_PATTERN.fullmatch(value):
        return None
    return (
        f"{value!r} is not an experiment id: an id is 32 hexadecimal digits, as "
        "GET /experiments lists them"
    )


def _refusing(problem_of: Callable[[str], str | None]) -> AfterValidator:
    """A validator that refuses a string with the message `problem_of` gives for it."""

    def check(value: str) -> str:
        problem = problem_of(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    return AfterValidator(check)


ExperimentId = Annotated[
    str,
    _refusing(_experiment_id_problem),
    WithJsonSchema({"type": "string", "pattern": EXPERIMENT_ID_PATTERN.pattern}),
]
AliasName = Annotated[
    str,
    _refusing(alias_problem),
    # Documents the pattern; alias_problem checks it, with the message registry.set_alias gives.
    WithJsonSchema({"type": "string", "pattern": ALIAS_PATTERN.pattern}),
]
ModelName = Annotated[
    str,
    _refusing(reference_problem),
    WithJsonSchema({"type": "string", "pattern": REFERENCE_PATTERN.pattern}),
    Field(
        description="'best' (highest test accuracy), 'latest' (most recently finished), "
        "an alias, or an experiment id"
    ),
]


class PredictRequest(BaseModel):
    """Exactly one of `image`, `images`, `image_base64`, `images_base64`."""

    BODY_REQUIRES: ClassVar[str] = (
        "a JSON object with exactly one of image (28x28 pixel values), images, image_base64 "
        "(a PNG or JPEG) or images_base64"
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"image": [[0] * SIDE] * SIDE, "model": BEST}],
            "oneOf": exactly_one_of(INPUT_FIELDS),
        },
    )

    image: PixelImage | None = None
    images: list[PixelImage] | None = Field(
        default=None, min_length=1, description="a batch, answered in order"
    )
    image_base64: str | None = Field(
        default=None,
        description="a PNG or JPEG file, base64-encoded or as a data:image/...;base64, URL; "
        "any size and polarity: it is normalised the way MNIST was",
    )
    images_base64: list[str] | None = Field(
        default=None, min_length=1, description="a batch of those, answered in order"
    )
    scale: Scale = Field(
        default="auto",
        description="range of pixel values: 'auto' takes 0-255 when any value is above 1, "
        "else 0-1, and reports what it assumed",
    )
    model: ModelName = BEST
    return_input: bool = Field(
        default=False,
        description="also answer `input`: the 28x28 image (0-1) the model saw after normalisation",
    )

    @model_validator(mode="after")
    def _exactly_one_input(self) -> PredictRequest:
        given = [name for name in INPUT_FIELDS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of {', '.join(INPUT_FIELDS)}; "
                + (f"got {' and '.join(given)}" if given else "got none")
            )
        return self

    @property
    def is_batch(self) -> bool:
        return self.images is not None or self.images_base64 is not None

    def images_to_predict(self) -> ImagesToPredict:
        """The request as the domain takes it: each image beside the field that gave it."""
        pixels = [("image", self.image)] if self.image is not None else []
        pixels += [(f"images[{index}]", values) for index, values in enumerate(self.images or [])]
        encoded = [("image_base64", self.image_base64)] if self.image_base64 is not None else []
        encoded += [
            (f"images_base64[{index}]", text) for index, text in enumerate(self.images_base64 or [])
        ]
        return ImagesToPredict(self.model, tuple(pixels), tuple(encoded), self.scale)

    @property
    def batch_size(self) -> int:
        if self.images is not None:
            return len(self.images)
        if self.images_base64 is not None:
            return len(self.images_base64)
        return 1


class ModelRef(BaseModel):
    """Which model answered."""

    experiment_id: str
    name: str
    test_accuracy: float | None

    @classmethod
    def of(cls, model: ServableModel) -> ModelRef:
        return cls(
            experiment_id=model.experiment_id, name=model.name, test_accuracy=model.test_accuracy
        )


class PredictionPublic(BaseModel):
    digit: int = Field(ge=0, le=9)
    probabilities: list[float] = Field(
        min_length=10, max_length=10, description="one per digit 0-9, summing to 1"
    )
    assumed_scale: AssumedScale | None = Field(
        default=None, description="the pixel range the values were read in; null for PNG/JPEG"
    )
    # Only with `return_input`; absent otherwise, so the default answer stays as small as before.
    input: list[list[float]] | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="with return_input: the 28x28 image (0-1, light on black) the model saw",
    )

    @classmethod
    def of(
        cls,
        probabilities: Sequence[float],
        assumed_scale: AssumedScale | None,
        seen: np.ndarray | None = None,
    ) -> PredictionPublic:
        """One image's answer; with `seen` (the 28x28 image the model was given), its `input`."""
        return cls(**_prediction_fields(probabilities, assumed_scale, seen))


def _prediction_fields(
    probabilities: Sequence[float], assumed_scale: AssumedScale | None, seen: np.ndarray | None
) -> dict[str, Any]:
    values = [float(value) for value in probabilities]
    return {
        "digit": max(range(len(values)), key=values.__getitem__),
        "probabilities": values,
        "assumed_scale": assumed_scale,
        # Three decimals: finer than a screen's 256 grey levels, a third of the JSON.
        "input": None if seen is None else np.round(seen, 3).tolist(),
    }


class PredictResponse(PredictionPublic):
    """One image's answer: `{"digit": 7, "probabilities": [...], "model": {...}}`."""

    model: ModelRef

    @classmethod
    def answer(
        cls,
        model: ServableModel,
        probabilities: Sequence[float],
        assumed_scale: AssumedScale | None,
        seen: np.ndarray | None = None,
    ) -> PredictResponse:
        fields = _prediction_fields(probabilities, assumed_scale, seen)
        return cls(**fields, model=ModelRef.of(model))


class BatchPredictResponse(BaseModel):
    predictions: list[PredictionPublic] = Field(description="in the order the images came")
    model: ModelRef

    @classmethod
    def answer(
        cls,
        model: ServableModel,
        probabilities: Iterable[Sequence[float]],
        assumed_scales: Iterable[AssumedScale | None],
        seen: Iterable[np.ndarray | None] | None = None,
    ) -> BatchPredictResponse:
        """Each image's answer in order; with `seen`, each one's `input`."""
        inputs = seen if seen is not None else itertools.repeat(None)
        return cls(
            predictions=[
                PredictionPublic.of(row, scale, image)
                for row, scale, image in zip(probabilities, assumed_scales, inputs, strict=False)
            ],
            model=ModelRef.of(model),
        )


class ModelPublic(BaseModel):
    """A trained model that can serve predictions."""

    experiment_id: str
    name: str
    test_accuracy: float | None
    test_loss: float | None
    finished_at: datetime | None
    aliases: list[str]

    @classmethod
    def of(cls, model: ServableModel) -> ModelPublic:
        return cls.model_validate(model, from_attributes=True)


class ModelsPublic(BaseModel):
    data: list[ModelPublic] = Field(description="most accurate first")
    count: int

    @classmethod
    def of(cls, models: Sequence[ServableModel]) -> ModelsPublic:
        return cls(data=[ModelPublic.of(model) for model in models], count=len(models))


class AliasUpdate(BaseModel):
    """Point an alias at a trained model."""

    model_config = ConfigDict(extra="forbid")

    experiment_id: ExperimentId


class AliasPublic(BaseModel):
    alias: str
    experiment_id: str
    updated_at: datetime
    owner: str | None = Field(default=None, description="who set it first; null: nobody's")

    @classmethod
    def of(cls, alias: Alias) -> AliasPublic:
        return cls.model_validate(alias, from_attributes=True)
