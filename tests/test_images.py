"""Client images -> MNIST-like arrays: every input form, every refusal, and fuzzing for 500s."""

from __future__ import annotations

import base64
import functools
import io
import math
import struct
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from service.errors import BadImage, TooLarge
from service.images import base64_bytes, decode_image, pixels_to_array
from service.ml.data import load_mnist
from tests.helpers import MNIST_PATH

LIMITS = {"max_bytes": 4 * 1024 * 1024, "max_pixels": 25_000_000}
# How close a re-normalised image must stay to MNIST's own 28x28 original (mean |difference|
# per pixel, on 0..1). Re-cropping and re-centring moves the odd pixel; a wrong crop, scale,
# polarity or centre costs several times this.
CLOSE = 0.03


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """A few MNIST test digits, uint8 [n, 28, 28]: 7, 2, 1, 0, 4."""
    return load_mnist(MNIST_PATH).x_test[:5]


@pytest.fixture(scope="module")
def seven(digits: np.ndarray) -> np.ndarray:
    return digits[0]


def encode(pixels: np.ndarray, image_format: str = "PNG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def on_paper(digit: np.ndarray, *, zoom: int = 10, margin: int = 40) -> np.ndarray:
    """The digit drawn big in black on a white page, as a scan or a canvas export would be."""
    big = 255 - np.kron(digit, np.ones((zoom, zoom), dtype=np.uint8))
    return np.pad(big, margin, constant_values=255)


def mean_difference(decoded: np.ndarray, digit: np.ndarray) -> float:
    return float(np.abs(decoded - digit / 255.0).mean())


def outcome(call: Callable[[], Any]) -> Any:
    """What the call returns, or the refusal it raises; anything else propagates and fails."""
    try:
        return call()
    except (BadImage, TooLarge) as error:
        refusal = error
    assert refusal.message  # every refusal says something
    return refusal


def assert_mnist_like(array: np.ndarray) -> None:
    assert array.shape == (28, 28)
    assert array.dtype == np.float32
    assert np.isfinite(array).all()
    assert array.min() >= 0.0
    assert array.max() <= 1.0


# -- pixel lists -------------------------------------------------------------------------------


def test_every_pixel_list_form_gives_the_training_array(seven: np.ndarray) -> None:
    expected = (seven / 255.0).astype(np.float32)  # what service.ml.data feeds the model
    forms = {
        "nested 0-255": seven.tolist(),
        "flat 0-255": seven.reshape(-1).tolist(),
        "nested 0-1": (seven / 255.0).tolist(),
        "flat 0-1": (seven / 255.0).reshape(-1).tolist(),
        "nested 0-255 as floats": seven.astype(float).tolist(),
    }

    for name, values in forms.items():
        array, assumed = pixels_to_array(values, "auto")

        assert np.array_equal(array, expected), name
        assert assumed == ("0-1" if "0-1" in name else "0-255"), name
        assert_mnist_like(array)


def test_declared_scale_is_used_and_reported(seven: np.ndarray) -> None:
    ones = (seven > 0).astype(int).tolist()  # 0s and 1s: auto reads them as 0-1

    assert pixels_to_array(ones, "auto")[1] == "0-1"
    as_bytes, assumed = pixels_to_array(ones, "0-255")

    assert assumed == "0-255"
    assert as_bytes.max() == pytest.approx(1 / 255)
    assert pixels_to_array(seven.tolist(), "0-255")[1] == "0-255"
    assert pixels_to_array((seven / 255.0).tolist(), "0-1")[1] == "0-1"


@pytest.mark.parametrize("value", [0, 1, 255])
def test_uniform_pixel_image_is_refused_as_blank(value: int) -> None:
    # Like a blank PNG: the net would still answer some digit (a 5) for it.
    with pytest.raises(BadImage, match=f"no digit found in image: every pixel is {value}"):
        pixels_to_array([[value] * 28] * 28, "auto")


def _with(values: list[Any], row: int, column: int, value: Any) -> list[Any]:
    rows = [list(r) for r in values]
    rows[row][column] = value
    return rows


ZEROS = [[0] * 28 for _ in range(28)]


@pytest.mark.parametrize(
    ("values", "scale", "expected"),
    [
        (ZEROS[:27], "auto", "image has 27 rows; expected 28 rows of 28 numbers or a flat list"),
        ([0] * 785, "auto", "image has 785 values; expected 28 rows of 28 numbers or a flat"),
        ([0] * 783, "auto", "image has 783 values"),
        ([], "auto", "image has 0 values"),
        ([7], "auto", "image has 1 value; expected"),
        (ZEROS[:1], "auto", "image has 1 row; expected"),
        ([*ZEROS[:5], [0], *ZEROS[6:]], "auto", "image row 5 has 1 value; every row needs 28"),
        (
            [*ZEROS[:3], [0] * 27, *ZEROS[4:]],
            "auto",
            "image row 3 has 27 values; every row needs 28",
        ),
        ([*ZEROS[:3], [0] * 29, *ZEROS[4:]], "auto", "image row 3 has 29 values"),
        ([*ZEROS[:27], 0], "auto", "image mixes rows and single numbers"),
        ("0" * 784, "auto", "image is a string; expected 28 rows of 28 numbers"),
        ({"pixels": []}, "auto", "image is an object"),
        (None, "auto", "image is null"),
        (_with(ZEROS, 2, 5, math.nan), "auto", "image value at row 2, column 5 is NaN"),
        (_with(ZEROS, 0, 1, math.inf), "auto", "image value at row 0, column 1 is infinite"),
        (_with(ZEROS, 0, 1, -math.inf), "0-255", "image value at row 0, column 1 is infinite"),
        ([0] * 100 + [math.nan] + [0] * 683, "auto", "image value at index 100 is NaN"),
        (_with(ZEROS, 4, 4, 300), "auto", "image value at row 4, column 4 is 300, outside 0-255"),
        (_with(ZEROS, 4, 4, -1), "auto", "image value at row 4, column 4 is -1, outside 0-1"),
        (_with(ZEROS, 4, 4, 10**400), "auto", "row 4, column 4 is 1e+308, outside 0-255"),
        (_with(ZEROS, 1, 2, 255), "0-1", 'is 255, outside 0-1; scale "0-1" was given'),
        (_with(ZEROS, 1, 2, 255.5), "0-255", "is 255.5, outside 0-255"),
        (_with(ZEROS, 1, 2, "12"), "auto", "row 1, column 2 is a string; pixel values must be"),
        (_with(ZEROS, 1, 2, True), "auto", "row 1, column 2 is a boolean"),
        (_with(ZEROS, 1, 2, None), "auto", "row 1, column 2 is null"),
        (_with(ZEROS, 1, 2, [1]), "auto", "row 1, column 2 is a list"),
    ],
)
def test_bad_pixel_lists_say_what_is_wrong(values: Any, scale: Any, expected: str) -> None:
    with pytest.raises(BadImage) as caught:
        pixels_to_array(values, scale)

    assert expected in caught.value.message
    assert caught.value.status_code == 422


def test_messages_name_the_field_in_a_batch() -> None:
    with pytest.raises(BadImage, match=r"^images\[3\] row 0 has 2 values"):
        pixels_to_array([[0, 0], *ZEROS[1:]], "auto", field="images[3]")


odd_value = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([None, True, "7", [], {}, [1, 2]]),
)


