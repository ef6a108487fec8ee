"""The evaluation and layer health as pictures: a confusion heat map and a gradient-by-layer
chart (service/charts.py's shapes, so SVG or PNG, wide or narrow for a phone), and the
mistaken digits as a PNG grid."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from service.charts import HEIGHT, LEFT, TOP, Box, Dot, Line, Rule, Shape, Style, Text
from service.insight.evaluation import Evaluation, Mistake
from service.insight.layers import EpochLayers, LayerStats

Chart = tuple[int, int, list[Shape]]


@dataclass(frozen=True)
class Geometry:
    """A picture's sizes: `wide` for a page's full width, `narrow` for a phone's (about 360 px,
    shown at nearly its own size, so that 11 px text stays 11 px)."""

    cell: int
    grid_left: int
    grid_top: int
    font: int
    width: int


WIDE = Geometry(cell=44, grid_left=84, grid_top=70, font=12, width=600)
"""600 px: the page shows it in a half-width card (about 540 px), so text stays near 12 px."""
NARROW = Geometry(cell=27, grid_left=40, grid_top=62, font=11, width=360)
# Okabe-Ito blue for what the model got right, vermillion for its confusions.
RIGHT_RGB, WRONG_RGB = (0, 114, 178), (213, 94, 0)
TITLE_SIZE = 15


def _tint(rgb: tuple[int, int, int], strength: float) -> str:
    """`rgb` mixed into white: 0 is white, 1 the full colour."""
    mixed = (round(255 + (channel - 255) * strength) for channel in rgb)
    return "#{:02x}{:02x}{:02x}".format(*mixed)


def _confusion_cell(
    true: int, predicted: int, count: int, *, support: int, worst: int, at: Geometry
) -> list[Shape]:
    """One square of the heat map: right answers shaded by recall, confusions by `worst`."""
    if true == predicted:
        strength = count / max(support, 1)
        fill = _tint(RIGHT_RGB, 0.25 + 0.75 * strength)
    else:
        strength = count / worst
        fill = _tint(WRONG_RGB, strength) if count else "#ffffff"
    x, y = at.grid_left + predicted * at.cell, at.grid_top + true * at.cell
    dark = true == predicted or strength > 0.55
    shapes: list[Shape] = [Box(x, y, at.cell, at.cell, fill=fill, stroke="#dddddd")]
    if count:
        size = at.font - 1 if count >= 1000 else at.font
        colour = "#ffffff" if dark else "#222222"
        middle = (x + at.cell / 2, y + at.cell / 2 + size / 3)
        shapes.append(Text(*middle, str(count), anchor="middle", size=size, colour=colour))
    return shapes


def _recall_and_precision(evaluation: Evaluation, size: int, at: Geometry) -> list[Shape]:
    """Each row's recall to the right of the grid, each column's precision below it (in
    points of a percent on a phone, where 0.987 would not fit under a 27 px column)."""
    shapes: list[Shape] = []
    for scores in evaluation.classes:
        middle = scores.digit * at.cell + at.cell / 2
        y = at.grid_top + middle + at.font / 3
        shapes.append(Text(at.grid_left + size + 8, y, f"{scores.recall:.3f}", size=at.font))
        precision = f"{scores.precision:.3f}" if at is WIDE else f"{scores.precision * 100:.0f}"
        below = at.grid_top + size + 18
        shapes.append(Text(at.grid_left + middle, below, precision, anchor="middle", size=at.font))
    return shapes


def confusion_chart(evaluation: Evaluation, *, title: str, narrow: bool = False) -> Chart:
    """Rows: the true digit; columns: the prediction. The diagonal (right answers) is blue,
    shaded by recall; confusions are orange, shaded against the largest one, so the worst
    confusions stand out at a glance. Recall on the right, precision at the bottom."""
    at = NARROW if narrow else WIDE
    confusion = np.asarray(evaluation.confusion)
    classes = len(confusion)
    support = confusion.sum(axis=1)
    off_diagonal = confusion - np.diag(np.diag(confusion))
    worst = max(int(off_diagonal.max()), 1)
    size = at.cell * classes
    width = at.grid_left + size + (50 if narrow else 90)
    height = at.grid_top + size + (76 if narrow else 70)
    left, top, bottom = at.grid_left, at.grid_top, at.grid_top + size
    shapes: list[Shape] = [
        Box(0, 0, width, height, fill="#ffffff"),
        Text(8 if narrow else 16, 24, title, size=TITLE_SIZE, bold=True),
        Text(left + size / 2, top - 24, "predicted digit", anchor="middle", size=at.font),
        Text(
            left - (28 if narrow else 50),
            top + size / 2,
            "true digit",
            anchor="middle",
            size=at.font,
            vertical=True,
        ),
        Text(left + size + 8, top - 8, "recall", size=at.font),
        Text(
            left - 6,
            bottom + 18,
            "precision" if not narrow else "prec. %",
            anchor="end",
            size=at.font - (1 if narrow else 0),
        ),
    ]
    for index in range(classes):
        middle = index * at.cell + at.cell / 2
        shapes.append(Text(left + middle, top - 8, str(index), anchor="middle", bold=True))
        shapes.append(Text(left - 8, top + middle + 4, str(index), anchor="end", bold=True))
    for true in range(classes):
        for predicted in range(classes):
            count = int(confusion[true, predicted])
            shapes += _confusion_cell(
                true, predicted, count, support=int(support[true]), worst=worst, at=at
            )
    shapes.append(Box(left, top, size, size, stroke="#444444"))
    shapes += _recall_and_precision(evaluation, size, at)
    facts = [
        f"{evaluation.total:,} test images; macro F1 {evaluation.macro_f1:.4f}",
        f"test loss {evaluation.test_loss:.4f}",
    ]
    if narrow:
        shapes.append(Text(8, height - 30, facts[0], size=at.font, colour="#555555"))
        shapes.append(Text(8, height - 12, facts[1], size=at.font, colour="#555555"))
    else:
        shapes.append(Text(left, height - 14, "; ".join(facts), colour="#555555"))
    return width, height, shapes


GRAPH_RIGHT, GRAPH_BOTTOM = 150, 70  # room for the epoch legend, and for layer names under it


def _epoch_colours(count: int) -> list[str]:
    """Light to dark blue, first epoch to last: time reads as depth of colour."""
    return [_tint(RIGHT_RGB, 0.25 + 0.75 * index / max(count - 1, 1)) for index in range(count)]


Points = tuple[int, list[tuple[int, float]]]


def _kernel_layers(epoch: EpochLayers) -> list[LayerStats]:
    """The layers whose kernel is measured (Dense, Conv2D), in order: BatchNormalization's
    gamma is a scale, not a connection's weights, and its gradient norm is not comparable."""
    return [layer for layer in epoch.layers if layer.weight == "kernel"]


