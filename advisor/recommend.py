"""Turn measured trials + the spec's constraints into a decision with reasons. Plain rules, no model.

Rules, in order (the test table in tests/test_recommend.py has a case for each):
  R1  failed trials are never candidates.
  R2  hard constraints exclude a trial (it is still shown): p95 latency > max_latency_ms, one-time
      cost > budget_usd, monthly cost > monthly_budget_usd, forgetting worse than max_forgetting.
  R3  the leader is the eligible trial with the best headline metric.
  R4  trials whose paired comparison with the leader is not significant (Holm-adjusted) or whose
      difference CI contains 0 are "not separable" from it (listed, never hidden). Not separable is
      not the same as equivalent: on a small test set everything is inseparable, and picking the
      simplest of those would favour zero-shot whatever was measured. So a simpler trial replaces
      the leader only when it is shown equivalent: the paired 95% CI of its difference with the
      leader stays within `constraints.equivalence_points`. Among equivalent trials the simplest
      family wins (each family's `simplicity_rank`: prompting < rag < adapters < full < fine-tuning + rag), then the
      cheapest per query, and the rationale says so.
  R5  when knowledge changes weekly or daily, a retrieval trial not separable from a fine-tuned pick
      is preferred: fine-tuning would have to be redone at that rate.
  R6  confidence: high when the pick beats zero-shot and every other family significantly; low when
      the test set is small (< 30 items) or nothing differs significantly; medium otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

RETRAINS_PER_YEAR = {"never": 0, "yearly": 1, "monthly": 12, "weekly": 52, "daily": 365}


@dataclass
class Sentence:
    text: str
    evidence: dict[str, object] = field(default_factory=dict)
    """results.json paths (trial name / field) -> the value the sentence quotes."""


@dataclass
class Recommendation:
    pick: str | None
    strategy: str | None
    confidence: str
    rationale: list[Sentence]
    excluded: dict[str, list[str]]
    tied_with: list[str]
    what_would_change: list[Sentence]
    ranking: list[str]

    def as_dict(self) -> dict:
        return asdict(self)


def _family(trial: dict):
    from baselines import strategies

    return strategies.get(trial["strategy"])


def _violations(trial: dict, constraints) -> list[str]:
    out = []
    p95 = (trial.get("latency") or {}).get("p95_ms")
    if constraints.max_latency_ms is not None and p95 is not None and p95 > constraints.max_latency_ms:
        out.append(f"p95 latency {p95:.0f} ms > limit {constraints.max_latency_ms:.0f} ms")
    cost = trial.get("cost") or {}
    if constraints.budget_usd is not None and cost.get("one_time_usd", 0) > constraints.budget_usd:
        out.append(f"one-time cost ${cost['one_time_usd']:.2f} > budget ${constraints.budget_usd:.2f}")
    if constraints.monthly_budget_usd is not None and (cost.get("monthly_usd") or 0) > constraints.monthly_budget_usd:
        out.append(f"monthly cost ${cost['monthly_usd']:.2f} > budget ${constraints.monthly_budget_usd:.2f}")
    forgetting = trial.get("forgetting") or {}
    if constraints.max_forgetting is not None and forgetting.get("applies") and "mean_delta" in forgetting:
        drop = -100 * forgetting["mean_delta"]
        if drop > constraints.max_forgetting:
            out.append(f"forgets {drop:.1f} points on general benchmarks > tolerated {constraints.max_forgetting:.1f}")
    return out


def _tied(trial: dict, leader: dict) -> bool:
    if trial is leader:
        return True
    vs = (trial.get("comparisons") or {}).get("vs_best")
    if not vs or vs.get("other") != leader["name"]:
        return False
    lo, hi = vs["delta_ci95"]
    return vs["verdict"] == "insufficient evidence" or lo <= 0 <= hi


def _equivalent(trial: dict, leader: dict, margin_points: float) -> bool:
    """Shown to be at most `margin_points` worse than the leader (paired 95% CI)."""
    if trial is leader:
        return True
    vs = (trial.get("comparisons") or {}).get("vs_best")
    return bool(vs) and vs.get("other") == leader["name"] and 100 * vs["delta_ci95"][0] >= -margin_points


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"={p:.3g}"


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def recommend(trials: list[dict], spec, statistics: dict) -> Recommendation:
    metric, c = spec.headline_metric, spec.constraints
    ok = [t for t in trials if t.get("status") == "ok"]  # R1
    excluded = {t["name"]: v for t in ok if (v := _violations(t, c))}  # R2
    for t in trials:
        if t.get("status") not in ("ok", "pending"):
            excluded[t["name"]] = [f"trial {t['status']}: {t.get('error', '')}"]
    eligible = [t for t in ok if t["name"] not in excluded]
    if not eligible:
        return Recommendation(None, None, "none", [Sentence("No trial finished within the constraints; nothing can be recommended.")],
                              excluded, [], [], [])
    ranking = sorted(eligible, key=lambda t: -t["metrics"][metric])
    leader = ranking[0]  # R3
    tied = [t for t in ranking if _tied(t, leader)]  # R4
    simplest = lambda t: (_family(t).simplicity_rank, (t.get("cost") or {}).get("per_1k_queries_usd", 0))  # noqa: E731
    pick = min((t for t in tied if _equivalent(t, leader, c.equivalence_points)), key=simplest)
    if c.knowledge_changes in ("weekly", "daily") and _family(pick).changes_weights:  # R5
        pick = next((t for t in tied if not _family(t).changes_weights and _family(t).retrieves), pick)
    rationale = _rationale(pick, leader, tied, metric, statistics, c)
    return Recommendation(pick["name"], pick["strategy"], _confidence(pick, ok, statistics), rationale, excluded,
                          [t["name"] for t in tied if t is not pick], _what_would_change(pick, ok, metric, statistics, c),
                          [t["name"] for t in ranking])


def _rationale(pick: dict, leader: dict, tied: list[dict], metric: str, statistics: dict, c) -> list[Sentence]:
    m, name = pick["metrics"], pick["name"]
    lo, hi = m[f"{metric}_ci95"]
    out = [Sentence(f"{name}: {metric} {_pct(m[metric])} [95% CI {_pct(lo)}–{_pct(hi)}] on {statistics.get('n_test', '?')} test examples.",
                    {f"{name}.metrics.{metric}": m[metric], f"{name}.metrics.{metric}_ci95": [lo, hi]})]
    vs = (pick.get("comparisons") or {}).get("vs_zero_shot")
    if vs:
        out.append(Sentence(
            f"{100 * vs['delta']:+.1f} points over zero-shot [CI {100 * vs['delta_ci95'][0]:+.1f} to {100 * vs['delta_ci95'][1]:+.1f}], "
            f"{vs['verdict']} ({vs['test']}, Holm-adjusted p{_p(vs['p_holm'])}).",
            {f"{name}.comparisons.vs_zero_shot.delta": vs["delta"], f"{name}.comparisons.vs_zero_shot.p_holm": vs["p_holm"]}))
    vs_best = (pick.get("comparisons") or {}).get("vs_best") or {}
    if pick is not leader:
        relation = "scored the same" if leader["metrics"][metric] == m[metric] else "scored higher"
        evidence = {f"{leader['name']}.metrics.{metric}": leader["metrics"][metric], f"{name}.comparisons.vs_best.delta_ci95": vs_best.get("delta_ci95")}
        if _equivalent(pick, leader, c.equivalence_points):
            why = (f"{name} is at most {c.equivalence_points:g} points worse (paired 95% CI {100 * vs_best['delta_ci95'][0]:+.1f} "
                   f"to {100 * vs_best['delta_ci95'][1]:+.1f}), so the simpler and cheaper {name} is preferred.")
        else:
            why = (f"{name} is not separable from it on this test set and knowledge changes {c.knowledge_changes}: "
                   "retrieval is updated by re-indexing, fine-tuning by retraining, so retrieval is preferred.")
        out.append(Sentence(f"{leader['name']} {relation} ({_pct(leader['metrics'][metric])}); {why}", evidence))
    elif len(tied) > 1:
        others = [t for t in tied if t is not pick]
        same = [t["name"] for t in others if _equivalent(t, leader, c.equivalence_points)]
        open_ = [t for t in others if t["name"] not in same]
        gap = lambda t: ((t.get("comparisons") or {}).get("vs_best") or {}).get("delta_ci95", [0, 0])  # noqa: E731
        if open_:
            out.append(Sentence(f"It leads, but {len(open_)} other trial(s) are not separable from it on this test set (up to "
                                f"{max(-100 * gap(t)[0] for t in open_):.0f} points worse, or as good) and none of them is shown "
                                f"within {c.equivalence_points:g} points, so the best measured trial is kept; a larger test set would settle it.",
                                {f"{t['name']}.comparisons.vs_best.delta_ci95": gap(t) for t in open_}))
        if same:
            out.append(Sentence(f"{', '.join(same)}: equivalent within {c.equivalence_points:g} points, but not simpler or cheaper.",
                                {f"{n}.comparisons.vs_best.delta_ci95": gap(t) for t in others if (n := t["name"]) in same}))
    forgetting = pick.get("forgetting") or {}
    if forgetting.get("applies") and "mean_delta" in forgetting:
        out.append(Sentence(f"Forgetting: {100 * forgetting['mean_delta']:+.1f} points on average over {', '.join(forgetting['benchmarks'])}.",
                            {f"{name}.forgetting.mean_delta": forgetting["mean_delta"]}))
    else:
        out.append(Sentence("No forgetting: the model's weights are unchanged.", {f"{name}.forgetting.applies": False}))
    cost = pick.get("cost") or {}
    if cost:
        text = (f"Serving: ${cost['per_1k_queries_usd']:.4f} per 1,000 queries ({cost['prompt_tokens_per_1k_queries'] / 1000:.0f} "
                f"prompt tokens per query; {cost['basis']}); one-time ${cost['one_time_usd']:.4f}.")
        out.append(Sentence(text, {f"{name}.cost.per_1k_queries_usd": cost["per_1k_queries_usd"], f"{name}.cost.one_time_usd": cost["one_time_usd"]}))
    p95 = (pick.get("latency") or {}).get("p95_ms")
    if p95 is not None:
        limit = f" (limit {c.max_latency_ms:.0f} ms)" if c.max_latency_ms else ""
        out.append(Sentence(f"Latency p95 {p95:.0f} ms per query on this hardware{limit}.", {f"{name}.latency.p95_ms": p95}))
    return out


def _confidence(pick: dict, ok: list[dict], statistics: dict) -> str:  # R6
    if statistics.get("n_test", 0) < 30:
        return "low"
    comps = (pick.get("comparisons") or {})
    verdicts = [v["verdict"] for v in comps.values()]
    others_beaten = all((t.get("comparisons") or {}).get("vs_best", {}).get("verdict") == "worse"
                        for t in ok if t["strategy"] != pick["strategy"] and t is not pick)
    if verdicts and all(v == "better" for v in verdicts) and others_beaten:
        return "high"
    significant = any(v.get("verdict") != "insufficient evidence" for t in ok for v in (t.get("comparisons") or {}).values())
    return "medium" if significant else "low"


def _what_would_change(pick: dict, ok: list[dict], metric: str, statistics: dict, c) -> list[Sentence]:
    out = []
    mde = statistics.get("minimum_detectable_effect")
    if mde:
        out.append(Sentence(f"This test set ({statistics['n_test']} items) detects differences of about {100 * mde:.0f} points or more; "
                            "smaller real gaps need a larger test set.", {"statistics.minimum_detectable_effect": mde}))
    # only trained trials still in the running: retraining or break-even of a clearly worse trial changes nothing
    trained = [t for t in ok if _family(t).changes_weights
               and (t.get("comparisons") or {}).get("vs_best", {}).get("verdict") != "worse"]
    retrains = RETRAINS_PER_YEAR.get(c.knowledge_changes or "never", 0)
    for t in trained:
        cost = t.get("cost") or {}
        if retrains > 1 and cost:
            out.append(Sentence(f"Knowledge changes {c.knowledge_changes}: {t['name']} must be retrained {retrains}x a year, "
                                f"one-time ${cost['one_time_usd']:.4f} becomes ${retrains * cost['one_time_usd']:.4f} a year.",
                                {f"{t['name']}.cost.one_time_usd": cost["one_time_usd"]}))
        if cost.get("break_even_queries"):
            out.append(Sentence(f"{t['name']} pays back its training cost against {cost['break_even_queries_vs']} after "
                                f"{cost['break_even_queries']:,.0f} queries (shorter prompts).",
                                {f"{t['name']}.cost.break_even_queries": cost["break_even_queries"]}))
    return out
