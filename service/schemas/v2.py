"""Open Inference Protocol (v2) bodies: server and model metadata, health, the repository index
and the protocol's error body. Infer requests and responses are bytes (`service.serving.oip`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from service.domain import ServableModel
from service.mnist import (
    OIP_INPUT_DATATYPES,
    OIP_INPUT_NAME,
    OIP_MAX_IMAGE_AXES,
    OIP_OUTPUT_NAMES,
)

PLATFORM = "tensorflow_graphdef"  # a frozen TensorFlow graph answers (service.ml.inference)


class ServerMetadataPublic(BaseModel):
    name: str
    version: str
    extensions: list[str]


class LivePublic(BaseModel):
    live: bool


class ReadyPublic(BaseModel):
    ready: bool


class ModelReadyPublic(BaseModel):
    name: str
    ready: bool


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1: any size")


class ModelMetadataPublic(BaseModel):
    """What a model takes and answers. Its version is the experiment id its name resolves to."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]

    @classmethod
    def of(
        cls,
        name: str,
        model: ServableModel,
        *,
        inputs: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
    ) -> ModelMetadataPublic:
        """`inputs` and `outputs`: the protocol's tensors (`service.serving.oip`)."""
        return cls(
            name=name,
            versions=[model.experiment_id],
            platform=PLATFORM,
            inputs=[TensorMetadata(**tensor) for tensor in inputs],
            outputs=[TensorMetadata(**tensor) for tensor in outputs],
        )


class RepositoryModelPublic(BaseModel):
    """One entry of `POST /v2/repository/index`: each servable model by id, then by alias."""

    name: str
    version: str
    state: Literal["READY"] = "READY"
    reason: str = ""

    @classmethod
    def index(cls, models: list[ServableModel]) -> list[RepositoryModelPublic]:
        entries = [cls(name=model.experiment_id, version=model.experiment_id) for model in models]
        entries += [
            cls(name=alias, version=model.experiment_id)
            for model in models
            for alias in model.aliases
        ]
        return entries


class V2ErrorPublic(BaseModel):
    """The protocol's error body: one message."""

    error: str


V2_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": V2ErrorPublic, "description": description}
    for status, description in {
        400: "Malformed request or inputs",
        401: "Missing or wrong API token",
        404: "No such model or version",
        409: "The model is not trained yet",
        413: "Request too large",
    }.items()
}


def _nested_numbers(levels: int) -> dict[str, Any]:
    """Numbers, flat or nested row by row up to `levels` deep (rows of one length each)."""
    items: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 255}
    for _ in range(levels - 1):
        items = {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 255},
                {"type": "array", "items": items},
            ]
        }
    return {"type": "array", "items": items}


# The infer request's JSON form, as `oip.decode_request` reads it. Its data must also hold as
# many values as its shape says, which JSON Schema cannot state; the binary extension sends
# the header's length in Inference-Header-Content-Length and raw tensors after it.
INFER_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "inputs": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "datatype", "shape", "data"],
                "properties": {
                    "name": {"const": OIP_INPUT_NAME},
                    "datatype": {"enum": list(OIP_INPUT_DATATYPES)},
                    "shape": {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 0},
                        "minItems": 1,
                        "maxItems": OIP_MAX_IMAGE_AXES,
                    },
                    "data": _nested_numbers(OIP_MAX_IMAGE_AXES),
                    "parameters": {"type": "object"},
                },
            },
        },
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"enum": list(OIP_OUTPUT_NAMES)}},
            },
        },
    },
}
