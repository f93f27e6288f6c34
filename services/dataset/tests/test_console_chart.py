"""The console's server-drawn SVG charts: what is drawn, what is left out, and escaping."""

from __future__ import annotations

import math
import re

from tracewheel.dataset.console.chart import HEIGHT, LEFT, TOP, Series, line_chart


def _points(svg: str) -> list[list[tuple[float, float]]]:
    lines = re.findall(r'<polyline [^>]*points="([^"]*)"', svg)
    return [[tuple(map(float, pair.split(","))) for pair in line.split()] for line in lines]  # type: ignore[misc]


def test_each_series_is_one_line_within_the_plot_area_and_percent_axes_read_as_percent() -> None:
    svg = line_chart(
        [Series("adapter", [(0, 0.05), (1, 0.3), (2, 0.4)]), Series("compared with", [(1, 0.05), (2, 0.3)])],
        title="held-out success",
        x_label="round",
        y_range=(0.0, 1.0),
        percent=True,
    )
    adapter, compared = _points(str(svg))
    assert len(adapter) == 3 and len(compared) == 2
    assert all(x >= LEFT and TOP <= y <= HEIGHT for x, y in adapter + compared)
    assert adapter[0][1] > adapter[1][1] > adapter[2][1]  # higher success is drawn higher
    assert ">100%<" in svg and ">0%<" in svg and "40% at 2" in svg


def test_points_that_are_not_finite_are_left_out_and_an_empty_chart_says_so() -> None:
    svg = line_chart([Series("loss", [(1, 2.0), (2, math.nan), (3, math.inf), (4, 1.5)])], title="loss", x_label="step")
    assert [len(line) for line in _points(str(svg))] == [2]
    empty = line_chart([Series("loss", [(1, math.nan)])], title="loss", x_label="step")
    assert "<svg" not in empty and "nothing to plot yet" in empty


def test_every_label_is_escaped() -> None:
    hostile = "<script>alert(1)</script>"
    svg = str(line_chart([Series(hostile, [(0, 1.0), (1, 2.0)])], title=hostile, x_label=hostile))
    assert "<script>" not in svg and svg.count("&lt;script&gt;") >= 4
