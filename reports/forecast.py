"""Forecast against actual: per trial, the seconds the run forecast before running it (`forecast` in its record,
advisor.forecast) against the wall time it measured (`resources.wall_s`).

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
        f, wall = t.get("forecast"), (t.get("resources") or {}).get("wall_s")
        if not f or t.get("status") != "ok" or wall is None:
            continue
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
    caption = (f"Forecast made before each trial ran: the token positions it would run, counted on this task's data with the "
               f"model's tokenizer (prompts of every template, label tokens, training tokens times epochs), divided by the "
               f"model's throughput, {throughputs}. Actual: the trial's recorded wall time "
               f"(resources.wall_s: preparing, answering and the per-query latency measurement; forgetting benchmarks not "
               f"included). Within: actual / forecast between 1/{FACTOR:g} and {FACTOR:g}.")
    compared = [r for r in rows if r["within"] is not None]
    return {"rows": rows, "within": sum(r["within"] for r in compared), "compared": len(compared), "factor": FACTOR, "caption": caption}
