"""Charts as SVG drawn on the server: bars computed here, markup written by the templates
(`_charts.html`), so every label is escaped like any other text and no script runs."""

from __future__ import annotations

from dataclasses import dataclass

from clearport.payments.stats import BucketStat, GroupStat

WIDTH = 460
ROW_HEIGHT = 22
LABEL_WIDTH = 130
VALUE_WIDTH = 90
COLUMN_CHART_HEIGHT = 160


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value_text: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    width: int
    height: int
    bars: list[Bar]
    empty: bool


def rate_bars(title: str, groups: list[GroupStat], limit: int = 12) -> Chart:
    """Horizontal bars: approval rate per group, with its count."""
    shown = [g for g in groups if g.approval_rate is not None][:limit]
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    bars = [
        Bar(
            label=g.key,
            value_text=f"{(g.approval_rate or 0) * 100:.1f}% of {g.total}",
            x=LABEL_WIDTH,
            y=i * ROW_HEIGHT + 4,
            width=max(1.0, span * (g.approval_rate or 0)),
            height=ROW_HEIGHT - 8,
        )
        for i, g in enumerate(shown)
    ]
    return Chart(title, WIDTH, max(1, len(bars)) * ROW_HEIGHT + 4, bars, not bars)


def count_bars(title: str, groups: list[GroupStat], limit: int = 12) -> Chart:
    """Horizontal bars: payments per group (decline reasons)."""
    shown = groups[:limit]
    top = max((g.total for g in shown), default=0) or 1
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    bars = [
        Bar(
            g.key,
            str(g.total),
            LABEL_WIDTH,
            i * ROW_HEIGHT + 4,
            max(1.0, span * g.total / top),
            ROW_HEIGHT - 8,
        )
        for i, g in enumerate(shown)
    ]
    return Chart(title, WIDTH, max(1, len(bars)) * ROW_HEIGHT + 4, bars, not bars)


def volume_columns(title: str, buckets: list[BucketStat], label_format: str) -> Chart:
    """Columns: payments per time bucket (the approved part is the label's figure)."""
    top = max((b.total for b in buckets), default=0) or 1
    count = max(1, len(buckets))
    step = (WIDTH - 20) / count
    plot = COLUMN_CHART_HEIGHT - 30
    bars = []
    for i, b in enumerate(buckets):
        height = max(1.0, plot * b.total / top)
        bars.append(
            Bar(
                label=b.start.strftime(label_format),
                value_text=f"{b.total} ({b.approved} approved)",
                x=10 + i * step,
                y=10 + plot - height,
                width=max(1.0, step * 0.8),
                height=height,
            )
        )
    return Chart(title, WIDTH, COLUMN_CHART_HEIGHT, bars, not bars)
