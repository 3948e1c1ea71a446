"""Jinja2 rendering with autoescape on: every dataset string and model output is escaped."""

from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, FileSystemLoader

from contracts.io import read_json, write_atomic
from reports.cells import NOT_MEASURED
from reports.charts import bar_chart_svg, line_chart_svg, pareto_front, scatter_svg
from reports.classification import classification_extras
from reports.context import ReportContext, build_context, pick_and_zero_shot
from reports.drilldown import build_drilldown, read_jsonl
from reports.learning_curves import learning_curve_svg

_HERE = Path(__file__).parent


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda v: "" if v is None else f"{100 * v:.1f}"
    env.filters["money"] = lambda v: "" if v is None else (f"{v:.4f}" if v < 100 else f"{v:,.0f}")
    env.filters["num"] = lambda v: "" if v is None else (f"{v:.3f}" if isinstance(v, float) else v)
    env.filters["known"] = lambda v: NOT_MEASURED if v is None or v == "" else v
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
            out[t["id"]] = read_jsonl(path)
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


def _classification(results: dict, predictions: dict[str, list[dict]]) -> dict | None:
    """Confusion matrices and per-label F1 of the pick and of zero-shot (once when they are one trial)."""
    if results["task"]["type"] != "classification":
        return None
    by_name = {t["name"]: t["id"] for t in results["trials"]}
    pick, zero = pick_and_zero_shot(results)
    wanted = [(role, name) for role, name in (("pick", pick), ("zero-shot", zero)) if name in by_name]
    if len(wanted) == 2 and wanted[0][1] == wanted[1][1]:
        wanted = [("pick and zero-shot", pick)]
    return classification_extras([(role, name, predictions.get(by_name[name], [])) for role, name in wanted])


def _diff_changes(diff: dict | None) -> list[tuple[str, list]]:
    """(what, [value in A, value in B]) for every setting, data fingerprint, model and package that differs."""
    if not diff:
        return []
    changes = [(f"{r['trial']} setting {k}", v) for r in diff["trials"] for k, v in r.get("settings_changed", {}).items()]
    keys = ("data_fingerprints_changed", "model_changed", "packages_changed", "git_commit_changed")
    return changes + [(k, v) for key in keys for k, v in diff.get(key, {}).items()]


def render_report(run_dir: Path) -> Path:
    """Write report.html and report.md next to results.json; returns the HTML path. A diff.json next to it
    (written by `advisor compare --baseline RUN`) adds the section comparing this run with that one."""
    run_dir = Path(run_dir)
    results = read_json(run_dir / "results.json")
    if results is None:
        raise FileNotFoundError(f"{run_dir / 'results.json'} is missing or not valid JSON")
    predictions = _predictions(run_dir, results)
    ctx = build_context(results, predictions)
    diff = read_json(run_dir / "diff.json")
    drill, drill_json = build_drilldown(run_dir, results, predictions, seed=results["task"].get("seed") or 0) or (None, "")
    env = _environment()
    static = _HERE / "static"
    html = env.get_template("report.html.j2").render(
        ctx=ctx, css=(static / "report.css").read_text(encoding="utf-8"), charts=_charts(ctx), learning=learning_curve_svg(results),
        script=(static / "sort.js").read_text(encoding="utf-8"), drill=drill, drill_json=drill_json,
        drill_script=(static / "drilldown.js").read_text(encoding="utf-8"), classes=_classification(results, predictions),
        diff=diff, diff_changes=_diff_changes(diff))
    write_atomic(run_dir / "report.html", html)
    write_atomic(run_dir / "report.md", env.get_template("report.md.j2").render(ctx=ctx))
    return run_dir / "report.html"
