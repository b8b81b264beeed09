"""The dashboard's server-rendered bar chart (``admin/charts.py``): its y axis."""

from __future__ import annotations

import re

import pytest

from satshare.admin.charts import BOTTOM, HEIGHT, TOP, WIDTH, axis_step, daily_bars

PEAKS = [0, 1, 2, 3, 4, 5, 7, 9, 10, 11, 24, 25, 99, 101, 1_234, 21_000, 999_999, 10**7 + 1]


@pytest.mark.parametrize("peak", PEAKS)
def test_the_axis_reaches_the_peak_in_four_round_steps(peak: int) -> None:
    step = axis_step(peak)
    assert 4 * step >= peak
    # Round: 1, 2, 2.5 or 5 times a power of ten, and no step one notch smaller would do.
    digits = str(step).rstrip("0")
    assert digits in ("1", "2", "25", "5"), step
    if peak >= 4:
        assert 4 * step <= 2.5 * peak
    # The smallest such step: every rounder step below it is too short for the peak.
    rounder = (m * 10**k for k in range(12) for m in (1, 2, 5)), (25 * 10**k for k in range(12))
    smaller = [s for candidates in rounder for s in candidates if s < step]
    assert all(4 * s < peak for s in smaller)


@pytest.mark.parametrize("peak", PEAKS)
def test_the_labels_are_distinct_and_the_tallest_bar_fits(peak: int) -> None:
    days = ["2026-11-29", "2026-11-30", "2026-12-01"]
    svg = daily_bars(days, [("Gross", "#1f6feb", [0, peak, peak // 2]), ("Share", "#f60", [0] * 3)])
    labels = re.findall(r'text-anchor="end"[^>]*>([^<]+)</text>', svg)
    assert len(labels) == 5 and len(set(labels)) == 5, labels
    assert labels[0] == "0"
    bars = [
        (float(y), float(h))
        for y, h in re.findall(
            r'<rect x="[-0-9.]+" y="(-?[0-9.]+)" width="[-0-9.]+" height="(-?[0-9.]+)"', svg
        )
    ]
    assert len(bars) == 6
    # Inside the plot: below its top margin, above the day labels.
    assert all(y >= TOP and 0 <= h <= HEIGHT - BOTTOM - TOP for y, h in bars), bars
    tallest = max(h for _, h in bars)
    if peak:
        # The tallest bar reaches above the gridline under the top one (the axis is no
        # taller than it needs): at least 3/4 of the plot minus rounding.
        assert tallest >= (HEIGHT - BOTTOM - TOP) * peak / (4 * axis_step(peak)) - 0.1
    assert f'viewBox="0 0 {WIDTH} {HEIGHT}"' in svg
