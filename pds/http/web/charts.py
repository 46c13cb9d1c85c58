"""Charts drawn on the server as SVG: bars (side by side or stacked) and lines.

No script and no asset from elsewhere, so the strict CSP holds. A chart is computed here
into plain geometry (:class:`Chart`) and drawn by the ``chart`` macro of
``templates/_chart.html``, which also writes the same numbers as a table beside the drawing
(screen readers read the table; the drawing is the picture of it). Values are given per
label (a day, a month) and per series (money in, money out; one account; one measure);
``None`` is a gap. ``show`` writes a value for the tooltips and the table (an amount with
its currency, a number with its unit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# geometry in SVG user units; the drawing scales to the page's width
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 220, 56, 24, 10
COLOURS = 8  # series colours s0..s7 in pds.css
MAX_LABELS = 8  # x-axis labels written under the axis; the table has them all


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


@dataclass(frozen=True)
class Bar:
    label: str
    series: str
    shown: str
    x: float
    y: float
    width: float
    height: float
    colour: int


@dataclass(frozen=True)
class Line:
    series: str
    points: str
    colour: int
    dots: tuple[tuple[float, float, str, str], ...]  # x, y, label, shown value


@dataclass
class Chart:
    title: str
    labels: list[str]
    series: list[Series]
    rows: list[tuple[str, list[str]]]  # the table: label, then a value per series
    bars: list[Bar] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)  # y, text
    xlabels: list[tuple[float, str]] = field(default_factory=list)  # x, text
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    base: int = HEIGHT - BOTTOM
    top: int = TOP

    @property
    def empty(self) -> bool:
        return not any(v is not None for s in self.series for v in s.values)


def _table(labels: Sequence[str], series: Sequence[Series], show: Callable[[float], str]):
    return [
        (label, ["" if s.values[i] is None else show(s.values[i]) for s in series])  # type: ignore[arg-type]
        for i, label in enumerate(labels)
    ]


def _xlabels(labels: Sequence[str], slot: float, name: Callable[[str], str]):
    step = max(1, -(-len(labels) // MAX_LABELS))
    return [
        (round(LEFT + i * slot + slot / 2, 2), name(label))
        for i, label in enumerate(labels)
        if i % step == 0
    ]


def bars(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    stacked: bool = False,
    show: Callable[[float], str] = str,
    name: Callable[[str], str] = str,
) -> Chart:
    """One group of bars per label: the series side by side, or stacked when ``stacked``.
    Negative values are drawn as their size (give money out as a series of its own)."""
    chart = Chart(title, list(labels), list(series), _table(labels, series, show))
    n = len(labels)
    if stacked:
        peak = max((sum(abs(s.values[i] or 0) for s in series) for i in range(n)), default=0)
    else:
        peak = max((abs(v) for s in series for v in s.values if v is not None), default=0)
    slot = (WIDTH - LEFT) / max(n, 1)
    scale = (chart.base - TOP) / peak if peak else 0.0
    inner = slot * 0.8
    width = inner if stacked else inner / max(len(series), 1)
    for i, label in enumerate(labels):
        x0 = LEFT + i * slot + slot * 0.1
        y = float(chart.base)
        for k, s in enumerate(series):
            value = s.values[i]
            if not value:
                continue
            h = abs(value) * scale
            if stacked:
                y -= h
                top, x = y, x0
            else:
                top, x = chart.base - h, x0 + k * width
            chart.bars.append(
                Bar(
                    label,
                    s.name,
                    show(value),
                    round(x, 2),
                    round(top, 2),
                    round(width, 2),
                    round(h, 2),
                    k % COLOURS,
                )
            )
    chart.ticks = [(float(TOP + 8), show(peak)), (float(chart.base), show(0))] if peak else []
    chart.xlabels = _xlabels(labels, slot, name)
    return chart


def lines(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    show: Callable[[float], str] = str,
    name: Callable[[str], str] = str,
) -> Chart:
    """One line per series over the labels, scaled between the smallest and largest value
    (a weight of 70 to 80 kg fills the height); a ``None`` is left out (the line joins
    the values either side)."""
    chart = Chart(title, list(labels), list(series), _table(labels, series, show))
    values = [v for s in series for v in s.values if v is not None]
    if not values:
        return chart
    low, high = min(values), max(values)
    if low == high:
        low, high = low - 1, high + 1
    slot = (WIDTH - LEFT) / max(len(labels), 1)
    scale = (chart.base - TOP) / (high - low)
    for k, s in enumerate(series):
        points, dots = [], []
        for i, value in enumerate(s.values):
            if value is None:
                continue
            x = round(LEFT + i * slot + slot / 2, 2)
            y = round(chart.base - (value - low) * scale, 2)
            points.append(f"{x},{y}")
            dots.append((x, y, labels[i], show(value)))
        chart.lines.append(Line(s.name, " ".join(points), k % COLOURS, tuple(dots)))
    chart.ticks = [(float(TOP + 8), show(high)), (float(chart.base), show(low))]
    chart.xlabels = _xlabels(labels, slot, name)
    return chart
