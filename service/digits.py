"""A greyscale picture of a digit -> the digit framed as MNIST frames it.

The ink is found against the picture's own lighting and noise, then cropped, fitted in 20x20
keeping its aspect ratio, and placed in 28x28 with its centre of mass at (14, 14): the way
MNIST itself was made. Numpy and Pillow only; `service.images` decodes what clients send.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from service.errors import BadImage
from service.mnist import SIDE

# MNIST's geometry: the digit fits a 20x20 box whose centre of mass sits at pixel (14, 14).
BOX = 20
CENTRE = 14.0
# After stretching background -> 0 and the strongest ink -> 1, the least that counts as ink:
# JPEG ringing and faint smudges sit below it. Noisy photos raise it to NOISE_SIGMAS times the
# background's noise, so that paper texture stays out too.
INK_FLOOR = 0.15
NOISE_SIGMAS = 5.0
MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation, for Gaussian noise
# Ink beyond the digit's extent holding at most this share of its mass (dust, a stray noise
# pixel) is left out of the crop rather than stretching it.
SPECK_SHARE = 0.0002
# Background noise (as a standard deviation, 0..1 scale) above which the image is smoothed
# before looking for ink, with a box of radius longest side / BLUR_DIVISOR.
NOISY = 0.01
BLUR_DIVISOR = 256
# Refits of the lighting surface, each leaving out border pixels that look like ink.
LIGHTING_ROUNDS = 3
# Less contrast than this between background and ink (on a 0..1 scale) is no digit at all.
MIN_CONTRAST = 0.1


def _ink(grey: np.ndarray, field: str) -> np.ndarray:
    """Light ink on a zero background, stretched so the strongest ink is 1.

    The outermost pixels are taken to be mostly background: their median decides the polarity,
    a smooth surface fitted to them models uneven lighting (a photo's shading), and how much
    they stray from it measures the noise. All three are robust to a digit touching the edge.
    """
    border = _border(grey)
    if float(np.median(border)) > 0.5:
        grey = 1.0 - grey
    background, noise = _lighting(grey)
    raised = grey - background
    if noise > NOISY:
        # Grain (paper, sensor, JPEG) would otherwise pass for ink and stretch the crop; a box
        # blur a few pixels wide averages it away, while strokes, far wider, keep their shape.
        raised = _box_blur(raised, max(1, round(max(grey.shape) / BLUR_DIVISOR)))
        noise = MAD_TO_SIGMA * float(np.median(np.abs(_border(raised))))
    contrast = float(raised.max())
    floor = max(INK_FLOOR, NOISE_SIGMAS * noise / contrast) if contrast > 0 else 1.0
    if contrast < MIN_CONTRAST or floor >= 1.0:
        raise BadImage(
            f"no digit found in {field}: nothing stands out from its background; send a dark "
            "digit on a light background or a light digit on a dark one"
        )
    ink = np.clip(raised / contrast, 0.0, 1.0)
    ink[ink < floor] = 0.0
    return ink  # not blank: its strongest pixel is 1


def _box_blur(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, edges extended: running sums, O(pixels)."""
    size = 2 * radius + 1
    padded = np.pad(values.astype(np.float64), radius, mode="edge")
    sums = np.cumsum(np.pad(padded, ((1, 0), (1, 0))), axis=0).cumsum(axis=1)
    window = sums[size:, size:] - sums[:-size, size:] - sums[size:, :-size] + sums[:-size, :-size]
    return (window / (size * size)).astype(np.float32)


def _border(grey: np.ndarray) -> np.ndarray:
    return np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])


def _lighting(grey: np.ndarray) -> tuple[np.ndarray, float]:
    """The background as a quadratic surface fitted to the border, and the noise around it."""
    height, width = grey.shape
    # A few hundred border pixels pin six coefficients down; thousands only cost time.
    step = max(1, (height + width) // 500)
    values = _border(grey)[::step].astype(np.float64)
    if values.min() == values.max():  # a clean render: flat, noiseless background
        return np.full((1, 1), values[0], dtype=np.float32), 0.0
    ys = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    y = _border(np.broadcast_to(ys, grey.shape))[::step].astype(np.float64)
    x = _border(np.broadcast_to(xs, grey.shape))[::step].astype(np.float64)
    terms = np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=1)
    if min(height, width) < 8:  # too few border pixels to model lighting: a flat background
        terms[:, 1:] = 0.0
    c: np.ndarray = np.zeros(6)
    c[0] = np.median(values)
    for _ in range(LIGHTING_ROUNDS):
        residual = values - terms @ c
        spread = MAD_TO_SIGMA * float(np.median(np.abs(residual)))
        inliers = np.abs(residual) <= max(3.0 * spread, 1e-3)  # ink on the border is no light
        c = np.linalg.lstsq(terms[inliers], values[inliers], rcond=None)[0]
    noise = MAD_TO_SIGMA * float(np.median(np.abs(values - terms @ c)))
    # Evaluated as a column plus a row plus the one cross term: two full-size operations.
    column, row = c[0] + c[2] * ys + c[4] * ys * ys, c[1] * xs + c[3] * xs * xs
    surface = (column + row + np.float32(c[5]) * ys * xs).astype(np.float32)
    return surface, noise


def _extent(mass: np.ndarray) -> tuple[int, int]:
    """First and last index holding the ink, ignoring specks with a tiny share of its mass."""
    cumulative = np.cumsum(mass)
    total = float(cumulative[-1])
    first = int(np.searchsorted(cumulative, SPECK_SHARE * total, side="right"))
    last = int(np.searchsorted(cumulative, (1.0 - SPECK_SHARE) * total, side="left"))
    return first, max(first, last)


def _mnist_frame(ink: np.ndarray, field: str) -> np.ndarray:
    """Crop to the ink, fit it in 20x20 keeping the aspect ratio, centre its mass in 28x28."""
    top, bottom = _extent(ink.sum(axis=1))
    left, right = _extent(ink.sum(axis=0))
    crop = ink[top : bottom + 1, left : right + 1]
    height, width = crop.shape
    factor = BOX / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    # LANCZOS antialiases when shrinking (as MNIST's own normalisation did); its overshoot is
    # clipped, and the result is stretched back to full strength, since thin strokes shrunk
    # from a large image come out faint.
    small = Image.fromarray(crop.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    digit = np.clip(np.asarray(small, dtype=np.float64), 0.0, 1.0)
    if digit.max() <= 0.0:  # a few specks spread over a huge area average away to nothing
        raise BadImage(f"no digit found in {field}: its marks vanish at MNIST's 20x20 size")
    digit /= digit.max()

    total = digit.sum()
    ys, xs = np.indices(digit.shape)
    centre_y, centre_x = (digit * ys).sum() / total, (digit * xs).sum() / total
    # Whole-pixel shifts, as MNIST's (its centres of mass sit within half a pixel of 14),
    # clamped so the digit is never cut off.
    top = min(max(round(CENTRE - centre_y), 0), SIDE - digit.shape[0])
    left = min(max(round(CENTRE - centre_x), 0), SIDE - digit.shape[1])
    frame = np.zeros((SIDE, SIDE), dtype=np.float32)
    frame[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    return frame


def frame_digit(grey: np.ndarray, field: str) -> np.ndarray:
    """Greyscale float32 [h, w] in [0, 1] -> float32 [28, 28] in [0, 1], or BadImage when no
    digit stands out; `field` names the image in the message."""
    return _mnist_frame(_ink(grey, field), field)
