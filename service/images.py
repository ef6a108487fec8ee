"""Client images -> MNIST-like float32 28x28 arrays in [0, 1], or a BadImage / TooLarge saying why.

Two ways in. Pixel lists (28 rows of 28 numbers, or 784 numbers) are taken as already being
MNIST-like and only checked and scaled. Encoded images (PNG, JPEG, ... of any size, mode and
polarity) are normalised the way MNIST itself was made: greyscale, light ink on a dark
background, cropped to the digit, scaled to fit 20x20 keeping the aspect ratio, and placed in
28x28 with its centre of mass at (14, 14) (that framing is `service.digits`). Numpy and Pillow
only: no TensorFlow here.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import math
import re
from collections.abc import Iterator
from itertools import chain
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from service.digits import frame_digit
from service.errors import BadImage, ServiceError, TooLarge
from service.mnist import PIXELS, SIDE, AssumedScale, Scale

SHAPE_HINT = f"expected {SIDE} rows of {SIDE} numbers or a flat list of {PIXELS} numbers"

# Formats we decode. Pillow reads more, but some (EPS runs Ghostscript) or are rarely-used,
# bug-prone decoders we have no reason to expose to anonymous uploads.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
# Modes with more than 8 bits per pixel, which Pillow's convert("L") would clip, not scale.
WIDE_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
# Larger images are reduced to this longest side before the float work: a digit spanning 4%
# of it still has the 20 pixels MNIST needs, and time and memory stay bounded per request.
WORKING_SIDE = 512

_DATA_URL = re.compile(r"^data:(?P<media>[^;,]*)(?P<params>(;[^;,]*)*),", re.IGNORECASE)
_TYPE_NAMES = {
    str: "a string",
    bool: "a boolean",
    type(None): "null",
    list: "a list",
    dict: "an object",
}


# -- pixel lists -------------------------------------------------------------------------------


def pixels_to_array(
    values: Any, scale: Scale = "auto", *, field: str = "image"
) -> tuple[np.ndarray, AssumedScale]:
    """28x28 nested or 784 flat numbers -> float32 [28, 28] in [0, 1] and the scale assumed.

    `scale="auto"` assumes 0-255 when any value is above 1 and 0-1 otherwise. `field` names the
    input in messages (`images[3]` in a batch).
    """
    flat, nested = _flatten(values, field)
    try:
        # fromiter: half np.array's time for a list of Python numbers, the same values.
        array = np.fromiter(flat, dtype=np.float64, count=len(flat))
    except OverflowError:  # an integer beyond float64: clamp it, the range check reports it
        array = np.array([v if abs(v) < 1e308 else 1e308 if v > 0 else -1e308 for v in flat])

    finite = np.isfinite(array)
    if not finite.all():
        index = int(np.argmin(finite))
        kind = "NaN" if math.isnan(array[index]) else "infinite"
        raise BadImage(
            f"{_where(field, index, nested)} is {kind}; pixel values must be finite numbers"
        )
    low, high = float(array.min()), float(array.max())
    assumed: AssumedScale = ("0-255" if high > 1.0 else "0-1") if scale == "auto" else scale
    top = 255.0 if assumed == "0-255" else 1.0
    if low < 0.0 or high > top:
        index = int(np.argmin(array)) if low < 0.0 else int(np.argmax(array))
        raise BadImage(
            f"{_where(field, index, nested)} is {_number(array[index])}, outside {assumed}; "
            + _range_hint(scale, assumed)
        )
    if high == low:
        # Every pixel alike: a blank image, which the net would still call some digit (a 5).
        raise BadImage(
            f"no digit found in {field}: every pixel is {_number(high)}; send a light digit "
            "on a black background, as in MNIST"
        )
    if assumed == "0-255":
        # Divide in float64 and then narrow, as service.ml.data does for training images.
        array = array / 255.0
    return array.astype(np.float32).reshape(SIDE, SIDE), assumed


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _flatten(values: Any, field: str) -> tuple[list[Any], bool]:
    """The 784 values in row order and whether they came as rows; each checked to be a number."""
    if not isinstance(values, list):
        raise BadImage(f"{field} is {_type_name(values)}; {SHAPE_HINT}")
    if len(values) == PIXELS:
        flat, nested = values, False
    elif len(values) == SIDE and all(type(row) is list for row in values):
        for row_index, row in enumerate(values):
            if len(row) != SIDE:
                raise BadImage(
                    f"{field} row {row_index} has {_count(len(row), 'value')}; every row needs "
                    f"{SIDE} ({SHAPE_HINT})"
                )
        flat, nested = list(chain.from_iterable(values)), True
    else:
        rows = sum(type(value) is list for value in values)
        if rows == 0:
            raise BadImage(f"{field} has {_count(len(values), 'value')}; {SHAPE_HINT}")
        if rows < len(values):
            raise BadImage(f"{field} mixes rows and single numbers; {SHAPE_HINT}")
        raise BadImage(f"{field} has {_count(rows, 'row')}; {SHAPE_HINT}")
    # One C-level pass over the types instead of per-pixel Python checks; bool is an int
    # subclass and a numeric string would be converted by numpy, so both are refused here.
    if not set(map(type, flat)) <= {int, float}:
        index = next(i for i, value in enumerate(flat) if type(value) not in (int, float))
        raise BadImage(
            f"{_where(field, index, nested)} is {_type_name(flat[index])}; "
            "pixel values must be numbers"
        )
    return flat, nested


def _where(field: str, index: int, nested: bool) -> str:
    if nested:
        row, column = divmod(index, SIDE)
        return f"{field} value at row {row}, column {column}"
    return f"{field} value at index {index}"


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), f"a {type(value).__name__}")


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:g}"


def _range_hint(scale: Scale, assumed: AssumedScale) -> str:
    if scale == "auto":
        return 'pixel values must all be within 0-1 or all within 0-255 (scale "auto")'
    other = "0-1" if assumed == "0-255" else "0-255"
    return f'scale "{scale}" was given; send values within {scale}, or scale "{other}"'


# -- encoded images ----------------------------------------------------------------------------


def base64_bytes(text: str, *, max_bytes: int, field: str = "image_base64") -> bytes:
    """Raw base64 or a `data:image/...;base64,` URL -> the file's bytes (not yet decoded)."""
    if not isinstance(text, str):
        raise BadImage(f"{field} must be a base64 string; got {_type_name(text)}")
    match = _DATA_URL.match(text)
    if match:
        if ";base64" not in match.group("params").lower():
            raise BadImage(f"{field} is a data URL without ';base64'; send base64-encoded bytes")
        text = text[match.end() :]
    text = "".join(text.split())  # line breaks from tools that wrap base64 at 76 columns
    # Refuse before decoding: the decoded size is known from the length alone.
    if len(text) * 3 // 4 > max_bytes + 2:
        raise TooLarge(
            f"{field} decodes to about {len(text) * 3 // 4:,} bytes; "
            f"images may be at most {max_bytes:,} bytes"
        )
    if "-" in text or "_" in text:  # the URL-safe alphabet
        text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadImage(
            f"{field} is not valid base64; send the PNG or JPEG file's bytes base64-encoded, "
            "optionally as a data:image/png;base64,... URL"
        ) from None


