"""Learning curves: quality against the number of train examples, a saturating fit, and examples to the bar.

The fit: the error (1 - quality for higher-is-better metrics, every metric being in [0, 1]) falls as a
power law towards a floor, err(n) = a*n^-b + c (Hestness et al. 2017, "Deep learning scaling is
predictable"; Figueroa et al. 2012 for small samples). Its uncertainty comes from a paired bootstrap
over the test items: every size was scored on the same test set, so each resample draws the same items
for all sizes, and the curve is fitted again on every resample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from advisor.plan import AT_SIZE, TRAIN_SIZE
from advisor.rundir import read_predictions
from evaluators.statistics import item_scores, resamples

SAMPLES = 300
FORM = "err(n) = a*n^-b + c"


def curve_members(records: list[dict], n_train: int) -> dict[str, list[tuple[int, dict]]]:
    """{full-size trial name: [(train examples, record)] smallest first} for every trial with curve points."""
    ok = {r["name"]: r for r in records if r.get("status") == "ok"}
    curves: dict[str, list[tuple[int, dict]]] = {}
    for r in ok.values():
        if (n := (r.get("settings") or {}).get(TRAIN_SIZE)) is not None:
            curves.setdefault(r["name"].replace(f"{AT_SIZE}{n}", ""), []).append((n, r))  # marks may precede a model suffix
    for base, points in curves.items():
        if base in ok:
            points.append((n_train, ok[base]))
        points.sort(key=lambda p: p[0])
    return curves


def _model(n, a, b, c):
    return a * np.power(n, -b) + c


def fit(ns: np.ndarray, errs: np.ndarray) -> tuple[float, float, float] | None:
    """(a, b, c) by least squares with a, c >= 0 and 0 <= b <= 3 (c at most the worst error); None when it fails."""
    from scipy.optimize import curve_fit

    if len(set(ns.tolist())) < 3:
        return None
    top = max(float(errs.max()), 1e-6)
    try:
        params, _ = curve_fit(_model, ns, errs, p0=(top * np.sqrt(ns[0]), 0.5, float(errs.min()) / 2),
                              bounds=([0, 0, 0], [np.inf, 3, top]), maxfev=5000)
    except (RuntimeError, ValueError):
        return None
    return tuple(float(p) for p in params)


def examples_to(params: tuple[float, float, float], err_bar: float) -> float:
    """Train examples at which the fitted error reaches `err_bar` (inf: never, the floor is above it)."""
    a, b, c = params
    if c >= err_bar or b < 1e-9 or a <= 0:
        return np.inf if _model(1.0, a, b, c) > err_bar else 1.0
    return max(1.0, (a / (err_bar - c)) ** (1 / b))


def _item_matrix(points: list[tuple[int, dict]], run_root: Path, metric) -> tuple[np.ndarray, list[list[str]], list[str]] | None:
    """Per point, its answers on the test items in one order (the full-size trial's), with the references."""
    rows = [read_predictions(run_root, r) for _, r in points]
    ids = list(rows[-1])
    if not ids or any(set(row) != set(ids) for row in rows):
        return None
    refs = [rows[-1][i]["target"] for i in ids]
    outputs = [[row[i]["output"] for i in ids] for row in rows]
    scores = np.array([item_scores(metric.per_item, out, refs) for out in outputs]) if metric.per_item else None
    return scores, outputs, refs


def _boot_values(items, metric, seed: int) -> np.ndarray:
    """(samples, points) metric values over the same resampled test items for every point."""
    scores, outputs, refs = items
    draws = resamples(len(refs), SAMPLES, seed)
    if scores is not None:
        return scores[:, draws].mean(axis=2).T
    return np.array([[metric.fn([out[j] for j in idx], [refs[j] for j in idx]) for out in outputs] for idx in draws])


def _range(values: list[float]) -> list[float | None]:
    """2.5th and 97.5th percentiles, taken as sample values (inf stays inf), JSON-safe (inf -> None)."""
    lo, hi = np.quantile(np.array(values), [0.025, 0.975], method="inverted_cdf")
    return [None if not np.isfinite(v) else round(float(v), 4) for v in (lo, hi)]


def analyse(points: list[tuple[int, dict]], metric, bar: float | None, run_root: Path, seed: int) -> dict:
    """One curve: its points, the fit with bootstrap ranges, and the examples to the bar (when one is set)."""
    err = (lambda q: 1 - q) if metric.higher_is_better else (lambda q: q)  # noqa: E731 - its own inverse
    ns = np.array([n for n, _ in points], dtype=float)
    values = np.array([r["metrics"][metric.name] for _, r in points])
    extra = [r for n, r in points[:-1]]
    out = {"points": [{"n": n, "trial": r["name"], "value": r["metrics"][metric.name], "ci95": r["metrics"].get(f"{metric.name}_ci95")}
                      for n, r in points],
           "cost": {"extra_trials": len(extra), "wall_s": round(sum((r.get("resources") or {}).get("wall_s", 0) for r in extra), 1),
                    "one_time_usd": round(sum((r.get("cost") or {}).get("one_time_usd", 0) for r in extra), 6)},
           "form": f"{FORM}, err = {'1 - ' if metric.higher_is_better else ''}{metric.name}", "fit": None}
    params = fit(ns, err(values))
    if params is None or (items := _item_matrix(points, run_root, metric)) is None:
        out["why_no_fit"] = "fewer than three sizes" if len(set(ns.tolist())) < 3 else "the fit did not converge, or points lack answers"
        return out
    boots = [p for row in _boot_values(items, metric, seed) if (p := fit(ns, err(row))) is not None]
    largest = ns[-1]
    # the metric's change from one more doubling of train (err maps errors back to values too)
    gain = lambda p: float(err(_model(2 * largest, *p)) - err(_model(largest, *p)))  # noqa: E731
    out["fit"] = {"a": params[0], "b": params[1], "c": params[2], "bootstrap_fits": len(boots), "samples": SAMPLES}
    out["ceiling"] = round(float(err(params[2])), 4)
    out["ceiling_ci95"] = _range([float(err(p[2])) for p in boots])
    out["gain_per_doubling"] = round(gain(params), 4)
    out["gain_per_doubling_ci95"] = _range([gain(p) for p in boots])
    out["largest_n"] = int(largest)
    if bar is not None:
        reached = next((n for n, v in zip(ns, values) if metric.signed(v) >= metric.signed(bar)), None)
        n_bar = examples_to(params, float(err(bar)))
        spread = [examples_to(p, float(err(bar))) for p in boots]
        out["to_bar"] = {"bar": bar, "reached_at": int(reached) if reached is not None else None,
                         "n": None if not np.isfinite(n_bar) else round(n_bar), "range95": _range(spread),
                         "unreachable_share": round(float(np.mean(~np.isfinite(spread))), 3) if spread else None,
                         "extrapolation": None if not np.isfinite(n_bar) else round(n_bar / largest, 1)}
    return out


def learning_curves(records: list[dict], spec, run_root: Path, n_train: int) -> dict[str, dict]:
    """statistics.learning_curves: {full-size trial name: analysis} for every trial measured at several sizes."""
    from evaluators import metrics

    metric = metrics.get(spec.headline_metric)
    return {base: analyse(points, metric, spec.constraints.min_quality, run_root, spec.seed)
            for base, points in curve_members(records, n_train).items() if len(points) >= 2}


def forecast(trials, splits, spec) -> list[str]:
    """--dry-run line: how many curve points the plan adds; their time and training positions are the forecast's
    own lines for the trials named `@n=` (counted once, there)."""
    points = [t for t in trials if TRAIN_SIZE in t.settings]
    if not points:
        return []
    sizes = ", ".join(map(str, sorted({t.settings[TRAIN_SIZE] for t in points})))
    return [f"learning curve: {len(points)} extra trial(s) on nested subsets of {sizes} of the {len(splits.train)} train examples; "
            "their cost: the forecast's lines for the trials named '@n='"]