@st.composite
def near_images(draw: st.DrawFn) -> list[list[Any]]:
    """28x28 numbers with a few cells, rows or lengths broken: every check gets exercised."""
    base = draw(arrays(np.float64, (28, 28), elements=st.floats(0, 300, width=32)))
    rows: list[list[Any]] = base.tolist()
    for _ in range(draw(st.integers(0, 3))):
        row = draw(st.integers(0, len(rows) - 1))
        match draw(st.sampled_from(["cell", "shorten", "lengthen", "drop row", "add row"])):
            case "cell" if rows[row]:
                rows[row][draw(st.integers(0, len(rows[row]) - 1))] = draw(odd_value)
            case "shorten":
                rows[row] = rows[row][:-1]
            case "lengthen":
                rows[row] = [*rows[row], draw(odd_value)]
            case "drop row" if len(rows) > 1:
                del rows[row]
            case "add row":
                rows.insert(row, [0] * 28)
    return rows


@settings(max_examples=200, deadline=None)
@given(rows=near_images(), scale=st.sampled_from(["auto", "0-255", "0-1"]))
def test_any_nested_list_is_an_image_or_a_bad_image(rows: list[list[Any]], scale: Any) -> None:
    result = outcome(lambda: pixels_to_array(rows, scale))

    if not isinstance(result, BadImage):
        assert_mnist_like(result[0])


