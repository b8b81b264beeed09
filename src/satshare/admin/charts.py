"""Server-rendered SVG bar charts (no JavaScript, nothing to load): revenue and commissions
per day on the dashboard. A few lines of SVG are all a bar chart needs here, so no chart
library is shipped for it."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 720, 220
LEFT, BOTTOM, TOP = 64, 28, 12


def _label(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1_000:
        return f"{value / 1_000:g}k"
    return str(value)


def axis_step(peak: int) -> int:
    """The gap between the y axis's five gridlines: the smallest of 1, 2, 2.5 and 5 times a
    power of ten (2.5 only from 25: labels are whole sats) whose four steps reach ``peak``.
    So the labels are distinct round numbers (0, 1, 2, 3, 4 for a peak of 3, not 0, 1, 2,
    2, 3) and the tallest bar is never cut off."""
    magnitude = 1
    while True:
        for tenths in (10, 20, 25, 50):
            step, exact = divmod(tenths * magnitude, 10)
            if exact == 0 and 4 * step >= peak:
                return step
        magnitude *= 10


def daily_bars(days: Sequence[str], series: Sequence[tuple[str, str, Sequence[int]]]) -> str:
    """Grouped bars: one group per day, one bar per series (name, colour, values in sats)."""
    step_value = axis_step(max([0, *(v for _, _, values in series for v in values)]))
    peak = 4 * step_value  # the top gridline
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    group = plot_w / max(1, len(days))
    bar = max(1.0, group * 0.8 / max(1, len(series)))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'class="ss-chart" role="img">'
    ]
    for step in range(5):
        value = step_value * step
        y = TOP + plot_h - plot_h * step / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e6e7e9"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#667382">{_label(value)}</text>'
        )
    every = max(1, len(days) // 8)
    for i, day in enumerate(days):
        x0 = LEFT + i * group + group * 0.1
        for j, (name, colour, values) in enumerate(series):
            value = values[i]
            h = plot_h * max(0, value) / peak  # a day of net refunds draws no bar
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(day)} {escape(name)}: '
                f"{value} sats</title></rect>"
            )
        if i % every == 0:
            # Every other day label is marked: a phone shows the labels larger and only
            # half of them (panel.css), or they would run together.
            alternate = " ss-day-alt" if (i // every) % 2 else ""
            parts.append(
                f'<text class="ss-day{alternate}" x="{LEFT + i * group + group / 2:.1f}" '
                f'y="{HEIGHT - 8}" text-anchor="middle" font-size="11" fill="#667382">'
                f"{escape(day[5:])}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)
