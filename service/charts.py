"""Learning curves as pictures, SVG or PNG: the plot a notebook user would make, without matplotlib.

A chart is laid out once as a list of shapes (`layout`), then written as SVG or drawn with Pillow
as PNG, so the two never disagree. Each run gets a colour from a colour-blind-safe palette
(Okabe-Ito) and a dash pattern of its own, so runs stay apart past eight colours and in grey.
Validation is drawn bold and training thin and faint in the same style: overfitting is the gap.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from typing import Literal

from PIL import Image, ImageDraw, ImageFont

Metric = Literal["loss", "accuracy", "val_loss", "val_accuracy"]
METRICS: tuple[Metric, ...] = ("loss", "accuracy", "val_loss", "val_accuracy")

# Colour-blind-safe (Okabe-Ito), in the order runs are drawn; yellow last, it is faint on white.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
# Five patterns against eight colours: 40 runs before a (colour, dash) pair repeats.
DASHES: tuple[tuple[int, ...], ...] = ((), (8, 4), (2, 3), (10, 3, 2, 3), (4, 4))
WIDTH, HEIGHT = 800, 420
LEFT, RIGHT, TOP, BOTTOM = 64, 260, 40, 48
LEGEND_ROW = 18
LEGEND_CHARS = 30
"""What the legend's width (RIGHT less its line sample) holds at 12 px, with a margin."""
PNG_SCALE = 2  # drawn at twice the size and shrunk: Pillow's lines are not antialiased


@dataclass(frozen=True)
class Style:
    colour: str
    dash: tuple[int, ...] = ()
    width: float = 2.0
    opacity: float = 1.0


def run_style(index: int) -> Style:
    """The style of the index-th run: its colour and its dash pattern."""
    return Style(PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)])


def faint(style: Style) -> Style:
    """The same run's other curve (training beside validation): thinner and lighter."""
    return Style(style.colour, style.dash, width=1.2, opacity=0.45)


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[int, float | None]]
    style: Style


@dataclass(frozen=True)
class LegendEntry:
    text: str
    style: Style
    detail: str = ""
    """A second, grey line under the text (a run's final values), when there is one."""

    @property
    def rows(self) -> int:
        return 2 if self.detail else 1


# Shapes, in chart coordinates.
@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    anchor: Literal["start", "middle", "end"] = "start"
    size: int = 12
    bold: bool = False
    colour: str = "#000000"
    vertical: bool = False


@dataclass(frozen=True)
class Line:
    """A data curve."""

    points: Sequence[tuple[float, float]]
    style: Style


@dataclass(frozen=True)
class Rule:
    """A straight guide: a grid line, a tick, a legend's sample of a curve's style."""

    start: tuple[float, float]
    end: tuple[float, float]
    style: Style


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    colour: str


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float
    fill: str | None = None
    stroke: str | None = None


Shape = Text | Line | Rule | Dot | Box


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    return [round(index * step, 10) for index in range(first, max(last, first + 1) + 1)]


def _label(value: float) -> str:
    return f"{value:.3g}"


def final_value(points: Sequence[tuple[int, float | None]]) -> float | None:
    finite = [y for _, y in points if y is not None and math.isfinite(y)]
    return finite[-1] if finite else None


def legend_rows(entries: Sequence[LegendEntry], x: float, y: float) -> list[Shape]:
    """The legend at (x, y): one row per entry, its line sample beside its text."""
    shapes: list[Shape] = []
    row_y = y
    for entry in entries:
        shapes.append(Rule((x, row_y), (x + 24, row_y), entry.style))
        shapes.append(Text(x + 30, row_y + 4, fitted(entry.text)))
        if entry.detail:
            shapes.append(Text(x + 30, row_y + 4 + LEGEND_ROW - 2, entry.detail, colour="#444444"))
        row_y += entry.rows * LEGEND_ROW
    return shapes


