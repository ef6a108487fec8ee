"""The Open Inference Protocol (v2, REST) as bytes and numpy: an infer request's images in, the
probabilities and digits out, in the JSON tensor form or the binary tensor data extension.

Pure numpy and json, no web framework: the route hands over the body and the value of its
`Inference-Header-Content-Length` header, and sends back what `encode_response` returns.

A binary request is a JSON header of that many bytes followed by each binary input's raw
little-endian bytes, in input order, `parameters.binary_data_size` bytes each. A binary response
is built the same way, its header length returned for the response header of the same name.
"""

from __future__ import annotations

import json
import math
import reprlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import InvalidInput
from service.mnist import (
    CLASSES,
    IMAGE_SHAPE,
    OIP_DIGIT,
    OIP_INPUT_DATATYPES,
    OIP_INPUT_NAME,
    OIP_MAX_IMAGE_AXES,
    OIP_OUTPUT_NAMES,
    OIP_PROBABILITIES,
    PIXELS,
    SIDE,
)

INPUT_NAME = OIP_INPUT_NAME
PROBABILITIES = OIP_PROBABILITIES
DIGIT = OIP_DIGIT
OUTPUT_NAMES = OIP_OUTPUT_NAMES
HEADER_LENGTH = "Inference-Header-Content-Length"

# The metadata every servable model declares (`GET /v2/models/{name}`): -1 is any batch size.
INPUTS_METADATA = [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, SIDE, SIDE]}]
OUTPUTS_METADATA = [
    {"name": PROBABILITIES, "datatype": "FP32", "shape": [-1, CLASSES]},
    {"name": DIGIT, "datatype": "INT64", "shape": [-1]},
]

# Input datatypes taken, with the dtype their binary form is read as (little-endian).
INPUT_DTYPES: dict[str, np.dtype[Any]] = dict(
    zip(OIP_INPUT_DATATYPES, (np.dtype("<f4"), np.dtype("u1")), strict=True)
)
_IMAGE_SHAPES = "[n, 28, 28], [n, 784], [28, 28] or [784]"
MAX_IMAGE_AXES = OIP_MAX_IMAGE_AXES
# How a refused value is shown: a few levels and characters of it, however deep or long it is.
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother = 3, 40, 40
_shown = _SHOWN.repr


@dataclass(frozen=True, slots=True)
class InferRequest:
    """A decoded infer request: float32 [n, 28, 28] images in [0, 1], the outputs to answer
    (name -> whether in binary), and the request's id to echo."""

    images: np.ndarray
    outputs: dict[str, bool]
    id: str | None


def decode_request(body: bytes, header_length: str | None) -> InferRequest:
    """The images of an infer request (InvalidInput for anything the protocol or MNIST refuses)."""
    header, binary = _split(body, header_length)
    try:
        request = json.loads(header)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput(f"the inference request header is not JSON: {error}") from None
    except RecursionError:
        # Python's parser recurses once per level; an image needs three.
        raise InvalidInput(
            "the inference request header nests lists or objects too deeply to read; "
            f"give the input as {_IMAGE_SHAPES} numbers"
        ) from None
    if not isinstance(request, dict):
        raise InvalidInput("the inference request must be a JSON object")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise InvalidInput(f"give exactly one input, {INPUT_NAME!r}: {_IMAGE_SHAPES} images")
    tensor = inputs[0]
    if tensor.get("name") != INPUT_NAME:
        raise InvalidInput(
            f"unknown input {_shown(tensor.get('name'))}; the model's input is {INPUT_NAME!r}"
        )
    array = _tensor(tensor, binary)
    return InferRequest(images=_images(array), outputs=_outputs(request), id=_id(request))


def _id(request: dict[str, Any]) -> str | None:
    """The request's id, a string in the protocol (a number is taken as its text)."""
    request_id = request.get("id")
    if request_id is None or isinstance(request_id, str):
        return request_id
    if isinstance(request_id, int | float) and not isinstance(request_id, bool):
        return str(request_id)
    raise InvalidInput(f"the request's id must be a string, not {_shown(request_id)}")


