"""Uncertainty: percentile bootstrap confidence intervals over test examples."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def bootstrap_ci(
    fn: Callable[[list[str], list[str]], float],
    preds: list[str],
    refs: list[str],
    *,
    samples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Resample examples with replacement and recompute the metric (works for macro-F1 too)."""
    n = len(refs)
    if n == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    scores = np.empty(samples)
    for i in range(samples):
        idx = rng.integers(0, n, n)
        scores[i] = fn([preds[j] for j in idx], [refs[j] for j in idx])
    alpha = (1 - level) / 2
    lo, hi = np.quantile(scores, [alpha, 1 - alpha])
    return (float(lo), float(hi))


def score_all(metric_names: list[str], preds: list[str], refs: list[str], seed: int = 0) -> dict[str, object]:
    """{metric: value, metric_ci95: [lo, hi]} for each named metric."""
    from evaluators import metrics

    out: dict[str, object] = {}
    for name in metric_names:
        fn = metrics.get(name).fn
        out[name] = fn(preds, refs)
        out[f"{name}_ci95"] = list(bootstrap_ci(fn, preds, refs, seed=seed))
    return out
