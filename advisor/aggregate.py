"""Cross-trial figures computed from stored trials: cost, break-even and paired comparisons.

They are derived when results.json is written (not stored in the trial files), so changing prices in
task.yaml re-prices a run without re-running any trial. Constraints come first (advisor.eligibility):
the trial every other is compared with ("best") is the best one that may be picked.
"""

from __future__ import annotations

from pathlib import Path

from advisor.eligibility import exclusions
from advisor.matrix import pricing_for
from advisor.rundir import read_predictions
from evaluators.comparisons import compare_trials, detectable_from_spread, minimum_detectable_effect
from evaluators.cost import break_even_queries, trial_cost

SELECTION = ("The trials are ranked on the same test set their scores are reported on (no predictions are made on a "
             "validation split): with many trials the winner's score is optimistic; confirm it on fresh data.")


def _outputs(run_root: Path, trial: dict) -> tuple[list[str], list[str]] | None:
    rows = list(read_predictions(run_root, trial).values())
    return ([r["output"] for r in rows], [r["target"] for r in rows]) if rows else None


def annotate(trials: list[dict], spec, run_root: Path, target_scale: dict | None = None) -> dict:
    """Add `cost` and `comparisons` to each finished trial (in place); return run-level statistics."""
    from baselines import family_facts
    from evaluators import metrics
    from evaluators.forgetting import NOT_APPLICABLE

    metric, families = metrics.get(spec.headline_metric), family_facts()
    ok = [t for t in trials if t.get("status") == "ok"]
    if spec.forgetting and spec.forgetting.benchmarks:
        for t in ok:
            if "forgetting" not in t and not families[t["strategy"]].changes_weights:
                t["forgetting"] = dict(NOT_APPLICABLE)  # stored before benchmarks were asked for
    score = lambda t: metric.signed(t["metrics"][metric.name])  # noqa: E731
    costs = {t["id"]: trial_cost(t["resources"], pricing_for(spec, t["settings"]), spec.constraints.monthly_queries) for t in ok}
    untrained = [t for t in ok if not families[t["strategy"]].changes_weights]
    reference = max(untrained, key=score, default=None)
    for t in ok:
        t["cost"] = costs[t["id"]].as_dict()
        if reference is not None and t is not reference:
            t["cost"]["break_even_queries_vs"] = reference["name"]
            t["cost"]["break_even_queries"] = break_even_queries(costs[t["id"]], costs[reference["id"]])
    for t in ok:
        if (estimate := memory_calibration(t, spec)) is not None:
            t["memory_estimate"] = estimate
    excluded = exclusions(trials, spec, target_scale)
    loaded = {t["name"]: _outputs(run_root, t) for t in ok}
    loaded = {k: v for k, v in loaded.items() if v is not None}
    if not loaded:
        return {"excluded": excluded}
    refs = max((v[1] for v in loaded.values()), key=len)  # the full test set: a budgeted run's stopped trials saw a subset
    same_items = {k: v[0] for k, v in loaded.items() if v[1] == refs}
    paired = [t for t in ok if t["name"] in same_items]
    eligible = [t for t in paired if t["name"] not in excluded]
    best = max(eligible or paired, key=score)
    zero_shot = baseline if (baseline := baseline_trial(ok)) in same_items else None
    also = {t["name"]: t["details"]["compare_with"] for t in ok if (t.get("details") or {}).get("compare_with")}
    comparisons = compare_trials(metric, same_items, refs, best["name"], zero_shot, seed=spec.seed, also=also)
    for t in ok:
        t["comparisons"] = comparisons.get(t["name"], {})
    if metric.paired_test == "mcnemar":
        mde, basis = minimum_detectable_effect(best["metrics"][metric.name], len(refs)), "proportion at the best trial's score"
    else:
        mde = detectable_from_spread([c["vs_best"]["delta_se"] for c in comparisons.values() if "vs_best" in c])
        basis = "median paired-bootstrap standard error of the differences with the best trial"
    return {"n_test": len(refs), "best": best["name"], "best_is_eligible": bool(eligible), "metric": metric.name,
            "minimum_detectable_effect": round(mde, 4) if mde is not None else None, "minimum_detectable_effect_basis": basis,
            "excluded": excluded, "selection": SELECTION,
            "comparison_tests": "McNemar exact (0/1 item scores: accuracy, exact match) or paired bootstrap; "
                                "Holm-adjusted over all distinct pairs"}


def baseline_trial(trials: list[dict]) -> str | None:
    """The finished trial its family declares the run's reference point (zero-shot prompting), if any."""
    from baselines import strategies

    return next((t["name"] for t in trials if t.get("status") == "ok" and t["strategy"] in strategies
                 and strategies.get(t["strategy"]).is_baseline(t.get("settings") or {})), None)


def target_scale(spec, n_train: int, tokens_per_example: float | None) -> dict | None:
    """The spec's `target` (model size and GPU): what each method would need there, per epoch of train."""
    if spec.target is None:
        return None
    from advisor.estimate import Setup, estimate_methods

    tokens = int(n_train * tokens_per_example) if tokens_per_example else None
    setup = Setup(tokens=tokens, usd_per_hour=spec.pricing.gpu_hour_usd)
    rows = {m: e.to_dict() for m, e in estimate_methods(spec.target.model, spec.target.gpu, setup, spec.target.gpus).items()}
    return {"model": spec.target.model, "gpu": spec.target.gpu, "train_tokens_per_epoch": tokens,
            "assumptions": f"batch {setup.batch} x {setup.seq_len} tokens, LoRA rank {setup.rank}, gradient checkpointing, "
                           f"MFU {setup.mfu}, ${spec.pricing.gpu_hour_usd}/GPU-hour", "methods": rows}


def memory_calibration(trial: dict, spec) -> dict | None:
    """The estimator's training memory for this trial's own setting, against what the trial measured.

    Like with like (`estimate_for_settings`): on CUDA the peak allocated during training holds the loaded
    weights, so the whole estimate is compared; the CPU's RSS growth does not, so the weights term is
    left out on both sides.
    """
    from advisor.estimate import estimate_for_settings
    from baselines import strategies
    from baselines.models import resolve

    res, settings = trial.get("resources") or {}, trial.get("settings") or {}
    if "train_rss_delta_mb" not in res or not strategies.get(trial["strategy"]).changes_weights:
        return None  # a reloaded training carries its original training's figures (None when they were not kept)

    config = Path(resolve(spec.model)) / "config.json"
    if not config.exists():
        return None
    try:
        est = estimate_for_settings(config, trial["strategy"], settings, res.get("longest_train_tokens", 0),
                                    res.get("device", "cpu"), res.get("precision", "bf16"))
    except ValueError:  # target modules this shape does not know: no estimate rather than a broken report
        return None
    estimated, measured = est["comparable_mb"], res.get(est["compare_with"])
    if measured is None:  # stored before the training peak was measured or kept with its checkpoint
        return None
    return {"estimated_mb": estimated, "measured_mb": measured, "terms_mb": est["estimated_mb"],
            "error_pct": round(100 * (estimated - measured) / measured, 1) if measured else None,
            "measured": "CUDA peak allocated during training, weights included" if est["device"] == "cuda"
                        else "RSS growth during training, weights left out"}
