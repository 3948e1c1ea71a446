"""Uncertainty: percentile bootstrap confidence intervals over test examples."""

from __future__ import annotations

import math
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


def paired_bootstrap_ci(a: list[float], b: list[float], *, samples: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """CI of mean(a) - mean(b) over the same items, resampling items (keeps the pairing)."""
    x = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(x) == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), (samples, len(x)))].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return (float(lo), float(hi))


def mcnemar_p(a: list[int], b: list[int]) -> float:
    """Exact two-sided McNemar test on paired right/wrong outcomes (binomial on the discordant pairs)."""
    only_a = sum(1 for x, y in zip(a, b) if x and not y)
    only_b = sum(1 for x, y in zip(a, b) if y and not x)
    if only_a + only_b == 0:
        return 1.0
    n, k = only_a + only_b, min(only_a, only_b)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
