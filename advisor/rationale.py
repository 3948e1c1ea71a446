"""The recommendation's sentences. Every number quoted is cited (results.json path -> value) and every
comparative word (simpler, cheaper, higher, equivalent, no forgetting) is computed from those values,
never written as a constant: a sentence that would not hold is not produced.

Paths: `<trial name>.<section>.<field>` for a trial's record, `families.<family>.<fact>` and
`statistics.<field>` for the run-level sections of results.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from advisor.eligibility import forgetting_against_limit, forgetting_status, mean_delta_ci
from contracts.records import FamilyFacts, TrialRecord

RETRAINS_PER_YEAR = {"never": 0, "yearly": 1, "monthly": 12, "weekly": 52, "daily": 365}


@dataclass
class Sentence:
    text: str
    evidence: dict[str, object] = field(default_factory=dict)
    """results.json paths (trial name / field) -> the value the sentence quotes."""


@dataclass
class Facts:
    """What every sentence may read: the metric's and families' declarations, the constraints, the run."""

    metric: object
    families: dict[str, FamilyFacts]
    constraints: object
    statistics: dict
    ranking: list[TrialRecord]
    """Eligible trials, best first; the first is the leader."""
    tied: list[TrialRecord]
    by_name: dict[str, TrialRecord]

    @property
    def leader(self) -> TrialRecord:
        return self.ranking[0]

    def value(self, v: float) -> str:
        m = self.metric
        return f"{100 * v:.1f}%" if m.unit == "%" else f"{v:.3g} {m.unit}".strip()

    def points(self, d: float, sign: bool = True) -> str:
        """A difference in the metric's points (percentage points for % metrics, else its unit)."""
        m = self.metric
        scaled = 100 * d if m.unit == "%" else d
        return f"{scaled:+.1f}" if sign else f"{abs(scaled):.1f}"

    @property
    def unit_word(self) -> str:
        return "points" if self.metric.unit == "%" else (self.metric.unit or "units")


def _vs_best(trial: TrialRecord, leader: TrialRecord) -> dict | None:
    vs = trial.comparisons.get("vs_best")
    return vs if vs and vs.get("other") == leader.name else None


def tied(trial: TrialRecord, leader: TrialRecord) -> bool:
    """Not separable from the leader: not significant after Holm, or the difference CI contains 0."""
    if trial is leader:
        return True
    vs = _vs_best(trial, leader)
    return bool(vs) and (vs["verdict"] == "insufficient evidence" or vs["delta_ci95"][0] <= 0 <= vs["delta_ci95"][1])


def gap_ends(vs: dict, metric) -> tuple[float, float]:
    """The paired CI's ends in the metric's points, (worst for the trial, best for it); negative = worse."""
    scale = 100 if metric.unit == "%" else 1
    lo, hi = sorted(scale * metric.signed(end) for end in vs["delta_ci95"])
    return lo, hi


def equivalent(trial: TrialRecord, leader: TrialRecord, margin_points: float, metric) -> bool:
    """Shown to be at most `margin_points` worse than the leader (paired 95% CI, in the metric's direction)."""
    if trial is leader:
        return True
    vs = _vs_best(trial, leader)
    return bool(vs) and gap_ends(vs, metric)[0] >= -margin_points


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"={p:.3g}"


def _ci(f: Facts, ci: list[float]) -> str:
    return f"{f.points(ci[0])} to {f.points(ci[1])}"


def preference_words(pick: TrialRecord, other: TrialRecord, f: Facts) -> tuple[list[str], dict[str, object]]:
    """Which of "simpler", "cheaper per query" and "cheaper to set up" hold for `pick` against `other`, with the
    values that make them hold."""
    words, evidence = [], {}
    rank_a, rank_b = f.families[pick.strategy].simplicity_rank, f.families[other.strategy].simplicity_rank
    if rank_a < rank_b:
        words.append(f"simpler ({pick.strategy} before {other.strategy} in simplicity)")
        evidence |= {f"families.{pick.strategy}.simplicity_rank": rank_a, f"families.{other.strategy}.simplicity_rank": rank_b}
    for key, what in (("per_1k_queries_usd", "per 1,000 queries"), ("one_time_usd", "one-time")):
        a, b = (pick.cost or {}).get(key), (other.cost or {}).get(key)
        if a is not None and b is not None and a < b:
            words.append(f"cheaper (${a:.4f} vs ${b:.4f} {what})")
            evidence |= {f"{pick.name}.cost.{key}": a, f"{other.name}.cost.{key}": b}
    return words, evidence


