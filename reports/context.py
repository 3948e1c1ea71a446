"""results.json (+ stored predictions) -> the numbers a report shows. No HTML or Markdown here, so the
two formats always agree.

What a trial is (does it train, does it retrieve) and what a metric is (its name, direction, unit) come
from results.json's `families` and `metrics`, which the registries declare; a results.json without them
gets no family sections and plain metric names. Nothing here infers a trial's kind from which keys exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reports.forecast import forecast_table
from reports.answers import answers_table
from reports.cells import FactTable
from reports.latency import latency_table
from reports.models import break_even, model_matrix
from reports.training import training_table


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
    metric_unit: str
    rows: list[Row]
    metric_columns: list[dict[str, str]]
    """Every declared metric some trial has: {name, display_name, unit}."""
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
    examples: list[dict] = field(default_factory=list)
    """The best trial's wrong answers (input, target, output)."""
    trials: list[dict] = field(default_factory=list)
    target_scale: dict[str, Any] | None = None
    training: list[dict[str, Any]] = field(default_factory=list)
    models: dict[str, Any] | None = None
    """Models x strategies (`reports.models.model_matrix`), when the task compares several models."""
    break_even: str | None = None
    answers: FactTable | None = None
    """qa / generation: precision, recall, ROUGE-L beside F1, grounding and retrieval, the generation budget and its hits."""
    latency: FactTable | None = None
    """Per-query latency at batch 1 beside the batch share, each with how it was measured."""
    training_origin: FactTable | None = None
    """Whether each weight-changing trial trained or reused a training, with the original training's figures."""
    forecast: dict[str, Any] | None = None
    """Forecast against actual seconds per trial (`reports.forecast.forecast_table`)."""


def _note(trial: dict) -> str:
    """A family's one-line account of its trial (details.summary: template picked, chunks, index) and its warnings."""
    details = trial.get("details") or {}
    if trial.get("status") not in ("ok", "pending"):
        return trial.get("error", "")
    return "; ".join(([details["summary"]] if details.get("summary") else []) + details.get("warnings", []))


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


def _training(trials: list[dict], families: dict[str, dict]) -> list[dict]:
    """One row per trial whose family changes weights: size, speed, memory (estimated against measured), curve flags."""
    rows = []
    for t in trials:
        if t.get("status") != "ok" or not families.get(t["strategy"], {}).get("changes_weights"):
            continue
        r, d = t.get("resources") or {}, t.get("details") or {}
        flags = [name for name in ("overfitting", "underfitting") if d.get(name)]
        rows.append({"trial": t["name"], "trainable": r.get("trainable_params"), "trainable_pct": r.get("trainable_pct"),
                     "training_from": r.get("training_from"),
                     "weights_mb": r.get("weights_mb"), "adapter_mb": r.get("adapter_mb"), "train_s": r.get("train_s"),
                     "tokens_per_s": r.get("tokens_per_s"), "peak_rss_mb": r.get("peak_rss_mb"),
                     "estimate": t.get("memory_estimate"), "flags": ", ".join(flags) or "none",
                     "epochs": f"{d.get('epochs_run')} (best {d.get('best_epoch')})" if "epochs_run" in d else ""})
    return rows


def _arms(trials: list[dict]) -> list[dict]:
    rows = []
    for t in trials:
        for role, other in ((t.get("details") or {}).get("compare_with") or {}).items():
            if comp := (t.get("comparisons") or {}).get(role):
                rows.append({"trial": t["name"], "other": other, **comp})
    return rows


def _retrieval(trials: list[dict], families: dict[str, dict]) -> list[dict]:
    """One row per trial whose family retrieves: the retriever against the gold documents (recall@k, MRR; when
    the test set names them), the index against exact search, and what the index cost."""
    rows = []
    for t in trials:
        if t.get("status") != "ok" or not families.get(t["strategy"], {}).get("retrieves"):
            continue
        m, r = t.get("metrics") or {}, t.get("resources") or {}
        rows.append({"trial": t["name"], "recall_at_k": m.get("recall_at_k"), "mrr": m.get("mrr"),
                     "index_recall_at_k": r.get("index_recall_at_k"),
                     "chunks": ((t.get("details") or {}).get("chunking") or {}).get("chunks"),
                     "build_s": r.get("index_build_s"), "query_p50_ms": r.get("query_ms_p50")})
    return rows


def pick_and_zero_shot(results: dict) -> tuple[str | None, str | None]:
    """Names of the recommended trial and of the run's zero-shot reference (the trial others were compared with)."""
    pick = (results.get("recommendation") or {}).get("pick")
    zero = next((c["vs_zero_shot"]["other"] for t in results["trials"] if (c := t.get("comparisons") or {}).get("vs_zero_shot")), None)
    return pick, zero


def build_context(results: dict, predictions: dict[str, list[dict]] | None = None) -> ReportContext:
    predictions = predictions or {}
    trials, families, declared = results["trials"], results.get("families") or {}, results.get("metrics") or {}
    metric = results["task"]["metric"]
    headline = declared.get(metric, {})
    present = {name for t in trials for name in (t.get("metrics") or {})}
    columns = [{"name": n, "display_name": f.get("display_name", n), "unit": f.get("unit", "")} for n, f in declared.items() if n in present]
    rec = results.get("recommendation") or {}
    excluded = rec.get("excluded", {})
    rows = []
    for t in trials:
        m = t.get("metrics") or {}
        ci = m.get(f"{metric}_ci95")
        verdict = ((t.get("comparisons") or {}).get("vs_zero_shot") or {}).get("verdict", "")
        rows.append(Row(t["name"], t["strategy"], t["status"], m.get(metric), tuple(ci) if ci else None,
                        {c["name"]: m[c["name"]] for c in columns if c["name"] in m}, t.get("resources") or {}, t.get("cost") or {},
                        t.get("latency") or {}, verdict, excluded.get(t["name"], []), _note(t)))
    sign = 1 if headline.get("higher_is_better", True) else -1
    rows.sort(key=lambda r: (r.headline is None, -sign * (r.headline or 0)))
    forgetting, skipped = _forgetting_rows(trials)
    best_id = next((t["id"] for t in trials if rows and rows[0].headline is not None and t["name"] == rows[0].name), None)
    best_preds = predictions.get(best_id, [])
    return ReportContext(
        task=results["task"], metric=metric, metric_display=headline.get("display_name", metric), metric_unit=headline.get("unit", "%"),  # a results.json without `metrics` predates units: all were fractions
        rows=rows, metric_columns=columns, warnings=results.get("warnings", []), environment=results.get("environment", {}),
        complete=results.get("complete", False), recommendation=rec or None, statistics=results.get("statistics") or {},
        forgetting=forgetting, forgetting_skipped=skipped, curves=_curves(trials), retrieval=_retrieval(trials, families),
        arms=_arms(trials),
        examples=[p for p in best_preds if p.get("output") != p.get("target")][:12], trials=trials,
        target_scale=results.get("target_scale"), training=_training(trials, families),
        models=model_matrix(trials, metric), break_even=break_even(results), forecast=forecast_table(trials),
        answers=answers_table(results), latency=latency_table(results), training_origin=training_table(results),
    )
