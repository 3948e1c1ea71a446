"""results.json -> the numbers a report shows. No HTML or Markdown here, so both formats agree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Row:
    name: str
    strategy: str
    status: str
    headline: float | None
    ci: tuple[float, float] | None
    metrics: dict[str, float]
    resources: dict[str, Any]
    note: str = ""


@dataclass
class ReportContext:
    task: dict[str, Any]
    metric: str
    metric_display: str
    rows: list[Row]
    metric_names: list[str]
    warnings: list[str]
    environment: dict[str, Any]
    complete: bool
    examples: list[dict] = field(default_factory=list)
    """The best trial's wrong answers (input, target, output), for a look at failures."""


def _note(trial: dict) -> str:
    details = trial.get("details") or {}
    if details.get("template_range"):
        lo, hi = details["template_range"]
        return f"template '{details['template']}' (picked on {details['template_selected_on']}); range over templates {lo:.1%} to {hi:.1%}"
    if trial.get("status") != "ok":
        return trial.get("error", "")
    return details.get("summary", "")  # a family's one-line account of its knobs (e.g. RAG chunks, index)


def build_context(results: dict, predictions: dict[str, list[dict]] | None = None) -> ReportContext:
    from evaluators import metrics

    metric = results["task"]["metric"]
    names = metrics.for_task(results["task"]["type"])
    rows = []
    for t in results["trials"]:
        m = t.get("metrics") or {}
        ci = m.get(f"{metric}_ci95")
        rows.append(Row(t["name"], t["strategy"], t["status"], m.get(metric), tuple(ci) if ci else None,
                        {n: m[n] for n in names if n in m}, t.get("resources") or {}, _note(t)))
    rows.sort(key=lambda r: (r.headline is None, -(r.headline or 0)))
    ok = [r for r in rows if r.headline is not None]
    examples = []
    if ok and predictions:
        best = next(t for t in results["trials"] if t["name"] == ok[0].name)
        examples = [p for p in predictions.get(best["id"], []) if p.get("output") != p.get("target")][:10]
    return ReportContext(results["task"], metric, metrics.get(metric).display_name, rows, names,
                         results.get("warnings", []), results.get("environment", {}), results.get("complete", False), examples)
