"""Paired comparisons between trials on the same test items, corrected for the number of comparisons.

Each metric names its paired test: McNemar's exact test for 0/1 item scores (accuracy, exact match),
a paired bootstrap of the metric difference otherwise (token F1, macro-F1). p-values are Holm-adjusted
over every distinct pair in the run (a pair asked for twice, e.g. zero-shot vs the best and the best vs
zero-shot, is tested once). A difference is only called "better" or "worse" (in the metric's own
direction) when the adjusted p < 0.05; otherwise the verdict is "insufficient evidence", with the
minimum detectable effect for the test set's size so the reader knows how large a gap it could show.
"""

from __future__ import annotations

import math
import statistics as stats

import numpy as np

from evaluators.base import Metric
from evaluators.statistics import item_scores, mcnemar_p, resamples

ALPHA = 0.05
POWER_Z = 1.96 + 0.84
"""z_0.975 + z_0.8: a two-sided test at alpha 0.05 with 80% power."""


def paired_bootstrap(metric: Metric, preds_a: list[str], preds_b: list[str], refs: list[str], samples: int = 1000, seed: int = 0):
    """(CI of metric(a) - metric(b), two-sided bootstrap p, standard error of the difference), resampling
    the same items for both. p is never below the bootstrap's resolution 1/(samples + 1)."""
    draws = resamples(len(refs), samples, seed)
    if metric.per_item is not None:
        diffs = (item_scores(metric.per_item, preds_a, refs) - item_scores(metric.per_item, preds_b, refs))[draws].mean(axis=1)
    else:
        def delta(idx) -> float:
            r = [refs[j] for j in idx]
            return metric.fn([preds_a[j] for j in idx], r) - metric.fn([preds_b[j] for j in idx], r)

        diffs = np.array([delta(idx) for idx in draws])
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    tail = min((diffs <= 0).sum(), (diffs >= 0).sum())
    p = min(1.0, 2 * (tail + 1) / (samples + 1))
    return (float(lo), float(hi)), float(p), float(diffs.std(ddof=1)) if samples > 1 else 0.0


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
    return POWER_Z * math.sqrt(2 * p * (1 - p) / n)


def detectable_from_spread(standard_errors: list[float]) -> float | None:
    """The same power rule for a continuous metric, from the paired bootstrap's spread of the differences
    (the median standard error over the leader's comparisons): (z_0.975 + z_0.8) * SE."""
    return POWER_Z * stats.median(standard_errors) if standard_errors else None


def _mirror(row: dict, trial: str, role: str) -> dict:
    """The same tested pair read from the other side: the difference and its CI change sign."""
    lo, hi = row["delta_ci95"]
    return {**row, "trial": trial, "role": role, "other": row["trial"], "delta": -row["delta"], "delta_ci95": [-hi, -lo]}


def compare_trials(metric: Metric, outputs: dict[str, list[str]], refs: list[str], best: str, baseline: str | None,
                   seed: int = 0, also: dict[str, dict[str, str]] | None = None) -> dict[str, dict]:
    """For every trial: its comparison against the best trial, against the baseline (zero-shot), and
    against the trials in `also[trial]` ({role: other trial}, e.g. a combined arm against its parts)."""
    wanted = {name: {"vs_best": best, "vs_zero_shot": baseline, **(also or {}).get(name, {})} for name in outputs}
    asked = [(name, other, role) for name, roles in wanted.items() for role, other in roles.items()
             if other is not None and other != name and other in outputs]
    tested: dict[frozenset, dict] = {}
    for name, other, role in asked:
        if frozenset((name, other)) in tested:
            continue
        a, b = outputs[name], outputs[other]
        ci, p, se = paired_bootstrap(metric, a, b, refs, seed=seed)
        if metric.paired_test == "mcnemar":
            p = mcnemar_p(list(item_scores(metric.per_item, a, refs) == 1), list(item_scores(metric.per_item, b, refs) == 1))
            test = "McNemar exact"
        else:
            test = "paired bootstrap"
        tested[frozenset((name, other))] = {"trial": name, "role": role, "other": other, "delta": metric.fn(a, refs) - metric.fn(b, refs),
                                            "delta_ci95": list(ci), "delta_se": se, "p": p, "test": test}
    for row, adj in zip(tested.values(), holm([r["p"] for r in tested.values()])):
        row["p_holm"] = adj
    out: dict[str, dict] = {name: {} for name in outputs}
    for name, other, role in asked:
        row = tested[frozenset((name, other))]
        row = {**row, "role": role} if row["trial"] == name else _mirror(row, name, role)
        gained = metric.signed(row["delta"]) > 0
        row["verdict"] = ("better" if gained else "worse") if row["p_holm"] < ALPHA and row["delta"] != 0 else "insufficient evidence"
        out[row.pop("trial")][row.pop("role")] = row
    return out