def fitted(text: str, limit: int = LEGEND_CHARS) -> str:
    """`text`, or its start and an ellipsis when it would run past the legend's width."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def layout(
    series: Sequence[Series], *, title: str, y_label: str, legend: Sequence[LegendEntry]
) -> tuple[int, int, list[Shape]]:
    """Width, height and shapes of a line chart: epochs on x, the metric on y."""
    height = max(HEIGHT, TOP + 8 + sum(entry.rows for entry in legend) * LEGEND_ROW + BOTTOM)
    values = [y for s in series for _, y in s.points if y is not None and math.isfinite(y)]
    max_epoch = max((x for s in series for x, _ in s.points), default=1)
    y_ticks = _nice_ticks(min(values, default=0.0), max(values, default=1.0))
    y_low, y_high = y_ticks[0], y_ticks[-1] if y_ticks[-1] > y_ticks[0] else y_ticks[0] + 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM

    def sx(epoch: float) -> float:
        return LEFT + (epoch - 1) / max(max_epoch - 1, 1) * plot_w

    def sy(value: float) -> float:
        return TOP + (1 - (value - y_low) / (y_high - y_low)) * plot_h

    grid = Style("#e5e5e5", width=1)
    axis = Style("#444444", width=1)
    shapes: list[Shape] = [Box(0, 0, WIDTH, height, fill="#ffffff")]
    shapes.append(Text(LEFT, 24, title, size=15, bold=True))
    for tick in y_ticks:
        shapes.append(Rule((LEFT, sy(tick)), (LEFT + plot_w, sy(tick)), grid))
        shapes.append(Text(LEFT - 6, sy(tick) + 4, _label(tick), anchor="end"))
    for epoch in range(1, max_epoch + 1, max(1, math.ceil(max_epoch / 10))):
        shapes.append(Rule((sx(epoch), TOP + plot_h), (sx(epoch), TOP + plot_h + 4), axis))
        shapes.append(Text(sx(epoch), TOP + plot_h + 18, str(epoch), anchor="middle"))
    shapes.append(Box(LEFT, TOP, plot_w, plot_h, stroke="#444444"))
    shapes.append(Text(LEFT + plot_w / 2, height - 10, "epoch", anchor="middle"))
    shapes.append(Text(16, TOP + plot_h / 2, y_label, anchor="middle", vertical=True))
    for line in series:
        points = [(sx(x), sy(y)) for x, y in line.points if y is not None and math.isfinite(y)]
        if points:
            shapes.append(Line(points, line.style))
            if line.style.opacity == 1.0:
                shapes += [Dot(x, y, line.style.colour) for x, y in points]
    shapes += legend_rows(legend, LEFT + plot_w + 12, TOP + 8)
    if not values:
        middle = (LEFT + plot_w / 2, TOP + plot_h / 2)
        shapes.append(Text(*middle, "no finished epochs yet", anchor="middle", colour="#888888"))
    return WIDTH, height, shapes


# SVG ----------------------------------------------------------------------------------------


def _svg_stroke(style: Style) -> str:
    dash = f' stroke-dasharray="{" ".join(map(str, style.dash))}"' if style.dash else ""
    opacity = f' stroke-opacity="{style.opacity:g}"' if style.opacity < 1 else ""
    return f'stroke="{style.colour}" stroke-width="{style.width:g}"{dash}{opacity}'


def _svg_shape(shape: Shape) -> str:
    if isinstance(shape, Text):
        weight = ' font-weight="bold"' if shape.bold else ""
        fill = f' fill="{shape.colour}"' if shape.colour != "#000000" else ""
        place = (
            f'transform="translate({shape.x:.1f} {shape.y:.1f}) rotate(-90)"'
            if shape.vertical
            else f'x="{shape.x:.1f}" y="{shape.y:.1f}"'
        )
        return (
            f'<text {place} text-anchor="{shape.anchor}" font-size="{shape.size}"{weight}{fill}>'
            f"{escape(shape.text)}</text>"
        )
    if isinstance(shape, Rule):
        (x1, y1), (x2, y2) = shape.start, shape.end
        return (
            f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{y1:.1f}" y2="{y2:.1f}" '
            f"{_svg_stroke(shape.style)}/>"
        )
    if isinstance(shape, Line):
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in shape.points)
        return f'<polyline points="{path}" fill="none" {_svg_stroke(shape.style)}/>'
    if isinstance(shape, Dot):
        return f'<circle cx="{shape.x:.1f}" cy="{shape.y:.1f}" r="2.5" fill="{shape.colour}"/>'
    fill = shape.fill or "none"
    stroke = f' stroke="{shape.stroke}"' if shape.stroke else ""
    return (
        f'<rect x="{shape.x:g}" y="{shape.y:g}" width="{shape.width:g}" '
        f'height="{shape.height:g}" fill="{fill}"{stroke}/>'
    )


def to_svg(width: int, height: int, shapes: Sequence[Shape]) -> str:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">'
    ]
    parts += [_svg_shape(shape) for shape in shapes]
    parts.append("</svg>")
    return "\n".join(parts)


# PNG ----------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size * PNG_SCALE)


def _rgba(colour: str, opacity: float = 1.0) -> tuple[int, int, int, int]:
    value = int(colour.lstrip("#"), 16)
    return (value >> 16, (value >> 8) & 255, value & 255, round(255 * opacity))


Points = list[tuple[float, float]]


def _dashed(points: Sequence[tuple[float, float]], dash: tuple[int, ...]) -> list[Points]:
    """The visible pieces of a polyline drawn with `dash` (on, off, on, off... lengths)."""
    if not dash:
        return [list(points)]
    pieces: list[Points] = []
    pattern = [d * PNG_SCALE for d in dash]
    index, left, drawing = 0, float(pattern[0]), True
    current: Points = [points[0]]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        length = math.hypot(x1 - x0, y1 - y0)
        done = 0.0
        while length - done > left:
            done += left
            point = (x0 + (x1 - x0) * done / length, y0 + (y1 - y0) * done / length)
            if drawing:
                pieces.append([*current, point])
            current = [point]
            drawing = not drawing
            index = (index + 1) % len(pattern)
            left = pattern[index]
        left -= length - done
        current.append((x1, y1))
    if drawing and len(current) > 1:
        pieces.append(current)
    return pieces


def to_png(width: int, height: int, shapes: Sequence[Shape]) -> bytes:
    """The same shapes drawn with Pillow (no matplotlib or cairo)."""
    s = PNG_SCALE
    image = Image.new("RGB", (width * s, height * s), "white")
    draw = ImageDraw.Draw(image, "RGBA")  # RGBA: translucent colours blend onto the picture
    for shape in shapes:
        if isinstance(shape, Line | Rule):
            points = shape.points if isinstance(shape, Line) else (shape.start, shape.end)
            scaled = [(x * s, y * s) for x, y in points]
            colour = _rgba(shape.style.colour, shape.style.opacity)
            line_width = max(1, round(shape.style.width * s))
            for piece in _dashed(scaled, shape.style.dash):
                draw.line(piece, fill=colour, width=line_width, joint="curve")
        elif isinstance(shape, Dot):
            x, y, r = shape.x * s, shape.y * s, 2.5 * s
            draw.ellipse((x - r, y - r, x + r, y + r), fill=_rgba(shape.colour))
        elif isinstance(shape, Box):
            corner = ((shape.x + shape.width) * s - 1, (shape.y + shape.height) * s - 1)
            draw.rectangle(
                (shape.x * s, shape.y * s, *corner),
                fill=_rgba(shape.fill) if shape.fill else None,
                outline=_rgba(shape.stroke) if shape.stroke else None,
                width=s,
            )
        else:
            _draw_text(image, draw, shape)
    out = io.BytesIO()
    image.resize((width, height), Image.Resampling.LANCZOS).save(out, "PNG", optimize=True)
    return out.getvalue()


def _draw_text(image: Image.Image, draw: ImageDraw.ImageDraw, shape: Text) -> None:
    s = PNG_SCALE
    font = _font(shape.size)
    fill = _rgba(shape.colour)
    if not shape.vertical:
        # The SVG's x is the text's start, middle or end, its y the baseline: Pillow's anchors.
        anchor = {"start": "ls", "middle": "ms", "end": "rs"}[shape.anchor]
        at = (shape.x * s, shape.y * s)
        draw.text(at, shape.text, font=font, fill=fill, anchor=anchor)
        if shape.bold:  # the default font has no bold face: draw it twice, a pixel apart
            draw.text((at[0] + 1, at[1]), shape.text, font=font, fill=fill, anchor=anchor)
        return
    left, top, right, bottom = draw.textbbox((0, 0), shape.text, font=font, anchor="lt")
    label = Image.new("RGBA", (int(right - left) + 2, int(bottom - top) + 2), (0, 0, 0, 0))
    ImageDraw.Draw(label).text((0, 0), shape.text, font=font, fill=fill, anchor="lt")
    turned = label.rotate(90, expand=True)
    corner = (round(shape.x * s - turned.width), round(shape.y * s - turned.height / 2))
    image.paste(turned, corner, turned)
