"""Usage charts drawn on the server as SVG: a percentage over a time window, from GetInstanceMetrics points.

No JavaScript library draws them: the page gets finished markup (and refreshes it), every point
carries a ``<title>`` tooltip, and a gap of more than two steps without samples breaks the line
instead of drawing a slope across the time nobody measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from controller.clock import US_PER_S, to_datetime

WIDTH, HEIGHT = 560, 190
LEFT, RIGHT, TOP, BOTTOM = 40, 12, 12, 26
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


@dataclass(frozen=True)
class Window:
    """A chart's range: its name, its length and the GetInstanceMetrics step that gives ~60-100 points."""

    name: str
    length_s: int
    step: str
    step_s: int
    tick_s: int


WINDOWS = {"1h": Window("1h", 3600, "1m", 60, 900), "24h": Window("24h", 86_400, "15m", 900, 6 * 3600)}


@dataclass(frozen=True)
class Point:
    at_us: int
    percent: float


def line_chart(label: str, points: list[Point], start_us: int, end_us: int, window: Window) -> str:
    """An ``<svg>`` element: grid, axes labels, the line (or dots) of ``points``, or a note when there are none."""
    span = max(1, end_us - start_us)

    def x(us: int) -> float:
        return LEFT + PLOT_W * min(1.0, max(0.0, (us - start_us) / span))

    def y(percent: float) -> float:
        return TOP + PLOT_H * (1 - min(100.0, max(0.0, percent)) / 100)

    parts = [(f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}" '
              f'data-points="{len(points)}" xmlns="http://www.w3.org/2000/svg">')]
    parts += _grid(y) + _time_ticks(x, start_us, end_us, window)
    if not points:
        parts.append(f'<text class="chart-empty" x="{LEFT + PLOT_W / 2}" y="{TOP + PLOT_H / 2}" text-anchor="middle">'
                     'No samples in this window: usage is reported while the instance is attached.</text>')
    for run in _runs(points, window.step_s * 2 * US_PER_S):
        coords = " ".join(f"{x(p.at_us):.1f},{y(p.percent):.1f}" for p in run)
        parts.append(f'<polyline class="chart-line" points="{coords}"/>')
    for p in points:
        tip = f"{to_datetime(p.at_us):%H:%M} UTC: {p.percent:.1f}%"
        parts.append(f'<circle class="chart-dot" cx="{x(p.at_us):.1f}" cy="{y(p.percent):.1f}" r="2.5">'
                     f"<title>{escape(tip)}</title></circle>")
    parts.append("</svg>")
    return "".join(parts)


def _grid(y) -> list[str]:
    lines = []
    for percent in (0, 25, 50, 75, 100):
        lines.append(f'<line class="chart-grid" x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{y(percent):.1f}" y2="{y(percent):.1f}"/>')
        lines.append(f'<text class="chart-axis" x="{LEFT - 6}" y="{y(percent) + 4:.1f}" text-anchor="end">{percent}%</text>')
    return lines


def _time_ticks(x, start_us: int, end_us: int, window: Window) -> list[str]:
    tick_us = window.tick_s * US_PER_S
    first = start_us - start_us % tick_us + tick_us
    labels = []
    for at in range(first, end_us + 1, tick_us):
        labels.append(f'<text class="chart-axis" x="{x(at):.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                      f"{to_datetime(at):%H:%M}</text>")
    return labels


def _runs(points: list[Point], max_gap_us: int) -> list[list[Point]]:
    """Consecutive points no further apart than ``max_gap_us``; a run of one point is drawn as its dot only."""
    runs: list[list[Point]] = []
    for point in points:
        if runs and point.at_us - runs[-1][-1].at_us <= max_gap_us:
            runs[-1].append(point)
        else:
            runs.append([point])
    return [run for run in runs if len(run) > 1]
