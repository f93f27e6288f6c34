"""Line charts as inline SVG, drawn on the server: no script, nothing loaded, text escaped.

The rounds page plots held-out success per round and the job page its loss curves with it.
`line_chart` returns markup to put in a template as is; every label goes through `escape`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 32, 36  # the legend sits in the top margin, clear of the data
COLOURS = ("#2f6fdf", "#d9822b", "#2e9d5b", "#b03a8c")


@dataclass(frozen=True)
class Series:
    """One line: its name in the legend and its points (x, y) in x order."""

    name: str
    points: Sequence[tuple[float, float]]


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    step = (high - low) / (count - 1)
    return [low + i * step for i in range(count)]


def _label(value: float, percent: bool) -> str:
    if percent:
        return f"{value:.0%}"
    return f"{value:.3g}"


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_range: tuple[float, float] | None = None,
    percent: bool = False,
) -> Markup:
    """An SVG chart of `series` (a figure with `title` as its accessible name); `y_range` fixes
    the axis (success rates: 0..1), otherwise it spans the data. Points that are not finite are
    left out; a chart without points says so."""
    drawn = [Series(s.name, [(x, y) for x, y in s.points if math.isfinite(x) and math.isfinite(y)]) for s in series]
    xs = [x for s in drawn for x, _ in s.points]
    ys = [y for s in drawn for _, y in s.points]
    if not xs:
        return Markup('<p class="chart-empty">{}</p>').format(f"{title}: nothing to plot yet")
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = y_range or (min(ys), max(ys))
    if y_high <= y_low:
        y_low, y_high = y_low - 0.5, y_high + 0.5
    if x_high <= x_low:
        x_low, x_high = x_low - 1, x_high + 1

    def px(x: float) -> float:
        return LEFT + (x - x_low) / (x_high - x_low) * (WIDTH - LEFT - RIGHT)

    def py(y: float) -> float:
        return HEIGHT - BOTTOM - (y - y_low) / (y_high - y_low) * (HEIGHT - TOP - BOTTOM)

    parts = [Markup('<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">').format(WIDTH, HEIGHT, title)]
    parts.append(Markup("<title>{}</title>").format(title))
    for tick in _ticks(y_low, y_high):
        y = py(tick)
        parts.append(
            Markup('<line class="grid" x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}"/>').format(LEFT, WIDTH - RIGHT, y, y)
        )
        parts.append(
            Markup('<text class="tick" x="{}" y="{:.1f}" text-anchor="end">{}</text>').format(
                LEFT - 6, y + 4, _label(tick, percent)
            )
        )
    for tick in sorted(set(xs)) if len(set(xs)) <= 12 else _ticks(x_low, x_high):
        parts.append(
            Markup('<text class="tick" x="{:.1f}" y="{}" text-anchor="middle">{}</text>').format(
                px(tick), HEIGHT - BOTTOM + 16, _label(tick, False)
            )
        )
    parts.append(
        Markup('<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>').format(
            (LEFT + WIDTH - RIGHT) / 2, HEIGHT - 4, x_label
        )
    )
    for index, line in enumerate(drawn):
        colour = COLOURS[index % len(COLOURS)]
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in line.points)
        parts.append(
            Markup('<polyline class="line" fill="none" stroke="{}" stroke-width="2" points="{}"/>').format(
                colour, points
            )
        )
        for x, y in line.points:
            parts.append(
                Markup('<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}"><title>{}: {} at {}</title></circle>').format(
                    px(x), py(y), colour, line.name, _label(y, percent), _label(x, False)
                )
            )
        parts.append(
            Markup('<text class="legend" x="{}" y="{}" fill="{}">{}</text>').format(
                LEFT + 8 + 150 * index, TOP - 14, colour, line.name
            )
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)