def _split(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    if header_length is None:
        return body, memoryview(b"")
    if not header_length.isdigit() or int(header_length) > len(body):
        raise InvalidInput(
            f"{HEADER_LENGTH} is {header_length!r}; it must be the JSON header's size in bytes, "
            f"at most the body's {len(body)}"
        )
    length = int(header_length)
    return body[:length], memoryview(body)[length:]


def _tensor(tensor: dict[str, Any], binary: memoryview) -> np.ndarray:
    datatype = tensor.get("datatype")
    dtype = INPUT_DTYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise InvalidInput(f"input datatype {_shown(datatype)} is not taken; send FP32 or UINT8")
    shape = tensor.get("shape")
    if isinstance(shape, list):  # 784.0 is an integer to JSON Schema, and so to the protocol
        shape = [int(n) if type(n) is float and n.is_integer() else n for n in shape]
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise InvalidInput(
            f"input shape {_shown(shape)} is not a list of sizes; send {_IMAGE_SHAPES}"
        )
    if len(shape) > MAX_IMAGE_AXES:
        raise InvalidInput(
            f"input shape {_shown(shape)} is not an image batch; send {_IMAGE_SHAPES}"
        )
    # Python's integers: numpy's product of sizes wraps around at 2**63 (to 0, say).
    count = math.prod(shape)
    parameters = tensor.get("parameters") or {}
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is not None:
        if type(size) is not int or size < 0:
            raise InvalidInput(
                f"binary_data_size must be a whole number of bytes (a JSON integer), "
                f"not {_shown(size)}"
            )
        if size != count * dtype.itemsize or size != len(binary):
            raise InvalidInput(
                f"binary_data_size is {size} and {len(binary)} bytes follow the header; "
                f"shape {shape} of {datatype} needs {count * dtype.itemsize}"
            )
        return np.frombuffer(binary, dtype=dtype).reshape(shape)
    if "data" not in tensor:
        raise InvalidInput("the input has neither 'data' nor parameters.binary_data_size")
    try:
        array = np.asarray(tensor["data"], dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput("input data must be numbers, flat or nested row by row") from None
    if array.size != count:
        raise InvalidInput(f"input data has {array.size} values; shape {shape} needs {count}")
    if (
        datatype == "UINT8"
        and array.size
        and (
            not np.all(np.isfinite(array))
            or array.min() < 0
            or array.max() > 255
            or np.any(array % 1)
        )
    ):
        raise InvalidInput("UINT8 data must be whole numbers from 0 to 255")
    return array.reshape(shape).astype(dtype)


def _images(array: np.ndarray) -> np.ndarray:
    """[n, 28, 28] float32 in [0, 1]: UINT8 divided by 255; FP32 read as /predict's `auto`
    scale reads it (an image with any value above 1 is 0-255), so both answer alike."""
    shape = array.shape
    if shape in (IMAGE_SHAPE, (PIXELS,)):
        array = array.reshape(1, SIDE, SIDE)
    elif (len(shape) == 2 and shape[1] == PIXELS) or (len(shape) == 3 and shape[1:] == IMAGE_SHAPE):
        array = array.reshape(-1, SIDE, SIDE)
    else:
        raise InvalidInput(f"input shape {list(shape)} is not an image batch; send {_IMAGE_SHAPES}")
    if len(array) == 0:
        raise InvalidInput("the input holds no image; send at least one")
    if array.dtype == np.uint8:
        # Divide in float64 and then narrow, as /predict and training do.
        return (array / 255.0).astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise InvalidInput("FP32 pixel values must be finite numbers")
    highest = array.max(axis=(1, 2))
    if array.min() < 0 or np.any(highest > 255):
        raise InvalidInput("FP32 pixel values must be in 0-1 (or 0-255, as MNIST's bytes)")
    wide = highest > 1.0
    if not wide.any():
        return array.astype(np.float32, copy=False)
    scaled = array.astype(np.float64)
    scaled[wide] /= 255.0
    return scaled.astype(np.float32)


def _outputs(request: dict[str, Any]) -> dict[str, bool]:
    parameters = request.get("parameters") or {}
    binary = bool(isinstance(parameters, dict) and parameters.get("binary_data_output", False))
    asked = request.get("outputs")
    if asked is None:
        return dict.fromkeys(OUTPUT_NAMES, binary)
    if not isinstance(asked, list):
        raise InvalidInput("'outputs' must be a list of {\"name\": ...} objects")
    outputs: dict[str, bool] = {}
    for output in asked:
        name = output.get("name") if isinstance(output, dict) else None
        if name not in OUTPUT_NAMES:
            raise InvalidInput(
                f"unknown output {_shown(name)}; the model's outputs are {OUTPUT_NAMES}"
            )
        own = output.get("parameters") or {}
        outputs[name] = bool(own.get("binary_data", binary)) if isinstance(own, dict) else binary
    return outputs


@dataclass(frozen=True)
class InferResponse:
    """What goes back: the body, its media type, and the header length a binary body needs."""

    body: bytes
    media_type: str
    headers: dict[str, str]


def encode_response(
    *,
    model_name: str,
    model_version: str,
    request: InferRequest,
    probabilities: np.ndarray,
) -> InferResponse:
    """The infer response: all JSON, or a JSON header followed by the binary outputs."""
    tensors = {
        PROBABILITIES: np.ascontiguousarray(probabilities, dtype="<f4"),
        DIGIT: probabilities.argmax(axis=1).astype("<i8"),
    }
    datatypes = {PROBABILITIES: "FP32", DIGIT: "INT64"}
    outputs: list[dict[str, Any]] = []
    raw: list[bytes] = []
    for name, binary in request.outputs.items():
        tensor = tensors[name]
        output: dict[str, Any] = {
            "name": name,
            "datatype": datatypes[name],
            "shape": list(tensor.shape),
        }
        if binary:
            data = tensor.tobytes()
            output["parameters"] = {"binary_data_size": len(data)}
            raw.append(data)
        else:
            output["data"] = tensor.ravel().tolist()
        outputs.append(output)
    response: dict[str, Any] = {
        "model_name": model_name,
        "model_version": model_version,
        "outputs": outputs,
    }
    if request.id is not None:
        response["id"] = request.id
    header = json.dumps(response, separators=(",", ":")).encode()
    if not raw:
        return InferResponse(header, "application/json", {})
    return InferResponse(
        b"".join([header, *raw]), "application/octet-stream", {HEADER_LENGTH: str(len(header))}
    )