def rationale(pick: TrialRecord, f: Facts, precise: bool = False) -> list[Sentence]:
    metric, name, m = f.metric, pick.name, pick.metrics
    lo, hi = m[f"{metric.name}_ci95"]
    out = [Sentence(f"{name}: {metric.name} {f.value(m[metric.name])} [95% CI {f.value(lo)}–{f.value(hi)}] on "
                    f"{f.statistics.get('n_test', '?')} test examples.",
                    {f"{name}.metrics.{metric.name}": m[metric.name], f"{name}.metrics.{metric.name}_ci95": [lo, hi]})]
    if vs := pick.comparisons.get("vs_zero_shot"):
        out.append(Sentence(f"Against zero-shot: {f.points(vs['delta'])} {f.unit_word} [CI {_ci(f, vs['delta_ci95'])}], {vs['verdict']} "
                            f"({vs['test']}, Holm-adjusted p{_p(vs['p_holm'])}).",
                            {f"{name}.comparisons.vs_zero_shot.delta": vs["delta"], f"{name}.comparisons.vs_zero_shot.p_holm": vs["p_holm"]}))
    out += _against_leader(pick, f, precise) + _knowledge_trade(pick, f) + [_forgetting(pick, f)] + _serving(pick, f)
    if f.statistics.get("selection"):
        out.append(Sentence(f.statistics["selection"], {"statistics.selection": f.statistics["selection"]}))
    return out


def _against_leader(pick: TrialRecord, f: Facts, precise: bool) -> list[Sentence]:
    leader, metric, c = f.leader, f.metric, f.constraints
    if pick is not leader:
        vs = _vs_best(pick, leader)
        evidence = {f"{leader.name}.metrics.{metric.name}": leader.metrics[metric.name], f"{pick.name}.comparisons.vs_best.delta_ci95": vs["delta_ci95"]}
        head = f"{leader.name} ranked first ({f.value(leader.metrics[metric.name])}); {pick.name} differs by {_ci(f, vs['delta_ci95'])} {f.unit_word} (paired 95% CI)"
        if precise:
            return [_precision_sentence(pick, f, head, evidence)]
        words, more = preference_words(pick, leader, f)
        why = " and ".join(words) if words else "first by the tie-break (family simplicity, then cost per query)"
        return [Sentence(f"{head}, within the {c.equivalence_points:g}-point equivalence margin, so {pick.name} is preferred: {why}.",
                         evidence | more)]
    others = [t for t in f.tied if t is not pick]
    same = [t for t in others if equivalent(t, leader, c.equivalence_points, metric)]
    open_ = [t for t in others if t not in same]
    out = []
    if open_:
        ends = [gap_ends(_vs_best(t, leader), metric) for t in open_]
        worst, closest = max(-lo for lo, _ in ends), min(-hi for _, hi in ends)
        span = (f"up to {worst:.0f} {f.unit_word} worse, or as good" if closest <= 0 else
                f"{closest:.0f} to {worst:.0f} {f.unit_word} worse by the paired 95% CI, which is not adjusted for the "
                "number of comparisons; the Holm-adjusted test does not separate them")
        out.append(Sentence(f"It leads, but {len(open_)} other trial(s) are not separable from it on this test set ({span}) "
                            f"and none of them is shown within {c.equivalence_points:g} points, so the "
                            "best measured trial is kept; a larger test set would settle it.",
                            {f"{t.name}.comparisons.vs_best.delta_ci95": _vs_best(t, leader)["delta_ci95"] for t in open_}))
    for t in same:
        words, evidence = preference_words(t, pick, f)
        lacking = "; it is not simpler or cheaper" if not words else f"; it is {' and '.join(words)}, but {_kept_by_tie_break(pick, t, f)}"
        evidence |= {f"{r.name}.cost.per_1k_queries_usd": (r.cost or {}).get("per_1k_queries_usd") for r in (pick, t)}
        out.append(Sentence(f"{t.name}: equivalent within {c.equivalence_points:g} points (paired CI {_ci(f, _vs_best(t, leader)['delta_ci95'])})"
                            f"{lacking}.", {f"{t.name}.comparisons.vs_best.delta_ci95": _vs_best(t, leader)["delta_ci95"]} | evidence))
    return out