@settings(max_examples=100, deadline=None)
@given(
    values=arrays(np.float64, 784, elements=st.floats(allow_nan=True, allow_infinity=True)),
    scale=st.sampled_from(["auto", "0-255", "0-1"]),
)
def test_any_784_floats_are_an_image_or_a_bad_image(values: np.ndarray, scale: Any) -> None:
    result = outcome(lambda: pixels_to_array(values.tolist(), scale))

    if not isinstance(result, BadImage):
        assert_mnist_like(result[0])


json_like = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=3),
    lambda children: st.lists(children, max_size=30) | st.dictionaries(st.text(), children),
    max_leaves=60,
)


@settings(max_examples=150, deadline=None)
@given(values=json_like)
def test_any_json_value_is_an_image_or_a_bad_image(values: Any) -> None:
    result = outcome(lambda: pixels_to_array(values, "auto"))

    if not isinstance(result, BadImage):
        assert_mnist_like(result[0])


# -- encoded images ----------------------------------------------------------------------------


def test_png_of_an_mnist_digit_comes_back_as_itself(digits: np.ndarray) -> None:
    for digit in digits:
        decoded = decode_image(encode(digit), **LIMITS)

        assert_mnist_like(decoded)
        assert mean_difference(decoded, digit) < CLOSE


@pytest.mark.parametrize(
    ("image_format", "options"),
    [("PNG", {}), ("JPEG", {"quality": 80}), ("WEBP", {"quality": 80}), ("GIF", {}), ("BMP", {})],
)
def test_big_dark_on_light_digit_is_normalised_like_mnist(
    digits: np.ndarray, image_format: str, options: dict[str, Any]
) -> None:
    for digit in digits:
        decoded = decode_image(encode(on_paper(digit), image_format, **options), **LIMITS)

        assert mean_difference(decoded, digit) < CLOSE


def test_polarity_does_not_matter(seven: np.ndarray) -> None:
    dark_on_light = decode_image(encode(on_paper(seven)), **LIMITS)
    light_on_dark = decode_image(encode(255 - on_paper(seven)), **LIMITS)

    assert np.abs(dark_on_light - light_on_dark).max() < 1e-6


