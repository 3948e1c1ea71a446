"""Uncertainty over test examples: Wilson intervals for proportions, percentile bootstrap otherwise.

A percentile bootstrap of a proportion collapses to zero width at 0% or 100% (every resample scores the
same), which would claim certainty that 20 items cannot give; Wilson's interval stays honest there.
"""

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
    per_item: Callable[[str, str], float] | None = None,
) -> tuple[float, float]:
    """Resample examples with replacement and recompute the metric (works for macro-F1 too); a metric
    that is a mean of `per_item` scores resamples those instead (same draws, same result, much faster)."""
    n = len(refs)
    if n == 0:
        return (0.0, 0.0)
    draws = resamples(n, samples, seed)
    if per_item is not None:
        scores = item_scores(per_item, preds, refs)[draws].mean(axis=1)
    else:
        scores = np.array([fn([preds[j] for j in idx], [refs[j] for j in idx]) for idx in draws])
    alpha = (1 - level) / 2
    lo, hi = np.quantile(scores, [alpha, 1 - alpha])
    return (float(lo), float(hi))


def resamples(n: int, samples: int, seed: int) -> np.ndarray:
    """(samples, n) item indices drawn with replacement: the bootstrap's draws."""
    return np.random.default_rng(seed).integers(0, n, (samples, n))


def item_scores(per_item: Callable[[str, str], float], preds: list[str], refs: list[str]) -> np.ndarray:
    return np.array([per_item(p, r) for p, r in zip(preds, refs)], dtype=float)


def proportion_ci(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (nonzero width at 0/n and n/n)."""
    from scipy.stats import binomtest

    if n == 0:
        return (0.0, 1.0)
    ci = binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson")
    return (float(ci.low), float(ci.high))


def score_all(metric_names: list[str], preds: list[str], refs: list[str], seed: int = 0) -> dict[str, object]:
    """{metric: value, metric_ci95: [lo, hi]} for each named metric (Wilson for 0/1 item scores, else bootstrap)."""
    from evaluators import metrics

    out: dict[str, object] = {}
    for name in metric_names:
        metric = metrics.get(name)
        out[name] = metric.fn(preds, refs)
        if metric.paired_test == "mcnemar":
            ci = proportion_ci(int(item_scores(metric.per_item, preds, refs).sum()), len(refs))
        else:
            ci = bootstrap_ci(metric.fn, preds, refs, seed=seed, per_item=metric.per_item)
        out[f"{name}_ci95"] = list(ci)
    return out


def paired_bootstrap_ci(a: list[float], b: list[float], *, samples: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """CI of mean(a) - mean(b) over the same items, resampling items (keeps the pairing)."""
    x = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(x) == 0:
        return (0.0, 0.0)
    means = x[resamples(len(x), samples, seed)].mean(axis=1)
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
