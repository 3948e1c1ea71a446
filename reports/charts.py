"""Inline SVG charts: visible without JavaScript, offline and in print. Every label is escaped."""

from __future__ import annotations

import math
from html import escape

PALETTE = ["#2f6fd6", "#d65f2f", "#2fa36b", "#8a4fd6", "#c9a227", "#d62f8a", "#4f9fd6", "#6b6b6b"]


def _svg_open(width: int, height: int, label: str) -> str:
    return (f'<svg class="chart" role="img" aria-label="{escape(label)}" viewBox="0 0 {width} {height}" '
            f'width="100%" xmlns="http://www.w3.org/2000/svg">')


def bar_chart_svg(bars: list[tuple[str, float, tuple[float, float] | None]], label: str, width: int = 640) -> str:
    """Horizontal bars (0-100%) with 95% CI whiskers, one per trial."""
    if not bars:
        return ""
    row, left, right = 28, 190, 60
    plot = width - left - right
    height = row * len(bars) + 40
    x = lambda v: left + plot * max(0.0, min(1.0, v))  # noqa: E731
    parts = [_svg_open(width, height, f"{label} by trial")]
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="10" y2="{height - 25}" class="grid"/>'
                     f'<text x="{x(tick):.1f}" y="{height - 10}" text-anchor="middle" class="tick">{tick:.0%}</text>')
    for i, (name, value, ci) in enumerate(bars):
        y = 14 + i * row
        parts.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end" class="label">{escape(name)}</text>'
                     f'<rect x="{left}" y="{y + 2}" width="{x(value) - left:.1f}" height="{row - 10}" class="bar"/>')
        if ci:
            cy = y + row / 2 - 3
            parts.append(f'<line x1="{x(ci[0]):.1f}" x2="{x(ci[1]):.1f}" y1="{cy}" y2="{cy}" class="ci"/>'
                         f'<line x1="{x(ci[0]):.1f}" x2="{x(ci[0]):.1f}" y1="{cy - 5}" y2="{cy + 5}" class="ci"/>'
                         f'<line x1="{x(ci[1]):.1f}" x2="{x(ci[1]):.1f}" y1="{cy - 5}" y2="{cy + 5}" class="ci"/>')
        parts.append(f'<text x="{x(max(value, ci[1] if ci else value)) + 4:.1f}" y="{y + 14}" class="value">{value:.1%}</text>')
    parts.append("</svg>")
    return "".join(parts)


def pareto_front(points: list[tuple[str, float, float]]) -> list[str]:
    """Names of points not dominated by another (lower or equal cost and higher or equal quality)."""
    front = []
    for name, cost, quality in points:
        dominated = any(c <= cost and q >= quality and (c, q) != (cost, quality) for _, c, q in points)
        if not dominated:
            front.append(name)
    return front


def scatter_svg(points: list[tuple[str, float, float]], x_label: str, y_label: str, width: int = 640, height: int = 340) -> str:
    """Quality (y, 0-100%) against cost (x, log scale) with the Pareto frontier drawn as a step line."""
    if not points:
        return ""
    left, right, top, bottom = 60, 30, 20, 50
    costs = [max(c, 1e-9) for _, c, _ in points]
    lo, hi = math.log10(min(costs)), math.log10(max(costs))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    lo, hi = lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)
    x = lambda c: left + (width - left - right) * (math.log10(max(c, 1e-9)) - lo) / (hi - lo)  # noqa: E731
    y = lambda q: top + (height - top - bottom) * (1 - max(0.0, min(1.0, q)))  # noqa: E731
    parts = [_svg_open(width, height, f"{y_label} against {x_label}")]
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" class="tick">{tick:.0%}</text>')
    for exp in range(math.ceil(lo), math.floor(hi) + 1):
        parts.append(f'<line x1="{x(10 ** exp):.1f}" x2="{x(10 ** exp):.1f}" y1="{top}" y2="{height - bottom}" class="grid"/>'
                     f'<text x="{x(10 ** exp):.1f}" y="{height - bottom + 16}" text-anchor="middle" class="tick">${10 ** exp:g}</text>')
    front = sorted((p for p in points if p[0] in pareto_front(points)), key=lambda p: p[1])
    if len(front) > 1:
        path = " ".join(f"{x(c):.1f},{y(q):.1f}" for _, c, q in front)
        parts.append(f'<polyline points="{path}" class="front"/>')
    for i, (name, cost, quality) in enumerate(points):
        cls = "dot on-front" if any(f[0] == name for f in front) else "dot"
        right_half = x(cost) > (left + width) / 2  # labels there run leftwards, so they stay inside the chart
        parts.append(f'<circle cx="{x(cost):.1f}" cy="{y(quality):.1f}" r="5" class="{cls}"/>'
                     f'<text x="{x(cost) + (-8 if right_half else 8):.1f}" y="{y(quality) - 6:.1f}" '
                     f'text-anchor="{"end" if right_half else "start"}" class="label">{escape(name)}</text>')
    parts.append(f'<text x="{(width + left) / 2:.0f}" y="{height - 8}" text-anchor="middle" class="axis">{escape(x_label)}</text>'
                 f'<text x="14" y="{(height - bottom) / 2:.0f}" transform="rotate(-90 14 {(height - bottom) / 2:.0f})" '
                 f'text-anchor="middle" class="axis">{escape(y_label)}</text></svg>')
    return "".join(parts)


def line_chart_svg(series: dict[str, list[tuple[float, float]]], x_label: str, y_label: str, width: int = 640, height: int = 260) -> str:
    """Several named lines (e.g. train and validation loss per step) on shared axes."""
    series = {k: v for k, v in series.items() if v}
    if not series:
        return ""
    left, right, top, bottom = 55, 130, 15, 40
    xs = [p[0] for v in series.values() for p in v]
    ys = [p[1] for v in series.values() for p in v]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    x = lambda v: left + (width - left - right) * (v - x0) / (x1 - x0)  # noqa: E731
    y = lambda v: top + (height - top - bottom) * (1 - (v - y0) / (y1 - y0))  # noqa: E731
    parts = [_svg_open(width, height, f"{y_label} against {x_label}")]
    for frac in (0, 0.5, 1):
        value = y0 + frac * (y1 - y0)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" class="tick">{value:.3g}</text>')
    for i, (name, points) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        if len(points) == 1:
            parts.append(f'<circle cx="{x(points[0][0]):.1f}" cy="{y(points[0][1]):.1f}" r="3" fill="{colour}"/>')
        parts.append(f'<text x="{width - right + 8}" y="{top + 14 + 16 * i}" class="label" fill="{colour}">{escape(name)}</text>')
    parts.append(f'<text x="{(width - right + left) / 2:.0f}" y="{height - 6}" text-anchor="middle" class="axis">{escape(x_label)}</text></svg>')
    return "".join(parts)
