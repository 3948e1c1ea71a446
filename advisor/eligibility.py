"""Which trials may be picked: one place for the constraints, used before any trial is paired or ranked.

aggregate applies them before it chooses the trial every other is compared with, and the recommendation
applies the same ones, so the leader, vs_best, the minimum detectable effect and the confidence all refer
to a trial that can win. Unknown is never "fine": forgetting that was not measured (or failed) is
reported as unknown, and under `max_forgetting` such a trial is excluded with that reason.
"""

from __future__ import annotations

import math
from typing import Literal

from advisor.budgeted import stop_sentence
from advisor.plan import TRAIN_SIZE
from contracts.records import Forgetting, TrialRecord

ForgettingStatus = Literal["none", "measured", "unknown"]


def record(trial: TrialRecord | dict) -> TrialRecord:
    return trial if isinstance(trial, TrialRecord) else TrialRecord.model_validate(trial)


def forgetting_status(trial: TrialRecord, changes_weights: bool) -> tuple[ForgettingStatus, str]:
    """("none", why) when the weights are unchanged, ("measured", "") when benchmarks scored the adapted
    weights, ("unknown", why) otherwise: never measured, not configured, or the measurement failed."""
    f = trial.forgetting
    if not changes_weights:
        return "none", "the model's weights are unchanged"
    if f is None:
        return "unknown", "not measured (the spec sets no forgetting benchmarks)"
    if f.error:
        return "unknown", f"the forgetting measurement failed ({f.error})"
    if not f.measured:
        return "unknown", f"not measured ({f.reason or 'no benchmark scores in the record'})"
    return "measured", ""


def mean_delta_ci(f: Forgetting) -> tuple[float, float] | None:
    """95% CI of the mean benchmark change, from each benchmark's paired CI (normal approximation, the
    benchmarks' items being independent samples); None when a benchmark has no CI."""
    cis = [b.get("delta_ci95") for b in f.benchmarks.values() if isinstance(b, dict)]
    if f.mean_delta is None or not cis or any(not ci for ci in cis):
        return None
    se = math.sqrt(sum(((hi - lo) / (2 * 1.96)) ** 2 for lo, hi in cis)) / len(cis)
    return f.mean_delta - 1.96 * se, f.mean_delta + 1.96 * se


def forgetting_against_limit(f: Forgetting, limit: float) -> str:
    """How the measured drop reads against the tolerated one, CI included ("the sample cannot tell")."""
    drop = -100 * f.mean_delta
    ci = mean_delta_ci(f)
    n = ", ".join(f"{b.get('n', '?')}" for b in f.benchmarks.values() if isinstance(b, dict))
    if ci is None:
        return f"drop {drop:.1f} points (point estimate; items per benchmark: {n}) against the limit {limit:g}"
    worst, best = -100 * ci[0], -100 * ci[1]
    verdict = ("within it" if worst <= limit else "over it" if best > limit
               else "the sample cannot tell (the CI straddles it)")
    return f"drop {drop:.1f} points (95% CI {best:.1f} to {worst:.1f}; items per benchmark: {n}) against the limit {limit:g}: {verdict}"


def target_training_usd(trial: TrialRecord, target_scale: dict | None) -> float | None:
    """The training cost this trial's method would have at the spec's target scale (per epoch x epochs)."""
    if not target_scale:
        return None
    settings = trial.settings
    method, epochs = trial.strategy, settings.get("epochs", 1)
    if isinstance(settings.get("finetune"), dict):  # fine-tuning + retrieval: its training is its fine-tune's
        method, epochs = settings["finetune"]["family"], settings["finetune"].get("settings", {}).get("epochs", 1)
    row = (target_scale.get("methods") or {}).get(method) or {}
    return row["cost_usd"] * epochs if row.get("cost_usd") is not None else None


def violations(trial: TrialRecord, constraints, changes_weights: bool, target_scale: dict | None = None) -> list[str]:
    """The hard constraints this finished trial breaks, each as a sentence with its numbers."""
    out = []
    latency = trial.latency
    if constraints.max_latency_ms is not None and (latency is None or latency.p95_ms is None):
        out.append(f"latency unknown (not measured); max_latency_ms {constraints.max_latency_ms:.0f} cannot be checked")
    elif constraints.max_latency_ms is not None and latency.p95_ms > constraints.max_latency_ms:
        how = f" ({latency.measured})" if latency.measured else ""
        out.append(f"p95 latency {latency.p95_ms:.0f} ms{how} > limit {constraints.max_latency_ms:.0f} ms")
    cost = trial.cost or {}
    if constraints.budget_usd is not None:
        at_target = target_training_usd(trial, target_scale) if changes_weights else None
        if at_target is not None and at_target > constraints.budget_usd:
            out.append(f"training at the target scale ({target_scale['model']} on {target_scale['gpu']}) estimated "
                       f"${at_target:.2f} > budget ${constraints.budget_usd:.2f}")
        elif at_target is None and cost.get("one_time_usd", 0) > constraints.budget_usd:
            out.append(f"one-time cost ${cost['one_time_usd']:.2f} > budget ${constraints.budget_usd:.2f}")
    if constraints.monthly_budget_usd is not None and (cost.get("monthly_usd") or 0) > constraints.monthly_budget_usd:
        out.append(f"monthly cost ${cost['monthly_usd']:.2f} > budget ${constraints.monthly_budget_usd:.2f}")
    if constraints.max_forgetting is not None:
        status, why = forgetting_status(trial, changes_weights)
        if status == "unknown":
            out.append(f"forgetting unknown: {why}; max_forgetting {constraints.max_forgetting:g} cannot be checked")
        elif status == "measured" and -100 * trial.forgetting.mean_delta > constraints.max_forgetting:
            out.append(f"forgets too much on general benchmarks: {forgetting_against_limit(trial.forgetting, constraints.max_forgetting)}")
    return out


def exclusions(trials: list[TrialRecord | dict], spec, target_scale: dict | None = None) -> dict[str, list[str]]:
    """{trial name: reasons} for every trial that cannot be picked: failed ones and those breaking a constraint."""
    from baselines import family_facts
    from evaluators import metrics

    families, unit = family_facts(), metrics.get(spec.headline_metric).unit
    out: dict[str, list[str]] = {}
    for t in map(record, trials):
        if t.status == "ok" and (n := t.settings.get(TRAIN_SIZE)):
            out[t.name] = [f"a learning-curve point (trained on {n} examples), not a candidate"]
        elif t.status == "ok" and t.stopped_early:
            out[t.name] = [stop_sentence(t.stopped_early, unit)]
        elif t.status == "ok":
            if reasons := violations(t, spec.constraints, families[t.strategy].changes_weights, target_scale):
                out[t.name] = reasons
        elif t.status != "pending":
            out[t.name] = [f"trial {t.status}: {t.error or ''}"]
    return out
