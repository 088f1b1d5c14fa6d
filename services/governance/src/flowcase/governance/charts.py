"""Small SVG charts rendered on the server: no script, no CDN, nothing to fetch.

Each chart draws one value per window (None is a gap, not a zero) and, when given, a dashed
threshold line. Only what is drawn is sent: one point per window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

WIDTH, HEIGHT = 320, 150
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 22


def _frame(name: str, label: str, body: list[str], y_max_label: str, x_labels: tuple[str, str]):
    plot_bottom = HEIGHT - BOTTOM
    return "".join(
        [
            f'<svg class="chart" data-chart="{escape(name)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(label)}">',
            f"<title>{escape(label)}</title>",
            f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{plot_bottom}"/>',
            f'<line class="axis" x1="{LEFT}" y1="{plot_bottom}" x2="{WIDTH - RIGHT}" '
            f'y2="{plot_bottom}"/>',
            f'<text class="tick" x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">'
            f"{escape(y_max_label)}</text>",
            f'<text class="tick" x="{LEFT - 4}" y="{plot_bottom}" text-anchor="end">0</text>',
            f'<text class="tick" x="{LEFT}" y="{HEIGHT - 6}">{escape(x_labels[0])}</text>',
            f'<text class="tick" x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end">'
            f"{escape(x_labels[1])}</text>",
            *body,
            "</svg>",
        ]
    )


# An axis ends on 1, 2, 2.5 or 5 times a power of ten (of the chart's unit).
_ROUND = (1.0, 2.0, 2.5, 5.0, 10.0)


def axis_top(
    values: Sequence[float | None],
    floor: float,
    unit: Callable[[float], float] = lambda peak: 1.0,
    cap: float | None = None,
) -> float:
    """The top of the y axis: a round number of `unit(peak)`s just above the highest value (or
    `floor`), never above `cap` (a share's 100 %) when the values stay under it."""
    peak = max([floor, *(v for v in values if v is not None)])
    size = unit(peak)
    if peak <= 0:
        return size
    wanted = peak * 1.05 / size  # a little room, so the highest point clears the frame
    magnitude = 10 ** math.floor(math.log10(wanted))
    top = next(step * magnitude for step in _ROUND if step * magnitude >= wanted) * size
    return min(top, cap) if cap is not None and peak <= cap else top


def _x(i: int, n: int) -> float:
    inner = WIDTH - LEFT - RIGHT
    return LEFT + (inner * (i + 0.5) / n if n else 0)


def _y(value: float, top: float) -> float:
    inner = HEIGHT - TOP - BOTTOM
    return HEIGHT - BOTTOM - inner * value / top


def line_chart(
    name: str,
    label: str,
    values: Sequence[float | None],
    window_labels: Sequence[str],
    fmt: Callable[[float], str],
    *,
    threshold: float | None = None,
    unit: Callable[[float], float] = lambda peak: 1.0,
    cap: float | None = None,
) -> str:
    """A line through the windows that have a value; a gap where one has none. The y axis ends
    on a round number of `unit(peak)`s (an hour for times of hours), at most `cap`."""
    top = axis_top(values, threshold or 0.0, unit, cap)
    body: list[str] = []
    if threshold is not None:
        y = _y(threshold, top)
        body.append(
            f'<line class="threshold" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" '
            f'y2="{y:.1f}"><title>{escape(fmt(threshold))} line</title></line>'
        )
    segment: list[str] = []
    segments: list[list[str]] = []
    for i, value in enumerate(values):
        if value is None:
            segments.append(segment)
            segment = []
            continue
        x, y = _x(i, len(values)), _y(value, top)
        segment.append(f"{x:.1f},{y:.1f}")
        over = threshold is not None and value > threshold
        body.append(
            f'<circle class="point{" over" if over else ""}" cx="{x:.1f}" cy="{y:.1f}" r="3">'
            f"<title>{escape(window_labels[i])}: {escape(fmt(value))}</title></circle>"
        )
    segments.append(segment)
    lines = [f'<polyline class="series" points="{" ".join(s)}"/>' for s in segments if len(s) > 1]
    return _frame(name, label, lines + body, fmt(top), _ends(window_labels))


def bar_chart(
    name: str,
    label: str,
    values: Sequence[float | None],
    window_labels: Sequence[str],
    fmt: Callable[[float], str],
) -> str:
    top = axis_top(values, 0.0)
    n = len(values)
    width = max(1.0, (WIDTH - LEFT - RIGHT) / max(n, 1) * 0.7)
    body = []
    for i, value in enumerate(values):
        if value is None:
            continue
        x, y = _x(i, n) - width / 2, _y(value, top)
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
            f'height="{HEIGHT - BOTTOM - y:.1f}"><title>{escape(window_labels[i])}: '
            f"{escape(fmt(value))}</title></rect>"
        )
    return _frame(name, label, body, fmt(top), _ends(window_labels))


def _ends(labels: Sequence[str]) -> tuple[str, str]:
    return (labels[0], labels[-1]) if labels else ("", "")
