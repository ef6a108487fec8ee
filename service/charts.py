"""Learning curves as SVG: the picture a notebook user would plot, drawn without matplotlib."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Literal

Metric = Literal["loss", "accuracy", "val_loss", "val_accuracy"]
METRICS: tuple[Metric, ...] = ("loss", "accuracy", "val_loss", "val_accuracy")

# Colour-blind-safe (Okabe-Ito), in the order series are drawn.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
WIDTH, HEIGHT = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 64, 180, 40, 48
LEGEND_CHARS = 22  # what fits in RIGHT
LEGEND_CHAR_WIDTH = 7


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[int, float | None]]
    dashed: bool = False


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


def svg_header(width: int, height: int, title: str, *, left: int = LEFT) -> list[str]:
    """The opening of every chart: the canvas, a white background and the bold title."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="24" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]


def polyline(points: Sequence[tuple[float, float]], colour: str, dash: str = "") -> list[str]:
    """A line through points already in pixels, with a dot on each; nothing for no points."""
    if not points:
        return []
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return [
        f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>',
        *(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>' for x, y in points),
    ]


def legend_entry(
    x: float, y: float, colour: str, label: str, dash: str = "", *, chars: int = LEGEND_CHARS
) -> str:
    """A legend line: a stroke of the series' colour and dash, then its label's first `chars`."""
    return (
        f'<line x1="{x}" x2="{x + 24}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="2"{dash}/>'
        f'<text x="{x + 30}" y="{y + 4}">{escape(label[:chars])}</text>'
    )


def render(
    series: Sequence[Series], *, title: str, y_label: str, legend_chars: int = LEGEND_CHARS
) -> str:
    """An SVG line chart: epochs on x, the metric on y, one coloured line per series.

    Legend labels keep their first `legend_chars` characters; the chart widens to fit them.
    """
    width = WIDTH + max(0, legend_chars - LEGEND_CHARS) * LEGEND_CHAR_WIDTH
    values = [y for s in series for _, y in s.points if y is not None and math.isfinite(y)]
    epochs = [x for s in series for x, _ in s.points]
    max_epoch = max(epochs, default=1)
    y_ticks = _nice_ticks(min(values, default=0.0), max(values, default=1.0))
    y_low, y_high = y_ticks[0], y_ticks[-1] if y_ticks[-1] > y_ticks[0] else y_ticks[0] + 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(epoch: float) -> float:
        return LEFT + (epoch - 1) / max(max_epoch - 1, 1) * plot_w

    def sy(value: float) -> float:
        return TOP + (1 - (value - y_low) / (y_high - y_low)) * plot_h

    parts = svg_header(width, HEIGHT, title)
    for tick in y_ticks:
        y = sy(tick)
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_label(tick)}</text>'
        )
    x_step = max(1, math.ceil(max_epoch / 10))
    for epoch in range(1, max_epoch + 1, x_step):
        x = sx(epoch)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP + plot_h}" y2="{TOP + plot_h + 4}" '
            f'stroke="#444"/><text x="{x:.1f}" y="{TOP + plot_h + 18}" '
            f'text-anchor="middle">{epoch}</text>'
        )
    parts += [
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" '
        'fill="none" stroke="#444"/>',
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 10}" text-anchor="middle">epoch</text>',
        f'<text transform="translate(16 {TOP + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>',
    ]
    for index, line in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        dash = ' stroke-dasharray="6 4"' if line.dashed else ""
        points = [(x, y) for x, y in line.points if y is not None and math.isfinite(y)]
        parts += polyline([(sx(x), sy(y)) for x, y in points], colour, dash)
        parts.append(
            legend_entry(
                LEFT + plot_w + 12,
                TOP + 8 + index * 18,
                colour,
                line.label,
                dash,
                chars=legend_chars,
            )
        )
    if not values:
        parts.append(
            f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
            'fill="#888">no finished epochs yet</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
