"""results.json (+ stored predictions) -> the numbers a report shows. No HTML or Markdown here, so the
two formats always agree."""

from __future__ import annotations

from collections import Counter
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
    cost: dict[str, Any]
    latency: dict[str, Any]
    verdict: str
    excluded: list[str]
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
    recommendation: dict[str, Any] | None
    statistics: dict[str, Any]
    forgetting: list[dict[str, Any]] = field(default_factory=list)
    forgetting_skipped: list[str] = field(default_factory=list)
    curves: dict[str, dict[str, list[tuple[float, float]]]] = field(default_factory=dict)
    retrieval: list[dict[str, Any]] = field(default_factory=list)
    arms: list[dict[str, Any]] = field(default_factory=list)
    """Combined trials against each of their parts (details.compare_with)."""
    per_class: list[dict[str, Any]] = field(default_factory=list)
    examples: list[dict] = field(default_factory=list)
    """The best trial's wrong answers (input, target, output)."""
    trials: list[dict] = field(default_factory=list)
    target_scale: dict[str, Any] | None = None
    training: list[dict[str, Any]] = field(default_factory=list)


def _note(trial: dict) -> str:
    details = trial.get("details") or {}
    if trial.get("status") not in ("ok", "pending"):
        return trial.get("error", "")
    notes = []
    if details.get("template_range"):
        lo, hi = details["template_range"]
        notes.append(f"template '{details['template']}' (picked on {details['template_selected_on']}); "
                     f"range over templates {lo:.1%} to {hi:.1%}")
    if details.get("summary"):  # a family's one-line account of its knobs (e.g. RAG chunks, index)
        notes.append(details["summary"])
    notes += details.get("warnings", [])
    return "; ".join(notes)


def _forgetting_rows(trials: list[dict]) -> tuple[list[dict], list[str]]:
    rows, skipped = [], []
    for t in trials:
        f = t.get("forgetting")
        if not f:
            continue
        if not f.get("applies"):
            skipped.append(t["name"])
        elif "error" in f:
            rows.append({"trial": t["name"], "benchmark": "-", "error": f["error"]})
        else:
            rows += [{"trial": t["name"], "benchmark": b, **v} for b, v in f["benchmarks"].items()]
    return rows, skipped


def _curves(trials: list[dict]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """Loss curves per trial: details.curves = {series name: [{"step": x, "loss": y}, ...]}."""
    out = {}
    for t in trials:
        curves = (t.get("details") or {}).get("curves") or {}
        series = {name: [(float(p["step"]), float(p["loss"])) for p in points] for name, points in curves.items()
                  if isinstance(points, list) and points and isinstance(points[0], dict)}
        if series:
            out[t["name"]] = series
    return out


def _training(trials: list[dict]) -> list[dict]:
    """One row per trial that trained: size, speed, memory (estimated against measured) and curve flags."""
    rows = []
    for t in trials:
        r, d = t.get("resources") or {}, t.get("details") or {}
        if "trainable_params" not in r:
            continue
        flags = [name for name in ("overfitting", "underfitting") if d.get(name)]
        rows.append({"trial": t["name"], "trainable": r["trainable_params"], "trainable_pct": r.get("trainable_pct"),
                     "weights_mb": r.get("weights_mb"), "adapter_mb": r.get("adapter_mb"), "train_s": r.get("train_s"),
                     "tokens_per_s": r.get("tokens_per_s"), "peak_rss_mb": r.get("peak_rss_mb"),
                     "estimate": t.get("memory_estimate"), "flags": ", ".join(flags) or "none",
                     "epochs": f"{d.get('epochs_run')} (best {d.get('best_epoch')})"})
    return rows


def _arms(trials: list[dict]) -> list[dict]:
    rows = []
    for t in trials:
        for role, other in ((t.get("details") or {}).get("compare_with") or {}).items():
            if comp := (t.get("comparisons") or {}).get(role):
                rows.append({"trial": t["name"], "other": other, **comp})
    return rows


def _retrieval(trials: list[dict]) -> list[dict]:
    rows = []
    for t in trials:
        m = t.get("metrics") or {}
        recall = {k: v for k, v in m.items() if k.startswith("recall_at_") and not k.endswith("_ci95")}
        if recall or "mrr" in m:
            r = t.get("resources") or {}
            rows.append({"trial": t["name"], **recall, "mrr": m.get("mrr"),
                         "index_recall": r.get("index_recall_vs_flat", r.get("index_recall_at_k")),
                         "chunks": ((t.get("details") or {}).get("chunking") or {}).get("chunks"),
                         "build_s": r.get("index_build_s"), "query_p50_ms": r.get("query_ms_p50")})
    return rows


def _per_class(predictions: list[dict]) -> list[dict]:
    total, right = Counter(), Counter()
    for p in predictions:
        total[p["target"]] += 1
        right[p["target"]] += p["output"] == p["target"]
    return [{"label": k, "n": total[k], "accuracy": right[k] / total[k]} for k in sorted(total)]


def build_context(results: dict, predictions: dict[str, list[dict]] | None = None) -> ReportContext:
    from evaluators import metrics

    predictions = predictions or {}
    metric = results["task"]["metric"]
    names = metrics.for_task(results["task"]["type"])
    rec = results.get("recommendation") or {}
    excluded = rec.get("excluded", {})
    rows = []
    for t in results["trials"]:
        m = t.get("metrics") or {}
        ci = m.get(f"{metric}_ci95")
        vs = (t.get("comparisons") or {})
        verdict = (vs.get("vs_zero_shot") or {}).get("verdict", "")
        rows.append(Row(t["name"], t["strategy"], t["status"], m.get(metric), tuple(ci) if ci else None,
                        {n: m[n] for n in names if n in m}, t.get("resources") or {}, t.get("cost") or {},
                        t.get("latency") or {}, verdict, excluded.get(t["name"], []), _note(t)))
    rows.sort(key=lambda r: (r.headline is None, -(r.headline or 0)))
    forgetting, skipped = _forgetting_rows(results["trials"])
    best_id = next((t["id"] for t in results["trials"] if rows and rows[0].headline is not None and t["name"] == rows[0].name), None)
    best_preds = predictions.get(best_id, [])
    return ReportContext(
        task=results["task"], metric=metric, metric_display=metrics.get(metric).display_name, rows=rows, metric_names=names,
        warnings=results.get("warnings", []), environment=results.get("environment", {}), complete=results.get("complete", False),
        recommendation=rec or None, statistics=results.get("statistics") or {}, forgetting=forgetting, forgetting_skipped=skipped,
        curves=_curves(results["trials"]), retrieval=_retrieval(results["trials"]), arms=_arms(results["trials"]),
        per_class=_per_class(best_preds) if results["task"]["type"] == "classification" else [],
        examples=[p for p in best_preds if p.get("output") != p.get("target")][:12], trials=results["trials"],
        target_scale=results.get("target_scale"), training=_training(results["trials"]),
    )
