"""Turn measured trials + the spec's constraints into a decision with reasons. Plain rules, no model.

Rules, in order (the test table in tests/test_recommend.py has a case for each):
  R1  failed trials are never candidates.
  R2  hard constraints exclude a trial (it is still shown, and still compared, labelled): p95 latency
      > max_latency_ms, one-time cost > budget_usd (training at the target scale when `target` is
      set), monthly cost > monthly_budget_usd, forgetting worse than max_forgetting, or forgetting
      unknown (not measured, or the measurement failed) while max_forgetting is set
      (advisor.eligibility, applied before aggregate chooses the trial every other is paired with).
  R3  the leader is the eligible trial with the best headline metric, in the metric's own direction.
  R4  trials whose paired comparison with the leader is not significant (Holm-adjusted) or whose
      difference CI contains 0 are "not separable" from it (listed, never hidden). Not separable is
      not the same as equivalent: on a small test set everything is inseparable, and picking the
      simplest of those would favour zero-shot whatever was measured. So a simpler trial replaces
      the leader only when it is shown equivalent: the paired 95% CI of its difference with the
      leader stays within `constraints.equivalence_points`. Among equivalent trials the simplest
      family wins (each family's `simplicity_rank`), then the cheapest per query; the rationale says
      which of "simpler" and "cheaper" holds, from the numbers.
  R5  when knowledge changes weekly or daily and the pick trains weights, the rationale sets its
      yearly retraining cost against the best retrieval trial's quality gap. It never swaps outside
      the equivalence margin (inside it, R4 has already picked the simpler retrieval trial).
  R6  confidence: high when the pick beats zero-shot and every other eligible family significantly;
      low when the test set is small (< 30 items) or nothing differs significantly; medium otherwise.
  R7  long answers (qa, generation with token precision): a retrieval trial not separable from a
      closed-book pick on the headline metric is picked instead when retrieval works (recall@k >=
      0.7), its answers are markedly more precise (token precision at least 10 points higher, its 95%
      CI above the pick's precision) and grounded (grounding rate >= 0.5: most of their words are in
      the text retrieved for them). Token F1 rewards length and common words; precision shows whose
      words are the reference's, grounding that they come from the retrieved passage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from advisor.eligibility import exclusions, record
from advisor.feasibility import RECALL_WORKS, bar_sentence, levers, quality_bar
from advisor.rationale import Facts, Sentence, equivalent, rationale, retrieval_recall, tied, what_would_change
from contracts.records import TrialRecord

PRECISION_MARGIN, GROUNDED = 0.10, 0.5


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
    quality_bar: dict | None = None
    """constraints.min_quality, the pick's verdict (surely / maybe / no) with its evidence, the trials surely reaching it."""

    def as_dict(self) -> dict:
        return asdict(self)


def recommend(trials: list[TrialRecord | dict], spec, statistics: dict, target_scale: dict | None = None) -> Recommendation:
    from baselines import family_facts
    from evaluators import metrics

    metric, c, families = metrics.get(spec.headline_metric), spec.constraints, family_facts()
    records = [record(t) for t in trials]
    excluded = exclusions(records, spec, target_scale)  # R1, R2
    ok = [r for r in records if r.status == "ok" and not r.stopped_early]  # a stopped trial's figures are a test subset's
    eligible = [r for r in ok if r.name not in excluded]
    if not eligible:
        return Recommendation(None, None, "none", [Sentence("No trial finished within the constraints; nothing can be recommended.")],
                              excluded, [], [], [])
    ranking = sorted(eligible, key=lambda r: -metric.signed(r.metrics[metric.name]))
    leader = ranking[0]  # R3
    facts = Facts(metric, families, c, statistics, ranking, [r for r in ranking if tied(r, leader)], {r.name: r for r in records})
    simplest = lambda r: (families[r.strategy].simplicity_rank, (r.cost or {}).get("per_1k_queries_usd", 0))  # noqa: E731
    pick = min((r for r in facts.tied if equivalent(r, leader, c.equivalence_points, metric)), key=simplest)  # R4
    precise = _more_precise(pick, facts)  # R7
    pick = precise or pick
    bar, found = quality_bar(pick, eligible, facts), levers(pick, ok, facts)
    why = rationale(pick, facts, precise is not None)
    if bar:  # whether the bar is reached comes first; short of it, the headline names the levers
        why = [bar_sentence(pick, bar, facts, found if bar["verdict"] != "surely" else [])] + why
    return Recommendation(pick.name, pick.strategy, _confidence(pick, eligible, statistics), why,
                          excluded, [r.name for r in facts.tied if r is not pick], what_would_change(pick, ok, facts) + [s for _, s in found],
                          [r.name for r in ranking], bar)


def _precision(r: TrialRecord) -> tuple[float, float] | None:
    if "token_precision" not in r.metrics:
        return None
    return r.metrics["token_precision"], r.metrics.get("token_precision_ci95", [0.0, 1.0])[0]


def _more_precise(pick: TrialRecord, facts: Facts) -> TrialRecord | None:
    """R7: the retrieval trial whose answers are markedly more precise than a closed-book pick's, if any."""
    if facts.families[pick.strategy].retrieves or (mine := _precision(pick)) is None:
        return None
    for r in facts.tied:
        theirs, recall = _precision(r), retrieval_recall(r)
        if (facts.families[r.strategy].retrieves and theirs and recall is not None and recall >= RECALL_WORKS
                and theirs[0] - mine[0] >= PRECISION_MARGIN and theirs[1] > mine[0] and r.metrics.get("grounding_rate", 0.0) >= GROUNDED):
            return r
    return None


def _confidence(pick: TrialRecord, eligible: list[TrialRecord], statistics: dict) -> str:  # R6
    if statistics.get("n_test", 0) < 30:
        return "low"
    verdicts = [v["verdict"] for v in pick.comparisons.values()]
    others_beaten = all(t.comparisons.get("vs_best", {}).get("verdict") == "worse"
                        for t in eligible if t.strategy != pick.strategy and t is not pick)
    if verdicts and all(v == "better" for v in verdicts) and others_beaten:
        return "high"
    significant = any(v.get("verdict") != "insufficient evidence" for t in eligible for v in t.comparisons.values())
    return "medium" if significant else "low"
