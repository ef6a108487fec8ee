"""The evaluation and layer health as pictures: a confusion heat map and a gradient-by-depth
chart (SVG, in service/charts.py's style), and the mistaken digits as a PNG grid."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from html import escape

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from service.charts import HEIGHT, LEFT, TOP, WIDTH, legend_entry, polyline, svg_header
from service.insight.evaluation import Evaluation, Mistake
from service.insight.layers import EpochLayers

CELL = 44
GRID_LEFT, GRID_TOP = 84, 70
# Okabe-Ito blue for what the model got right, vermillion for its confusions.
RIGHT_RGB, WRONG_RGB = (0, 114, 178), (213, 94, 0)


def _tint(rgb: tuple[int, int, int], strength: float) -> str:
    """`rgb` mixed into white: 0 is white, 1 the full colour."""
    mixed = (round(255 + (channel - 255) * strength) for channel in rgb)
    return "#{:02x}{:02x}{:02x}".format(*mixed)


def _confusion_cell(
    true: int, predicted: int, count: int, *, support: int, worst: int
) -> list[str]:
    """One square of the heat map: right answers shaded by recall, confusions by `worst`."""
    if true == predicted:
        strength = count / max(support, 1)
        fill = _tint(RIGHT_RGB, 0.25 + 0.75 * strength)
    else:
        strength = count / worst
        fill = _tint(WRONG_RGB, strength) if count else "#ffffff"
    x, y = GRID_LEFT + predicted * CELL, GRID_TOP + true * CELL
    dark = true == predicted or strength > 0.55
    parts = [
        f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="{fill}" stroke="#dddddd"/>'
    ]
    if count:
        parts.append(
            f'<text x="{x + CELL / 2}" y="{y + CELL / 2 + 4}" text-anchor="middle" '
            f'font-size="{11 if count >= 1000 else 12}" '
            f'fill="{"white" if dark else "#222222"}">{count}</text>'
        )
    return parts


def _recall_and_precision(evaluation: Evaluation, size: int) -> list[str]:
    """Each row's recall to the right of the grid, each column's precision below it."""
    parts = []
    for scores in evaluation.classes:
        middle = scores.digit * CELL + CELL / 2
        parts.append(
            f'<text x="{GRID_LEFT + size + 12}" y="{GRID_TOP + middle + 4}">'
            f"{scores.recall:.3f}</text>"
            f'<text x="{GRID_LEFT + middle}" y="{GRID_TOP + size + 22}" text-anchor="middle" '
            f'font-size="11">{scores.precision:.3f}</text>'
        )
    return parts


def confusion_svg(evaluation: Evaluation, *, title: str) -> str:
    """Rows: the true digit; columns: the prediction. The diagonal (right answers) is blue,
    shaded by recall; confusions are orange, shaded against the largest one, so the worst
    confusions stand out at a glance. Recall on the right, precision at the bottom."""
    confusion = np.asarray(evaluation.confusion)
    classes = len(confusion)
    support = confusion.sum(axis=1)
    off_diagonal = confusion - np.diag(np.diag(confusion))
    worst = max(int(off_diagonal.max()), 1)
    size = CELL * classes
    width, height = GRID_LEFT + size + 90, GRID_TOP + size + 70
    parts = svg_header(
        width, height, f"{title}: test accuracy {evaluation.test_accuracy:.4f}", left=16
    )
    parts.append(
        f'<text x="{GRID_LEFT + size / 2}" y="{GRID_TOP - 26}" text-anchor="middle">'
        "predicted digit</text>"
        f'<text transform="translate({GRID_LEFT - 50} {GRID_TOP + size / 2}) rotate(-90)" '
        'text-anchor="middle">true digit</text>'
        f'<text x="{GRID_LEFT + size + 12}" y="{GRID_TOP - 8}">recall</text>'
        f'<text x="{GRID_LEFT - 8}" y="{GRID_TOP + size + 22}" text-anchor="end">precision</text>'
    )
    for index in range(classes):
        middle = index * CELL + CELL / 2
        parts.append(
            f'<text x="{GRID_LEFT + middle}" y="{GRID_TOP - 8}" text-anchor="middle" '
            f'font-weight="bold">{index}</text>'
            f'<text x="{GRID_LEFT - 10}" y="{GRID_TOP + middle + 4}" text-anchor="end" '
            f'font-weight="bold">{index}</text>'
        )
    for true in range(classes):
        for predicted in range(classes):
            count = int(confusion[true, predicted])
            parts += _confusion_cell(
                true, predicted, count, support=int(support[true]), worst=worst
            )
    parts.append(
        f'<rect x="{GRID_LEFT}" y="{GRID_TOP}" width="{size}" height="{size}" fill="none" '
        'stroke="#444"/>'
    )
    parts += _recall_and_precision(evaluation, size)
    parts.append(
        f'<text x="{GRID_LEFT}" y="{height - 14}" fill="#555">{evaluation.total:,} test images; '
        f"macro F1 {evaluation.macro_f1:.4f}; test loss {evaluation.test_loss:.4f}</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts)


RIGHT, BOTTOM = 180, 64  # room for the epoch legend, and for layer names under the depths


def _epoch_colours(count: int) -> list[str]:
    """Light to dark blue, first epoch to last: time reads as depth of colour."""
    return [_tint(RIGHT_RGB, 0.25 + 0.75 * index / max(count - 1, 1)) for index in range(count)]


Line = tuple[int, list[tuple[int, float]]]


def _gradient_lines(epochs: Sequence[EpochLayers]) -> list[Line]:
    """Per epoch, its (depth, kernel gradient norm) points that a log scale can show."""
    return [
        (
            epoch.epoch,
            [
                (layer.depth, layer.gradient_norm)
                for layer in epoch.layers
                if layer.gradient_norm is not None and layer.gradient_norm > 0
            ],
        )
        for epoch in epochs
    ]


def _legend_rows(count: int) -> dict[int, int]:
    """Which of `count` epochs the legend names (the first, the last, about eight between),
    each with its row."""
    shown = sorted({0, count - 1, *range(0, count, max(1, math.ceil(count / 8)))})
    return {index: row for row, index in enumerate(shown)}


def _log_grid(low: int, high: int, sy: Callable[[float], float], plot_w: int) -> list[str]:
    """A line and a label at (about eight of) the powers of ten from 10**low to 10**high."""
    parts = []
    decade_step = max(1, math.ceil((high - low) / 8))
    for power in range(low, high + 1, decade_step):
        y = sy(10.0**power)
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">1e{power}</text>'
        )
    return parts


def _depth_ticks(names: dict[int, str], sx: Callable[[float], float], plot_h: int) -> list[str]:
    """Under the plot, each depth and its layer's name."""
    parts = []
    for depth in sorted(names):
        x = sx(depth)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP + plot_h}" y2="{TOP + plot_h + 4}" '
            f'stroke="#444"/><text x="{x:.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">'
            f'{depth}</text><text x="{x:.1f}" y="{TOP + plot_h + 31}" text-anchor="middle" '
            f'font-size="9" fill="#666">{escape(names[depth][:12])}</text>'
        )
    return parts


