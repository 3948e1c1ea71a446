"""The learning-curve chart: measured quality (95% CI) against train examples, the fitted curve and the bar.

Reads results.json only (statistics.learning_curves, task.spec.constraints.min_quality). The x axis is
logarithmic, as the fitted power law err(n) = a*n^-b + c is; the fitted line runs past the largest
measured size (dashed: an extrapolation) up to the examples-to-bar figure or two doublings, never past
MAX_EXTRAPOLATION times the largest size.
"""

from __future__ import annotations

import math
from html import escape

from contracts.records import MAX_EXTRAPOLATION
from reports.charts import PALETTE, _svg_open


def _fitted(fit: dict, n: float, higher_is_better: bool) -> float:
    err = fit["a"] * n ** -fit["b"] + fit["c"]
    return 1 - err if higher_is_better else err


def learning_curve_svg(results: dict, width: int = 640, height: int = 300) -> str:
    """One chart for every curve of the run; "" when the run measured none."""
    curves = (results.get("statistics") or {}).get("learning_curves") or {}
    if not curves:
        return ""
    metric = results["task"]["metric"]
    higher = (results.get("metrics") or {}).get(metric, {}).get("higher_is_better", True)
    bar = ((results["task"].get("spec") or {}).get("constraints") or {}).get("min_quality")
    ends = [max(4, min((c.get("to_bar") or {}).get("extrapolation") or 0, MAX_EXTRAPOLATION)) * c["points"][-1]["n"] for c in curves.values()]
    x0, x1 = math.log(min(p["n"] for c in curves.values() for p in c["points"])), math.log(max(ends))
    left, right, top, bottom = 55, 150, 15, 40
    x = lambda n: left + (width - left - right) * (math.log(n) - x0) / (x1 - x0 or 1)  # noqa: E731
    y = lambda v: top + (height - top - bottom) * (1 - v)  # noqa: E731 - every metric is in [0, 1]
    parts = [_svg_open(width, height, f"{metric} against train examples")]
    for v in (0, 0.5, 1):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="tick">{v:.0%}</text>')
    marks = ({p["n"] for c in curves.values() for p in c["points"]} | {round(max(ends))}
             | {t["n"] for c in curves.values() if (t := c.get("to_bar")) and t.get("n")})
    for n in sorted(m for m in marks if m <= math.exp(x1)):
        parts.append(f'<text x="{x(n):.1f}" y="{height - bottom + 14}" text-anchor="middle" class="tick">{n:,}</text>')
    if bar is not None:
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(bar):.1f}" y2="{y(bar):.1f}" stroke="#b00" stroke-dasharray="6 4"/>'
                     f'<text x="{width - right + 8}" y="{y(bar) + 4:.1f}" class="label" fill="#b00">bar {bar:.0%}</text>')
    legend_y, free = [], top + 14.0
    for _ in curves:  # the legend goes down the right margin, stepping over the bar's label
        while bar is not None and abs(free - (y(bar) + 4)) < 14:
            free += 16
        legend_y.append(free)
        free += 16
    for i, (name, c) in enumerate(curves.items()):
        colour, points = PALETTE[i % len(PALETTE)], c["points"]
        for p in points:
            lo, hi = p.get("ci95") or (p["value"], p["value"])
            parts.append(f'<line x1="{x(p["n"]):.1f}" x2="{x(p["n"]):.1f}" y1="{y(lo):.1f}" y2="{y(hi):.1f}" stroke="{colour}"/>'
                         f'<circle cx="{x(p["n"]):.1f}" cy="{y(p["value"]):.1f}" r="3.5" fill="{colour}">'
                         f'<title>{escape(p["trial"])}: {p["value"]:.1%} on {p["n"]} examples</title></circle>')
        if fit := c.get("fit"):
            last, end = points[-1]["n"], ends[i]
            for lo_n, hi_n, dash in ((points[0]["n"], last, ""), (last, end, ' stroke-dasharray="3 3"')):
                ns = [lo_n * (hi_n / lo_n) ** (k / 40) for k in range(41)]
                path = " ".join(f"{x(n):.1f},{y(min(1, max(0, _fitted(fit, n, higher)))):.1f}" for n in ns)
                parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"{dash}/>')
        parts.append(f'<text x="{width - right + 8}" y="{legend_y[i]:.1f}" class="label" fill="{colour}">{escape(name)}</text>')
    parts.append(f'<text x="{(width - right + left) / 2:.0f}" y="{height - 6}" text-anchor="middle" class="axis">'
                 f'train examples (log scale; dashed: the fit extrapolated)</text></svg>')
    return "".join(parts)