def image_pixels(data: bytes, *, max_bytes: int, max_pixels: int, field: str = "image") -> int:
    """How many pixels decoding `data` would produce, read from its header alone (Pillow opens
    lazily): what a request's images add up to before any of them is decoded."""
    with _opened(data, max_bytes=max_bytes, max_pixels=max_pixels, field=field) as image:
        width, height = image.size
        return int(width * height)


def decode_image(
    data: bytes, *, max_bytes: int, max_pixels: int, field: str = "image"
) -> np.ndarray:
    """An encoded image of a digit -> float32 [28, 28] in [0, 1], normalised like MNIST.

    Polarity is decided by the background, taken as the median of the image's outermost
    pixels: a light background means dark ink on paper, which is inverted to MNIST's light
    ink on black. Transparent pixels are composited on white, or on black when the ink itself
    is light, so canvas exports with a transparent background work either way.
    """
    grey = _decode_grey(data, max_bytes=max_bytes, max_pixels=max_pixels, field=field)
    return frame_digit(grey, field)


@contextlib.contextmanager
def _opened(data: bytes, *, max_bytes: int, max_pixels: int, field: str) -> Iterator[Image.Image]:
    """The image opened lazily (its header read, no pixel decoded), within the limits; every
    decoder failure inside the block is the client's BadImage."""
    if len(data) > max_bytes:
        raise TooLarge(f"{field} is {len(data):,} bytes; images may be at most {max_bytes:,} bytes")
    if not data:
        raise BadImage(f"{field} is empty; send a PNG or JPEG file")
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise TooLarge(
                    f"{field} is {width}x{height} = {width * height:,} pixels; images may have "
                    f"at most {max_pixels:,} pixels (MAX_IMAGE_PIXELS)"
                )
            if width < 1 or height < 1:
                raise BadImage(f"{field} is {width}x{height} pixels; it has no area")
            yield image
    except ServiceError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard (beyond PIL.Image.MAX_IMAGE_PIXELS; its warning where warnings
        # are errors) fired inside Image.open, before our own size check could.
        raise TooLarge(
            f"{field} has too many pixels; images may have at most {max_pixels:,} pixels"
        ) from None
    except UnidentifiedImageError:
        raise BadImage(
            f"{field} is not an image we can read; send a PNG or JPEG ({', '.join(FORMATS)})"
        ) from None
    except Exception as error:  # decoders fail in many ways on corrupt data: all are the client's
        raise BadImage(f"{field} could not be decoded ({type(error).__name__}: {error})") from None


def _decode_grey(data: bytes, *, max_bytes: int, max_pixels: int, field: str) -> np.ndarray:
    """Greyscale float32 [h, w] in [0, 1], at most WORKING_SIDE on its longest side."""
    with _opened(data, max_bytes=max_bytes, max_pixels=max_pixels, field=field) as image:
        width, height = image.size
        if image.format == "JPEG":
            # Let libjpeg decode at a reduced scale (1/2 .. 1/8): far faster for photos.
            image.draft("L", (min(width, WORKING_SIDE), min(height, WORKING_SIDE)))
        image.load()
        ImageOps.exif_transpose(image, in_place=True)  # phone photos are stored sideways
        return _greyscale(image)


def _greyscale(image: Image.Image) -> np.ndarray:
    """Any Pillow mode -> float32 [h, w] in [0, 1]; transparency flattened onto a background."""
    if image.mode in WIDE_MODES:
        wide = np.nan_to_num(np.asarray(image, dtype=np.float64), posinf=0.0, neginf=0.0)
        top = float(wide.max(initial=0.0))
        # 16-bit PNGs and the like: take the range the values evidently use.
        scale = 1.0 if top <= 1.0 else 255.0 if top <= 255.0 else 65535.0
        reduced = _shrink(Image.fromarray(np.clip(wide / scale, 0.0, 1.0).astype(np.float32)))
        return np.asarray(reduced, dtype=np.float32)
    if image.has_transparency_data:
        pair = _shrink(image.convert("RGBA").convert("LA"))
        values = np.asarray(pair, dtype=np.float32) / 255.0
        luminance, alpha = values[..., 0], values[..., 1]
        opaque = alpha > 0.5
        ink_is_light = bool(opaque.any()) and float(luminance[opaque].mean()) > 0.5
        background = 0.0 if ink_is_light else 1.0
        return luminance * alpha + background * (1.0 - alpha)
    return np.asarray(_shrink(image.convert("L")), dtype=np.float32) / 255.0


def _shrink(image: Image.Image) -> Image.Image:
    if max(image.size) > WORKING_SIDE:
        image.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BOX)
    return image
