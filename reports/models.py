"""Models x strategies (task.yaml `models:`): the matrix of quality, cost and latency, and the query volume at
which a fine-tuned model we serve ourselves becomes cheaper than prompting or retrieval on an endpoint.

Read from results.json only: a trial's model is `settings.model` (its name and kind), what its family does
is `families`; trials without a model entry (one local model) give no matrix.
"""

from __future__ import annotations

from typing import Any

HORIZON_MONTHS = {"daily": 1 / 30, "weekly": 7 / 30, "monthly": 1, "yearly": 12, "never": 12}
"""Months one training serves: until the knowledge changes (retraining), at most a year."""


def _model(trial: dict) -> dict:
    return (trial.get("settings") or {}).get("model") or {}


def _strategy(trial: dict) -> str:
    """The trial's name without its model's prefix."""
    prefix = f"{_model(trial).get('name')}/"
    return trial["name"][len(prefix):] if trial["name"].startswith(prefix) else trial["name"]


def model_matrix(trials: list[dict], metric: str) -> dict[str, Any] | None:
    """{models, strategies, cells[model][strategy]: {headline, ci, usd_per_1k, p95_ms, status, cache_hits, ...}}."""
    tagged = [t for t in trials if _model(t)]
    if not tagged:
        return None
    models = list(dict.fromkeys(_model(t)["name"] for t in tagged))
    strategies = list(dict.fromkeys(_strategy(t) for t in tagged))
    cells: dict[str, dict[str, dict]] = {m: {} for m in models}
    for t in tagged:
        res, m = t.get("resources") or {}, t.get("metrics") or {}
        cells[_model(t)["name"]][_strategy(t)] = {
            "status": t["status"], "headline": m.get(metric), "ci": m.get(f"{metric}_ci95"),
            "usd_per_1k": (t.get("cost") or {}).get("per_1k_queries_usd"), "p95_ms": (t.get("latency") or {}).get("p95_ms"),
            "cache_hits": res.get("cache_hits"), "requests_sent": res.get("requests_sent"), "unparseable_rate": res.get("unparseable_rate")}
    kinds = {_model(t)["name"]: _model(t).get("kind") for t in tagged}
    return {"models": models, "kinds": kinds, "strategies": strategies, "cells": cells}


def _best(trials: list[dict], metric: str, higher: bool) -> dict | None:
    scored = [t for t in trials if t.get("status") == "ok" and (t.get("metrics") or {}).get(metric) is not None and t.get("cost")]
    return max(scored, key=lambda t: t["metrics"][metric] * (1 if higher else -1), default=None)


def break_even(results: dict) -> str | None:
    """The sentence: the monthly query volume above which the best fine-tuned local trial (its training spread over
    the months it serves before the knowledge changes) costs less than the best endpoint trial."""
    trials, families = results["trials"], results.get("families") or {}
    metric = results["task"]["metric"]
    higher = (results.get("metrics") or {}).get(metric, {}).get("higher_is_better", True)
    hosted = _best([t for t in trials if _model(t).get("kind") == "endpoint"], metric, higher)
    tuned = _best([t for t in trials if _model(t).get("kind") == "local" and (families.get(t["strategy"]) or {}).get("changes_weights")],
                  metric, higher)
    if hosted is None or tuned is None:
        return None
    changes = (((results["task"].get("spec") or {}).get("constraints") or {}).get("knowledge_changes")) or "never"
    months = HORIZON_MONTHS[changes]
    h, f = hosted["cost"], tuned["cost"]
    saving = (h["per_1k_queries_usd"] - f["per_1k_queries_usd"]) / 1000
    training = f["one_time_usd"] - h["one_time_usd"]
    prices = (f"{tuned['name']}: ${f['per_1k_queries_usd']:.4g} per 1k queries after ${f['one_time_usd']:.4g} of training; "
              f"{hosted['name']}: ${h['per_1k_queries_usd']:.4g} per 1k queries")
    if saving <= 0:
        return f"The fine-tuned {tuned['name']} never becomes cheaper than {hosted['name']} at the measured serving costs ({prices})."
    volume = max(training, 0.0) / saving / months
    horizon = f"retrained {changes}" if changes not in ("never", "yearly") else "its training spread over 12 months"
    return (f"Serving the fine-tuned {tuned['name']} ourselves becomes cheaper than {hosted['name']} above {volume:,.0f} queries "
            f"a month ({horizon}; {prices}).")
