"""Jinja2 rendering with autoescape on: every dataset string and model output is escaped."""

from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, FileSystemLoader

from advisor.rundir import read_json, write_atomic
from reports.charts import bar_chart_svg
from reports.context import build_context

_HERE = Path(__file__).parent


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v: "" if v is None else f"{100 * v:.1f}"
    env.filters["md"] = lambda v: str(v).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")
    return env


def _predictions(run_dir: Path, results: dict) -> dict[str, list[dict]]:
    out = {}
    for t in results["trials"]:
        path = run_dir / "trials" / t["id"] / "predictions.jsonl"
        if t.get("status") == "ok" and path.exists():
            out[t["id"]] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def render_report(run_dir: Path) -> Path:
    """Write report.html and report.md next to results.json; returns the HTML path."""
    run_dir = Path(run_dir)
    results = read_json(run_dir / "results.json")
    if results is None:
        raise FileNotFoundError(f"{run_dir / 'results.json'} is missing or not valid JSON")
    ctx = build_context(results, _predictions(run_dir, results))
    env = _environment()
    css = (_HERE / "static" / "report.css").read_text(encoding="utf-8")
    chart = bar_chart_svg([(r.name, r.headline, r.ci) for r in ctx.rows if r.headline is not None], ctx.metric_display)
    html = env.get_template("report.html.j2").render(ctx=ctx, css=css, chart=chart)
    write_atomic(run_dir / "report.html", html)
    write_atomic(run_dir / "report.md", env.get_template("report.md.j2").render(ctx=ctx))
    return run_dir / "report.html"
