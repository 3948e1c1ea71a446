"""Forecast against actual: per trial, the seconds the run forecast before running it (`forecast` in its record,
advisor.forecast) against the wall time it measured (`resources.wall_s`, plus `resources.forgetting_s` when the
forecast counted the forgetting benchmarks).

Read from results.json only. A reused trial keeps both figures from the run that measured it. The issue's bar
is a factor of 1.5 either way: 1/1.5 <= actual / forecast <= 1.5.
"""

from __future__ import annotations

from typing import Any

FACTOR = 1.5


def forecast_table(trials: list[dict]) -> dict[str, Any] | None:
    """{rows: [{trial, forecast_s, actual_s, ratio, within, note}], within, compared, caption}; None when no
    finished trial carries a forecast."""
    rows, measured = [], {}
    for t in trials:
        f, resources = t.get("forecast"), t.get("resources") or {}
        if not f or t.get("status") != "ok" or resources.get("wall_s") is None:
            continue
        # a forecast that counted the forgetting benchmarks is set against them too (they run outside wall_s)
        wall = resources["wall_s"] + ((resources.get("forgetting_s") or 0.0) if f.get("forgetting_s") is not None else 0.0)
        ratio = wall / f["seconds"] if f["seconds"] > 0 else None
        reused = (t.get("resources") or {}).get("reused_setup_s") or 0.0
        rows.append({"trial": t["name"], "forecast_s": f["seconds"], "actual_s": wall, "ratio": ratio,
                     "within": None if ratio is None else 1 / FACTOR <= ratio <= FACTOR,
                     "note": f"reused {reused:.0f} s of setup work from elsewhere (not in its wall time)" if reused else ""})
        rate = f"{f['forward_per_s']:,.0f} positions/s forward and {f['train_per_s']:,.0f} in training"
        measured.setdefault(f"{f.get('measured') or 'as stated'}: {rate}", []).append(t["name"])
    if not rows:
        return None
    throughputs = "; ".join(how if len(measured) == 1 else f"{how} for {', '.join(names)}" for how, names in measured.items())
    counted = any(t.get("forecast", {}).get("forgetting_s") is not None for t in trials if t.get("forecast"))
    caption = (f"Forecast made before each trial ran: the token positions it would run, counted on this task's data with the "
               f"model's tokenizer and chat template (prompts of every template, template-selection items, label tokens, the "
               f"batch-1 latency queries, the trainer's padded batches times epochs and its validation loss, the forgetting "
               f"benchmarks' lm-eval requests), divided by the model's throughput, {throughputs}, plus the time to load the "
               f"model. Actual: the trial's recorded wall time (resources.wall_s: preparing, answering and the per-query "
               f"latency measurement)" + (" plus its forgetting benchmarks (resources.forgetting_s) where the forecast "
               "counted them" if counted else "; forgetting benchmarks not included") +
               f". Within: actual / forecast between 1/{FACTOR:g} and {FACTOR:g}.")
    compared = [r for r in rows if r["within"] is not None]
    return {"rows": rows, "within": sum(r["within"] for r in compared), "compared": len(compared), "factor": FACTOR, "caption": caption}