def _gradient_lines(epochs: Sequence[EpochLayers]) -> list[Points]:
    """Per epoch, its (position among the kernels, gradient norm) points a log scale shows."""
    return [
        (
            epoch.epoch,
            [
                (position, layer.gradient_norm)
                for position, layer in enumerate(_kernel_layers(epoch), start=1)
                if layer.gradient_norm is not None and layer.gradient_norm > 0
            ],
        )
        for epoch in epochs
    ]


def _legend_rows(count: int, most: int = 8) -> dict[int, int]:
    """Which of `count` epochs the legend names (the first, the last, about `most` between),
    each with its row."""
    shown = sorted({0, count - 1, *range(0, count, max(1, math.ceil(count / most)))})
    return {index: row for row, index in enumerate(shown)}


def _log_grid(
    low: int, high: int, sy: Callable[[float], float], left: float, plot_w: float
) -> list[Shape]:
    """A line and a label at (about eight of) the powers of ten from 10**low to 10**high."""
    shapes: list[Shape] = []
    decade_step = max(1, math.ceil((high - low) / 8))
    for power in range(low, high + 1, decade_step):
        y = sy(10.0**power)
        shapes.append(Rule((left, y), (left + plot_w, y), Style("#e5e5e5", width=1)))
        shapes.append(Text(left - 6, y + 4, f"1e{power}", anchor="end"))
    return shapes


def _layer_label(layer: LayerStats) -> str:
    """`Dense relu`: what a learner wrote, shorter than Keras's `dense_2`."""
    return f"{layer.type} {layer.activation}".strip()


CHAR_EM = 0.6
"""About how wide a character of the charts' sans-serif is, in ems (generous)."""
MOST_NAME_ROWS = 4


def _name_rows(labels: dict[int, str], spacing: float, size: int) -> int:
    """Rows the layer names take so that neighbours on a row do not overlap: one when they fit
    between their ticks, more for a deep net (every second, third... name a row lower); 0 (no
    names, positions only) when even MOST_NAME_ROWS would not do."""
    widest = max((len(label) for label in labels.values()), default=0) * CHAR_EM * (size - 1)
    rows = max(1, math.ceil(widest / spacing)) if spacing > 0 else 1
    return rows if rows <= MOST_NAME_ROWS else 0


def _position_ticks(
    labels: dict[int, str], sx: Callable[[float], float], bottom: float, size: int, rows: int
) -> list[Shape]:
    """Under the plot, each kernel's position and its layer (`Dense relu`), on `rows` rows."""
    shapes: list[Shape] = []
    for index, position in enumerate(sorted(labels)):
        x = sx(position)
        shapes.append(Rule((x, bottom), (x, bottom + 4), Style("#444444", width=1)))
        shapes.append(Text(x, bottom + 17, str(position), anchor="middle", size=size))
        if rows:
            y = bottom + 31 + (index % rows) * (size + 2)
            name = labels[position]
            shapes.append(Text(x, y, name, anchor="middle", size=size - 1, colour="#555555"))
    return shapes