def _kept_by_tie_break(pick: TrialRecord, other: TrialRecord, f: Facts) -> str:
    """Why the pick comes before an equivalent `other`: the tie-break is family simplicity, then cost per query."""
    if f.families[pick.strategy].simplicity_rank < f.families[other.strategy].simplicity_rank:
        return f"{pick.name} is simpler ({pick.strategy} before {other.strategy}) and the simplest family comes first"
    a, b = ((t.cost or {}).get("per_1k_queries_usd") for t in (pick, other))
    if a is not None and b is not None:
        return (f"{pick.name}, of the same simplicity, costs no more per query (${a:.4f} vs ${b:.4f} per 1,000 queries), "
                "the tie-break after simplicity")
    return f"the tie-break (family simplicity, then cost per query) keeps {pick.name}"


def _precision_sentence(pick: TrialRecord, f: Facts, head: str, evidence: dict) -> Sentence:
    leader, recall = f.leader, retrieval_recall(pick)
    p, q, g = pick.metrics["token_precision"], leader.metrics["token_precision"], pick.metrics["grounding_rate"]
    lo = pick.metrics.get("token_precision_ci95", [p, p])[0]
    recall_key = next(k for k in pick.metrics if k.startswith("recall_at_") and not k.endswith("_ci95"))
    return Sentence(f"{head}, not separable; but retrieval finds the gold passage (recall {recall:.2f}) and {pick.name}'s answers are "
                    f"markedly more precise: token precision {_pct(p)} (95% CI from {_pct(lo)}) against {_pct(q)}, so more of its "
                    f"words are the reference's, and grounded: {_pct(g)} of its answers' words are in the text retrieved for them; "
                    f"{metric_name(f)} does not see this, so {pick.name} is preferred.",
                    evidence | {f"{pick.name}.metrics.token_precision": p, f"{leader.name}.metrics.token_precision": q,
                                f"{pick.name}.metrics.{recall_key}": recall, f"{pick.name}.metrics.grounding_rate": g})


def _pct(share: float) -> str:
    """A share (token precision, grounding rate) as a percentage, whatever the headline metric's unit."""
    return f"{100 * share:.1f}%"


def metric_name(f: Facts) -> str:
    return f.metric.display_name


def retrieval_recall(r: TrialRecord) -> float | None:
    """The trial's retrieval recall@k (gold passage among the retrieved), when the task names gold passages."""
    return next((v for k, v in r.metrics.items() if k.startswith("recall_at_") and not k.endswith("_ci95")), None)


def _knowledge_trade(pick: TrialRecord, f: Facts) -> list[Sentence]:
    """R5: the yearly retraining cost of a weight-changing pick against the best retrieval trial's gap."""
    c = f.constraints
    retrains = RETRAINS_PER_YEAR.get(c.knowledge_changes or "never", 0)
    if retrains <= 1 or not f.families[pick.strategy].changes_weights or not pick.cost:
        return []
    yearly = retrains * pick.cost["one_time_usd"]
    head = (f"Knowledge changes {c.knowledge_changes}: {pick.name} must be retrained {retrains}x a year "
            f"(${yearly:.4f} a year at this run's one-time cost)")
    evidence = {f"{pick.name}.cost.one_time_usd": pick.cost["one_time_usd"]}
    if retrains < 52:  # the trade against retrieval (R5) applies to weekly or faster changes; the cost is still the pick's
        return [Sentence(f"{head}.", evidence)]
    alt = next((t for t in f.ranking if f.families[t.strategy].retrieves and not f.families[t.strategy].changes_weights), None)
    if alt is None:
        return [Sentence(f"{head}; no eligible retrieval trial was measured to set against it.", evidence)]
    gap = alt.metrics[f.metric.name] - pick.metrics[f.metric.name]
    reindex = retrains * (alt.cost or {}).get("one_time_usd", 0.0)
    evidence |= {f"{alt.name}.metrics.{f.metric.name}": alt.metrics[f.metric.name], f"{pick.name}.metrics.{f.metric.name}": pick.metrics[f.metric.name],
                 f"{alt.name}.cost.one_time_usd": (alt.cost or {}).get("one_time_usd", 0.0)}
    vs = _vs_best(alt, pick)
    ci = f" (paired 95% CI {_ci(f, vs['delta_ci95'])})" if vs else ""
    trade = (f"choosing it instead would give up {f.points(gap, sign=False)} {f.unit_word} to save about ${yearly - reindex:.4f} a year"
             if f.metric.signed(gap) < 0 else f"it scores as well or better, but is not shown within the {c.equivalence_points:g}-point margin")
    return [Sentence(f"{head}; {alt.name}, updated by re-indexing (${reindex:.4f} a year), scores {f.points(gap)} {f.unit_word} against it{ci}, "
                     f"not shown within the {c.equivalence_points:g}-point equivalence margin, so {pick.name} is kept: {trade}.", evidence)]


