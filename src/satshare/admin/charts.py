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


def daily_bars(days: Sequence[str], series: Sequence[tuple[str, str, Sequence[int]]]) -> str:
    """Grouped bars: one group per day, one bar per series (name, colour, values in sats)."""
    peak = max([1, *(v for _, _, values in series for v in values)])
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    group = plot_w / max(1, len(days))
    bar = max(1.0, group * 0.8 / max(1, len(series)))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'class="ss-chart" role="img">'
    ]
    for step in range(5):
        value = round(peak * step / 4)
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
            parts.append(
                f'<text x="{LEFT + i * group + group / 2:.1f}" y="{HEIGHT - 8}" '
                f'text-anchor="middle" font-size="11" fill="#667382">{escape(day[5:])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