def gradients_chart(epochs: Sequence[EpochLayers], *, title: str, narrow: bool = False) -> Chart:
    """Kernel gradient norm (log scale) of each Dense or Conv2D layer, input to output, one
    line per epoch. BatchNormalization layers are left out (their gamma is not a kernel).

    Flat lines are healthy; lines that fall steeply towards layer 1 are the vanishing gradient
    the chapter is about (rising towards layer 1: exploding)."""
    at = NARROW if narrow else WIDE
    lines = _gradient_lines(epochs)
    values = [norm for _, points in lines for _, norm in points]
    labels = {
        position: _layer_label(layer)
        for epoch in epochs
        for position, layer in enumerate(_kernel_layers(epoch), start=1)
    }
    low = math.floor(math.log10(min(values))) if values else -3
    high = math.ceil(math.log10(max(values))) if values else 0
    high = max(high, low + 1)
    left = 52 if narrow else LEFT
    legend_rows = _legend_rows(len(lines), most=4 if narrow else 8)
    right = 16 if narrow else GRAPH_RIGHT
    plot_w = at.width - left - right
    plot_h = 200 if narrow else HEIGHT - TOP - GRAPH_BOTTOM
    last = max(labels, default=1)
    inset = plot_w * 0.06  # the first and last layer's points clear of the frame
    name_rows = _name_rows(labels, (plot_w - 2 * inset) / max(last - 1, 1), at.font)
    below = max(name_rows - 1, 0) * (at.font + 2)  # the extra rows of names push the rest down
    legend_h = (math.ceil(len(legend_rows) / 2) * 18 + 8) if narrow else 0
    height = TOP + plot_h + GRAPH_BOTTOM + below + legend_h

    def sx(position: float) -> float:
        return left + inset + (position - 1) / max(last - 1, 1) * (plot_w - 2 * inset)

    def sy(norm: float) -> float:
        return TOP + (1 - (math.log10(norm) - low) / (high - low)) * plot_h

    shapes: list[Shape] = [
        Box(0, 0, at.width, height, fill="#ffffff"),
        Text(8 if narrow else left, 24, title, size=TITLE_SIZE if not narrow else 13, bold=True),
    ]
    shapes += _log_grid(low, high, sy, left, plot_w)
    shapes += _position_ticks(labels, sx, TOP + plot_h, at.font, name_rows)
    shapes += [
        Box(left, TOP, plot_w, plot_h, stroke="#444444"),
        Text(
            left + plot_w / 2,
            TOP + plot_h + 52 + below,
            "Dense/Conv2D layer, 1 = nearest the input",
            anchor="middle",
            size=at.font,
        ),
        Text(
            14,
            TOP + plot_h / 2,
            "kernel gradient norm (log)",
            anchor="middle",
            size=at.font,
            vertical=True,
        ),
    ]
    colours = _epoch_colours(len(lines))
    for index, ((epoch, points), colour) in enumerate(zip(lines, colours, strict=True)):
        style = Style(colour)
        drawn = [(sx(position), sy(norm)) for position, norm in points]
        if drawn:
            shapes.append(Line(drawn, style))
            shapes += [Dot(x, y, colour) for x, y in drawn]
        if index in legend_rows:
            row = legend_rows[index]
            if narrow:
                x = 8 + (row % 2) * 170
                y = TOP + plot_h + GRAPH_BOTTOM + below + 8 + (row // 2) * 18
            else:
                x, y = left + plot_w + 12, TOP + 8 + row * 18
            shapes.append(Rule((x, y), (x + 24, y), style))
            shapes.append(Text(x + 30, y + 4, f"epoch {epoch}", size=at.font))
    if not values:
        middle = (left + plot_w / 2, TOP + plot_h / 2)
        shapes.append(
            Text(*middle, "no layer health recorded yet", anchor="middle", colour="#888888")
        )
    return at.width, height, shapes


ZOOM = 3
"""Each MNIST pixel drawn as 3x3: 84 px digits, like the notebook's small imshow panels."""
CAPTION_HEIGHT = 18
MISTAKE_COLUMNS = 5
NARROW_COLUMNS = 3
"""On a phone: 3 x 108 px, shown at about its own size, captions still 12 px."""
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


def mistakes_png(mistakes: Sequence[Mistake], *, columns: int = MISTAKE_COLUMNS) -> bytes:
    """The mistaken digits as matplotlib's `imshow(image, cmap="binary")` shows them (dark ink
    on white), in rows of five, each captioned `true → predicted (probability)`."""
    font, arrow = _font()
    side = 28 * ZOOM
    cell_w, cell_h = side + 24, side + CAPTION_HEIGHT + 8
    columns = max(1, min(columns, len(mistakes)))
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
