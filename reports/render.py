"""Jinja2 rendering with autoescape on: every dataset string and model output is escaped."""

from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, FileSystemLoader

from contracts.io import read_json, write_atomic
from reports.charts import bar_chart_svg, line_chart_svg, pareto_front, scatter_svg
from reports.learning_curves import learning_curve_svg
from reports.context import ReportContext, build_context

_HERE = Path(__file__).parent


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v: "" if v is None else f"{100 * v:.1f}"
    env.filters["money"] = lambda v: "" if v is None else (f"{v:.4f}" if v < 100 else f"{v:,.0f}")
    env.filters["num"] = lambda v: "" if v is None else (f"{v:.3f}" if isinstance(v, float) else v)
    env.filters["in_unit"] = lambda v, unit: env.filters["pct" if unit == "%" else "num"](v)
    env.filters["tojson_short"] = _short_json
    env.filters["md"] = lambda v: str(v).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")
    return env


def _short_json(value) -> str:
    """Settings as one line of JSON, long strings (template texts) cut to keep the table readable."""
    def cut(v):
        if isinstance(v, str) and len(v) > 60:
            return v[:57] + "..."
        if isinstance(v, dict):
            return {k: cut(x) for k, x in v.items()}
        return [cut(x) for x in v] if isinstance(v, list) else v

    return json.dumps(cut(value), ensure_ascii=False)


def _predictions(run_dir: Path, results: dict) -> dict[str, list[dict]]:
    out = {}
    for t in results["trials"]:
        path = run_dir / "trials" / t["id"] / "predictions.jsonl"
        if t.get("status") == "ok" and path.exists():
            out[t["id"]] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def _charts(ctx: ReportContext) -> dict:
    scored = [r for r in ctx.rows if r.headline is not None]
    priced = [(r.name, r.cost["per_1k_queries_usd"], r.headline) for r in scored if r.cost.get("per_1k_queries_usd")]
    return {
        "bars": bar_chart_svg([(r.name, r.headline, r.ci) for r in scored], ctx.metric_display),
        "scatter": scatter_svg(priced, "serving cost per 1,000 queries (USD, log scale)", ctx.metric_display),
        "pareto": pareto_front(priced),
        "curves": {name: line_chart_svg(series, "step", "loss") for name, series in ctx.curves.items()},
    }


def render_report(run_dir: Path) -> Path:
    """Write report.html and report.md next to results.json; returns the HTML path."""
    run_dir = Path(run_dir)
    results = read_json(run_dir / "results.json")
    if results is None:
        raise FileNotFoundError(f"{run_dir / 'results.json'} is missing or not valid JSON")
    ctx = build_context(results, _predictions(run_dir, results))
    env = _environment()
    css = (_HERE / "static" / "report.css").read_text(encoding="utf-8")
    html = env.get_template("report.html.j2").render(ctx=ctx, css=css, charts=_charts(ctx), script=(_HERE / "static" / "sort.js").read_text(),
                                                     learning=learning_curve_svg(results))
    write_atomic(run_dir / "report.html", html)
    write_atomic(run_dir / "report.md", env.get_template("report.md.j2").render(ctx=ctx))
    return run_dir / "report.html"