def _modes(digit: np.ndarray) -> dict[str, Image.Image]:
    paper = on_paper(digit)
    ink = 255 - paper  # alpha: opaque where the digit is
    black_on_clear = np.zeros((*paper.shape, 4), dtype=np.uint8)
    black_on_clear[..., 3] = ink
    white_on_clear = np.full((*paper.shape, 4), 255, dtype=np.uint8)
    white_on_clear[..., 3] = ink
    blue_on_yellow = np.stack([paper, paper, 255 - ink // 2], axis=-1)
    grey = Image.fromarray(paper)
    palette_clear = Image.fromarray(black_on_clear).quantize(colors=16)
    wide = Image.fromarray(paper.astype(np.uint16) * 257)  # a 16-bit greyscale PNG
    return {
        "L": grey,
        "RGB": Image.fromarray(blue_on_yellow),
        "RGBA black ink, transparent background": Image.fromarray(black_on_clear),
        "RGBA white ink, transparent background": Image.fromarray(white_on_clear),
        "LA": Image.fromarray(black_on_clear).convert("LA"),
        "P": grey.convert("P"),
        "P with transparency": palette_clear,
        "1": grey.convert("1", dither=Image.Dither.NONE),
        "I;16": wide,
    }


def test_every_image_mode_is_read(seven: np.ndarray) -> None:
    for mode, image in _modes(seven).items():
        decoded = decode_image(encode(image), **LIMITS)

        # A 1-bit image loses the antialiasing, hence the looser bound for it.
        assert mean_difference(decoded, seven) < (0.06 if mode == "1" else CLOSE), mode


def test_digit_is_cropped_scaled_to_20_and_centred_by_mass(seven: np.ndarray) -> None:
    page = np.full((600, 900), 255, dtype=np.uint8)
    page[30:130, 700:800] = 255 - np.kron(seven, np.ones((4, 4), dtype=np.uint8))[6:106, 6:106]

    decoded = decode_image(encode(page), **LIMITS)

    rows, columns = np.flatnonzero(decoded.any(axis=1)), np.flatnonzero(decoded.any(axis=0))
    assert max(rows[-1] - rows[0], columns[-1] - columns[0]) + 1 == 20
    ys, xs = np.indices(decoded.shape)
    total = decoded.sum()
    assert abs((decoded * ys).sum() / total - 14) <= 0.5
    assert abs((decoded * xs).sum() / total - 14) <= 0.5


def test_aspect_ratio_is_kept() -> None:
    page = np.full((400, 400), 255, dtype=np.uint8)
    page[50:350, 190:220] = 0  # a "1": ten times taller than wide

    decoded = decode_image(encode(page), **LIMITS)

    rows, columns = np.flatnonzero(decoded.any(axis=1)), np.flatnonzero(decoded.any(axis=0))
    assert rows[-1] - rows[0] + 1 == 20
    assert columns[-1] - columns[0] + 1 <= 3


def _photo(digit: np.ndarray, seed: int) -> np.ndarray:
    """Grey ink on uneven, grainy, tinted paper, the digit small and off-centre: a phone photo."""
    rng = np.random.default_rng(seed)
    ink = np.asarray(Image.fromarray(digit).resize((200, 200), Image.Resampling.BICUBIC)) / 255
    canvas = np.zeros((900, 1200))
    top, left = rng.integers(0, 700), rng.integers(0, 1000)
    canvas[top : top + 200, left : left + 200] = ink
    paper = 0.6 + 0.3 * np.linspace(0, 1, 1200)[None, :] + rng.normal(0, 0.04, canvas.shape)
    page = paper * (1 - canvas) + 0.35 * canvas
    rgb = np.stack([page, page * 0.95, page * 0.85], axis=-1)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def test_photo_with_shading_and_grain_is_normalised_like_mnist(digits: np.ndarray) -> None:
    for seed, digit in enumerate(digits):
        decoded = decode_image(encode(_photo(digit, seed), "JPEG", quality=75), **LIMITS)

        assert mean_difference(decoded, digit) < 2 * CLOSE


def test_exif_orientation_is_applied(seven: np.ndarray) -> None:
    upright = on_paper(seven)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored_sideways = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)

    decoded = decode_image(encode(stored_sideways, "JPEG", quality=95, exif=exif), **LIMITS)

    assert mean_difference(decoded, seven) < CLOSE


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (100, 100), 255),
        Image.new("L", (100, 100), 0),
        Image.new("RGB", (64, 32), (128, 128, 128)),
        Image.new("RGBA", (50, 50), (0, 0, 0, 0)),
        Image.new("L", (1, 1), 0),
    ],
    ids=["white", "black", "grey", "transparent", "one pixel"],
)
def test_blank_image_is_no_digit(image: Image.Image) -> None:
    with pytest.raises(BadImage, match="no digit found in image"):
        decode_image(encode(image), **LIMITS)


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size, over one tiny compressed stream: a bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + checksum

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", header),
            chunk(b"IDAT", zlib.compress(b"\0" * 1024)),
            chunk(b"IEND", b""),
        ]
    )


def test_too_many_pixels_is_refused_from_the_header() -> None:
    for width, height in [(6000, 5000), (100_000, 100_000)]:
        with pytest.raises(TooLarge) as caught:
            decode_image(_png_claiming(width, height), **LIMITS)

        assert caught.value.status_code == 413
        assert "pixels" in caught.value.message


def test_too_many_bytes_is_refused(seven: np.ndarray) -> None:
    data = encode(on_paper(seven))

    with pytest.raises(TooLarge, match=rf"image is {len(data):,} bytes; images may be at most"):
        decode_image(data, max_bytes=len(data) - 1, max_pixels=LIMITS["max_pixels"])


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "image is empty"),
        (b"hello, world" * 10, "not an image we can read; send a PNG or JPEG"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not an image we can read"),
    ],
    ids=["empty", "text", "eps"],
)
def test_undecodable_bytes_are_bad_images(data: bytes, expected: str) -> None:
    with pytest.raises(BadImage, match=expected):
        decode_image(data, **LIMITS)


