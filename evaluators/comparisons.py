"""Paired comparisons between trials on the same test items, corrected for the number of comparisons.

Binary per-item metrics (accuracy, exact match) use McNemar's exact test; other metrics (token F1,
macro-F1) a paired bootstrap of the metric difference. p-values are Holm-adjusted over every
comparison in the run. A difference is only called "better" or "worse" when the adjusted p < 0.05;
otherwise the verdict is "insufficient evidence", with the minimum detectable effect for the test
set's size so the reader knows how large a gap this test set could have shown.
"""

from __future__ import annotations

import math

import numpy as np

from evaluators.base import Metric
from evaluators.statistics import item_scores, mcnemar_p, resamples

BINARY = {"accuracy", "exact_match"}
ALPHA = 0.05


def paired_bootstrap(metric: Metric, preds_a: list[str], preds_b: list[str], refs: list[str], samples: int = 1000, seed: int = 0):
    """(CI of metric(a) - metric(b), two-sided bootstrap p) resampling the same items for both."""
    draws = resamples(len(refs), samples, seed)
    if metric.per_item is not None:
        diffs = (item_scores(metric.per_item, preds_a, refs) - item_scores(metric.per_item, preds_b, refs))[draws].mean(axis=1)
    else:
        def delta(idx) -> float:
            r = [refs[j] for j in idx]
            return metric.fn([preds_a[j] for j in idx], r) - metric.fn([preds_b[j] for j in idx], r)

        diffs = np.array([delta(idx) for idx in draws])
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    p = min(1.0, 2 * min((diffs <= 0).mean(), (diffs >= 0).mean()))
    return (float(lo), float(hi)), float(p)


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, same order as given."""
    order = sorted(range(len(pvalues)), key=pvalues.__getitem__)
    adjusted, running = [0.0] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def minimum_detectable_effect(p: float, n: int) -> float:
    """Smallest difference in a proportion that a test set of n items detects with 80% power at alpha 0.05
    (two independent proportions: (z_0.975 + z_0.8) * sqrt(2 p (1 - p) / n); conservative for paired data)."""
    if n == 0:
        return 1.0
    p = min(max(p, 0.05), 0.95)
    return (1.96 + 0.84) * math.sqrt(2 * p * (1 - p) / n)


def compare_trials(metric: Metric, outputs: dict[str, list[str]], refs: list[str], best: str, baseline: str | None,
                   seed: int = 0, also: dict[str, dict[str, str]] | None = None) -> dict[str, dict]:
    """For every trial: its comparison against the best trial, against the baseline (zero-shot), and
    against the trials in `also[trial]` ({role: other trial}, e.g. a combined arm against its parts)."""
    wanted = {name: {"vs_best": best, "vs_zero_shot": baseline, **(also or {}).get(name, {})} for name in outputs}
    pairs = [(name, other, role) for name, roles in wanted.items() for role, other in roles.items()
             if other is not None and other != name and other in outputs]
    rows = []
    for name, other, role in pairs:
        a, b = outputs[name], outputs[other]
        ci, p_boot = paired_bootstrap(metric, a, b, refs, seed=seed)
        if metric.name in BINARY:
            p = mcnemar_p(list(item_scores(metric.per_item, a, refs) == 1), list(item_scores(metric.per_item, b, refs) == 1))
            test = "McNemar exact"
        else:
            p, test = p_boot, "paired bootstrap"
        rows.append({"trial": name, "role": role, "other": other, "delta": metric.fn(a, refs) - metric.fn(b, refs), "delta_ci95": list(ci),
                     "p": p, "test": test})
    for row, adj in zip(rows, holm([r["p"] for r in rows])):
        row["p_holm"] = adj
        row["verdict"] = ("better" if row["delta"] > 0 else "worse") if adj < ALPHA else "insufficient evidence"
    out: dict[str, dict] = {name: {} for name in outputs}
    for row in rows:
        out[row.pop("trial")][row.pop("role")] = row
    return out