def _forgetting(pick: TrialRecord, f: Facts) -> Sentence:
    status, why = forgetting_status(pick, f.families[pick.strategy].changes_weights)
    name = pick.name
    if status == "none":
        return Sentence(f"No forgetting: {why} ({pick.strategy} does not train).", {f"families.{pick.strategy}.changes_weights": False})
    if status == "unknown":
        return Sentence(f"Forgetting unknown: {why}; the general-benchmark drop of these trained weights was not established.",
                        {f"families.{pick.strategy}.changes_weights": True})
    fg = pick.forgetting
    limit = f.constraints.max_forgetting
    ci = mean_delta_ci(fg)
    against = f"; {forgetting_against_limit(fg, limit)}" if limit is not None else ""
    ci_text = f" [95% CI {100 * ci[0]:+.1f} to {100 * ci[1]:+.1f}]" if ci else ""
    return Sentence(f"Forgetting: {100 * fg.mean_delta:+.1f} points on average{ci_text} over {', '.join(fg.benchmarks)}{against}.",
                    {f"{name}.forgetting.mean_delta": fg.mean_delta})


def _serving(pick: TrialRecord, f: Facts) -> list[Sentence]:
    out, name, cost = [], pick.name, pick.cost or {}
    if cost:
        text = (f"Serving: ${cost['per_1k_queries_usd']:.4f} per 1,000 queries ({cost['prompt_tokens_per_1k_queries'] / 1000:.0f} "
                f"prompt tokens per query; {cost['basis']}); one-time ${cost['one_time_usd']:.4f}.")
        out.append(Sentence(text, {f"{name}.cost.per_1k_queries_usd": cost["per_1k_queries_usd"], f"{name}.cost.one_time_usd": cost["one_time_usd"]}))
    if pick.latency and pick.latency.p95_ms is not None:
        limit = f" (limit {f.constraints.max_latency_ms:.0f} ms)" if f.constraints.max_latency_ms else ""
        how = pick.latency.measured or "how it was measured is not recorded"
        out.append(Sentence(f"Latency p95 {pick.latency.p95_ms:.0f} ms on this hardware ({how}){limit}.", {f"{name}.latency.p95_ms": pick.latency.p95_ms}))
    return out


def what_would_change(pick: TrialRecord, ok: list[TrialRecord], f: Facts) -> list[Sentence]:
    out, c = [], f.constraints
    if mde := f.statistics.get("minimum_detectable_effect"):
        out.append(Sentence(f"This test set ({f.statistics['n_test']} items) detects differences of about {f.points(mde, sign=False)} "
                            f"{f.unit_word} or more; smaller real gaps need a larger test set.", {"statistics.minimum_detectable_effect": mde}))
    # only trained trials still in the running: retraining or break-even of a clearly worse trial changes nothing
    trained = [t for t in ok if f.families[t.strategy].changes_weights and t.comparisons.get("vs_best", {}).get("verdict") != "worse"]
    retrains = RETRAINS_PER_YEAR.get(c.knowledge_changes or "never", 0)
    for t in trained:
        cost = t.cost or {}
        if retrains > 1 and cost and t is not pick:
            out.append(Sentence(f"Knowledge changes {c.knowledge_changes}: {t.name} must be retrained {retrains}x a year, "
                                f"one-time ${cost['one_time_usd']:.4f} becomes ${retrains * cost['one_time_usd']:.4f} a year.",
                                {f"{t.name}.cost.one_time_usd": cost["one_time_usd"]}))
        if cost.get("break_even_queries") and (ref := f.by_name.get(cost.get("break_even_queries_vs"))) and ref.cost:
            mine, theirs = cost["per_1k_queries_usd"], ref.cost["per_1k_queries_usd"]
            out.append(Sentence(f"{t.name} pays back its training cost against {ref.name} after {cost['break_even_queries']:,.0f} queries "
                                f"(cheaper per query: ${mine:.4f} vs ${theirs:.4f} per 1,000).",
                                {f"{t.name}.cost.break_even_queries": cost["break_even_queries"],
                                 f"{t.name}.cost.per_1k_queries_usd": mine, f"{ref.name}.cost.per_1k_queries_usd": theirs}))
    return out
