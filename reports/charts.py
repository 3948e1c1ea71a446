"""Inline SVG charts: visible without JavaScript, offline and in print."""

from __future__ import annotations

from html import escape


def bar_chart_svg(bars: list[tuple[str, float, tuple[float, float] | None]], label: str, width: int = 640) -> str:
    """Horizontal bars (0-100%) with 95% CI whiskers, one per trial."""
    if not bars:
        return ""
    row, left, right = 28, 190, 50
    plot = width - left - right
    height = row * len(bars) + 40
    x = lambda v: left + plot * max(0.0, min(1.0, v))  # noqa: E731
    parts = [f'<svg class="chart" role="img" aria-label="{escape(label)} by trial" viewBox="0 0 {width} {height}" '
             f'width="100%" xmlns="http://www.w3.org/2000/svg">']
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
        parts.append(f'<text x="{x(value) + 4:.1f}" y="{y + 14}" class="value">{value:.1%}</text>')
    parts.append("</svg>")
    return "".join(parts)