def test_truncated_and_unsupported_files_are_bad_images(seven: np.ndarray) -> None:
    png = encode(on_paper(seven))
    tiff = encode(on_paper(seven), "TIFF")

    with pytest.raises(BadImage, match="could not be decoded"):
        decode_image(png[: len(png) // 2], **LIMITS)
    with pytest.raises(BadImage, match="not an image we can read"):
        decode_image(tiff, **LIMITS)


def test_base64_forms_decode_like_the_bytes(seven: np.ndarray) -> None:
    data = encode(on_paper(seven))
    expected = decode_image(data, **LIMITS)
    plain = base64.b64encode(data).decode()
    forms = {
        "plain": plain,
        "data URL": f"data:image/png;base64,{plain}",
        "wrapped at 76 columns": "\n".join(plain[i : i + 76] for i in range(0, len(plain), 76)),
        "unpadded": plain.rstrip("="),
        "URL-safe": base64.urlsafe_b64encode(data).decode(),
    }

    for name, text in forms.items():
        data = base64_bytes(text, max_bytes=LIMITS["max_bytes"])
        assert np.array_equal(decode_image(data, **LIMITS), expected), name


@pytest.mark.parametrize(
    ("text", "error", "expected"),
    [
        ("not base64!", BadImage, "image_base64 is not valid base64"),
        ("data:image/png,rawbytes", BadImage, "data URL without ';base64'"),
        ("data:image/png;base64,", BadImage, "image_base64 is empty"),
        ("QUJD" * 2_000_000, TooLarge, "image_base64 decodes to about 6,000,000 bytes"),
        ("ünïcode", BadImage, "not valid base64"),
    ],
)
def test_bad_base64_says_what_is_wrong(text: str, error: type[Exception], expected: str) -> None:
    field = "image_base64"  # as the decoder names a request's encoded image

    def decode() -> np.ndarray:
        return decode_image(
            base64_bytes(text, max_bytes=LIMITS["max_bytes"]), **LIMITS, field=field
        )

    with pytest.raises(error, match=expected):
        decode()


# -- fuzzing: nothing but BadImage or TooLarge, ever -------------------------------------------


@functools.cache
def _samples() -> list[bytes]:
    """Loaded at the first example, not at import: collection must not need MNIST."""
    digit = load_mnist(MNIST_PATH).x_test[0]
    image = Image.fromarray(on_paper(digit, zoom=2, margin=4))
    return [
        encode(image),
        encode(image, "JPEG"),
        encode(image, "GIF"),
        encode(image.convert("RGBA"), "WEBP"),
        encode(image, "BMP"),
    ]


@st.composite
def corrupted(draw: st.DrawFn) -> bytes:
    """A real image with a few bytes changed, cut short or extended: reaches the decoders."""
    data = bytearray(draw(st.deferred(lambda: st.sampled_from(_samples()))))
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(8, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=16))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2048) | corrupted())
def test_any_bytes_are_an_image_or_a_refusal(data: bytes) -> None:
    result = outcome(lambda: decode_image(data, max_bytes=100_000, max_pixels=1_000_000))

    if not isinstance(result, BadImage | TooLarge):
        assert_mnist_like(result)


@settings(max_examples=120, deadline=None)
@given(
    pixels=arrays(
        np.uint8,
        st.tuples(st.integers(1, 40), st.integers(1, 40)),
        elements=st.integers(0, 255),
    ),
    mode=st.sampled_from(["L", "RGB", "LA", "P", "1", "I;16", "RGBA"]),
)
def test_any_small_picture_is_a_digit_or_no_digit(pixels: np.ndarray, mode: str) -> None:
    if mode == "I;16":
        image = Image.fromarray(pixels.astype(np.uint16) * 257)
    elif mode == "RGBA":  # alpha varying independently of the colour
        image = Image.fromarray(np.stack([pixels, pixels, pixels, pixels[::-1, ::-1]], axis=-1))
    else:
        image = Image.fromarray(pixels).convert(mode)
    result = outcome(lambda: decode_image(encode(image), **LIMITS))

    if isinstance(result, BadImage):
        assert "no digit found" in result.message
    else:
        assert_mnist_like(result)