def gradients_svg(epochs: Sequence[EpochLayers], *, title: str) -> str:
    """Kernel gradient norm (log scale) by layer depth, one line per epoch.

    Flat lines are healthy; lines that fall steeply towards depth 1 are the vanishing gradient
    the chapter is about (rising towards depth 1: exploding)."""
    lines = _gradient_lines(epochs)
    values = [norm for _, points in lines for _, norm in points]
    names = {layer.depth: layer.name for epoch in epochs for layer in epoch.layers}
    low = math.floor(math.log10(min(values))) if values else -3
    high = math.ceil(math.log10(max(values))) if values else 0
    high = max(high, low + 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    last_depth = max(names, default=1)

    def sx(depth: float) -> float:
        return LEFT + (depth - 1) / max(last_depth - 1, 1) * plot_w

    def sy(norm: float) -> float:
        return TOP + (1 - (math.log10(norm) - low) / (high - low)) * plot_h

    parts = svg_header(WIDTH, HEIGHT, title)
    parts += _log_grid(low, high, sy, plot_w) + _depth_ticks(names, sx, plot_h)
    parts += [
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#444"/>',
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
        "layer depth (1 = nearest the input)</text>",
        f'<text transform="translate(16 {TOP + plot_h / 2:.1f}) rotate(-90)" '
        'text-anchor="middle">gradient norm of the kernel (log)</text>',
    ]
    colours = _epoch_colours(len(lines))
    rows = _legend_rows(len(lines))
    for index, ((epoch, points), colour) in enumerate(zip(lines, colours, strict=True)):
        parts += polyline([(sx(depth), sy(norm)) for depth, norm in points], colour)
        if index in rows:
            y = TOP + 8 + rows[index] * 18
            parts.append(legend_entry(LEFT + plot_w + 12, y, colour, f"epoch {epoch}"))
    if not values:
        parts.append(
            f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
            'fill="#888">no layer health recorded yet</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


ZOOM = 3
"""Each MNIST pixel drawn as 3x3: 84 px digits, like the notebook's small imshow panels."""
CAPTION_HEIGHT = 18
MISTAKE_COLUMNS = 5
ARROW = "→"


@lru_cache(maxsize=1)
def _font() -> tuple[ImageFont.ImageFont | ImageFont.FreeTypeFont, str]:
    """DejaVu Sans when installed (it has the arrow); Pillow's own font and `->` otherwise."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", 12), ARROW
    except OSError:
        return ImageFont.load_default(), "->"


def caption(mistake: Mistake, arrow: str = ARROW) -> str:
    return f"{mistake.true} {arrow} {mistake.predicted} ({mistake.probability:.2f})"


def mistakes_png(mistakes: Sequence[Mistake]) -> bytes:
    """The mistaken digits as matplotlib's `imshow(image, cmap="binary")` shows them (dark ink
    on white), in rows of five, each captioned `true → predicted (probability)`."""
    font, arrow = _font()
    side = 28 * ZOOM
    cell_w, cell_h = side + 24, side + CAPTION_HEIGHT + 8
    columns = max(1, min(MISTAKE_COLUMNS, len(mistakes)))
    rows = max(1, math.ceil(len(mistakes) / columns))
    sheet = Image.new("L", (columns * cell_w, rows * cell_h), 255)
    draw = ImageDraw.Draw(sheet)
    for index, mistake in enumerate(mistakes):
        row, column = divmod(index, columns)
        left, top = column * cell_w + 12, row * cell_h + 4
        binary = Image.fromarray(255 - mistake.image(), mode="L")  # cmap="binary": 0 is white
        sheet.paste(binary.resize((side, side), Image.Resampling.NEAREST), (left, top))
        text = caption(mistake, arrow)
        text_width = draw.textlength(text, font=font)
        draw.text((left + (side - text_width) / 2, top + side + 3), text, fill=0, font=font)
    if not mistakes:
        draw.text((8, 8), "no mistakes", fill=0, font=font)
    out = io.BytesIO()
    sheet.save(out, format="PNG", optimize=True)
    return out.getvalue()
