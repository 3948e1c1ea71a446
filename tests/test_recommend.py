"""The recommendation rules, one table row per rule (see advisor/recommend.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from advisor.recommend import recommend
from contracts.spec import Constraints


def trial(name, strategy, acc, ci=None, *, vs_best=None, vs_zero=None, p95=100.0, one_time=0.0, per_1k=0.01, monthly=None,
          forgetting=None, status="ok"):
    t = {"name": name, "strategy": strategy, "status": status,
         "metrics": {"accuracy": acc, "accuracy_ci95": list(ci or (acc - 0.05, acc + 0.05))},
         "latency": {"p95_ms": p95}, "cost": {"one_time_usd": one_time, "per_1k_queries_usd": per_1k, "monthly_usd": monthly,
                                               "prompt_tokens_per_1k_queries": 1e5, "basis": "test"},
         "forgetting": forgetting or {"applies": False}, "comparisons": {}}
    if vs_best:
        other, verdict, lo, hi = vs_best
        t["comparisons"]["vs_best"] = {"other": other, "verdict": verdict, "delta_ci95": [lo, hi], "delta": (lo + hi) / 2,
                                       "p_holm": 0.01 if verdict != "insufficient evidence" else 0.5, "test": "McNemar exact"}
    if vs_zero:
        verdict, delta = vs_zero
        t["comparisons"]["vs_zero_shot"] = {"other": "zero-shot", "verdict": verdict, "delta": delta, "delta_ci95": [delta - 0.05, delta + 0.05],
                                            "p_holm": 0.01 if verdict != "insufficient evidence" else 0.5, "test": "McNemar exact"}
    return t


def spec(**constraints):
    return SimpleNamespace(headline_metric="accuracy", constraints=Constraints(**constraints))


STATS = {"n_test": 200, "minimum_detectable_effect": 0.12}
ZS = trial("zero-shot", "prompting", 0.40, vs_best=("lora", "worse", -0.4, -0.2))
LORA = trial("lora", "lora", 0.70, vs_zero=("better", 0.3), one_time=0.5, per_1k=0.005,
             forgetting={"applies": True, "mean_delta": -0.02, "benchmarks": {"arc_easy": {}}})

CASES = [
    # (rule, trials, constraints, stats, expected pick, expected confidence or None)
    ("R1 failed trials are not candidates",
     [ZS, trial("lora", "lora", 0.0, status="failed")], {}, STATS, "zero-shot", None),
    ("R2 latency limit excludes the best",
     [ZS, {**LORA, "latency": {"p95_ms": 900.0}}], {"max_latency_ms": 500}, STATS, "zero-shot", None),
    ("R2 training budget excludes",
     [ZS, LORA], {"budget_usd": 0.1}, STATS, "zero-shot", None),
    ("R2 forgetting tolerance excludes",
     [ZS, LORA], {"max_forgetting": 1.0}, STATS, "zero-shot", None),
    ("R3 the best eligible trial leads",
     [ZS, LORA], {}, STATS, "lora", "high"),
    ("R4 a simpler trial shown equivalent wins",
     [trial("rag", "rag", 0.69, vs_best=("lora", "insufficient evidence", -0.015, 0.01), vs_zero=("better", 0.29)),
      {**LORA, "comparisons": {}}, ZS], {}, STATS, "rag", "medium"),
    ("R4 not separable is not equivalent: the leader stays",
     [trial("rag", "rag", 0.66, vs_best=("lora", "insufficient evidence", -0.1, 0.02), vs_zero=("better", 0.26)),
      {**LORA, "comparisons": {}}, ZS], {}, STATS, "lora", None),
    ("R4 the equivalence margin is the spec's",
     [trial("rag", "rag", 0.66, vs_best=("lora", "insufficient evidence", -0.1, 0.02), vs_zero=("better", 0.26)),
      {**LORA, "comparisons": {}}, ZS], {"equivalence_points": 12}, STATS, "rag", None),
    ("R4 a significantly worse trial is not tied, even within the equivalence margin",
     [trial("rag", "rag", 0.50, vs_best=("lora", "worse", -0.3, -0.1)), LORA, ZS], {"equivalence_points": 50}, STATS, "lora", None),
    ("R5 weekly knowledge changes favour retrieval over a tied fine-tune",
     [trial("rag", "rag", 0.69, vs_best=("full", "insufficient evidence", -0.05, 0.03)),
      trial("full", "full", 0.71, forgetting={"applies": True, "mean_delta": 0.0, "benchmarks": {}}), ZS],
     {"knowledge_changes": "weekly"}, STATS, "rag", None),
    ("R6 a small test set means low confidence",
     [ZS, LORA], {}, {"n_test": 12}, "lora", "low"),
]


@pytest.mark.parametrize(("rule", "trials", "constraints", "stats", "pick", "confidence"), CASES, ids=[c[0] for c in CASES])
def test_rules(rule, trials, constraints, stats, pick, confidence):
    rec = recommend(trials, spec(**constraints), stats)
    assert rec.pick == pick, rec
    if confidence:
        assert rec.confidence == confidence


def test_excluded_trials_are_listed_with_their_reason():
    rec = recommend([ZS, {**LORA, "latency": {"p95_ms": 900.0}}], spec(max_latency_ms=500), STATS)
    assert rec.excluded == {"lora": ["p95 latency 900 ms > limit 500 ms"]}


def test_every_rationale_sentence_cites_the_numbers_it_quotes():
    rec = recommend([ZS, LORA], spec(knowledge_changes="weekly"), STATS)
    assert rec.rationale[0].text.startswith("lora: accuracy 70.0% [95% CI 65.0%–75.0%] on 200 test examples")
    assert rec.rationale[0].evidence["lora.metrics.accuracy"] == 0.70
    assert "+30.0 points over zero-shot" in rec.rationale[1].text
    assert any("Forgetting: -2.0 points" in s.text for s in rec.rationale)
    assert any("retrained 52x a year" in s.text for s in rec.what_would_change)
    assert all(s.evidence for s in rec.rationale)


def test_no_eligible_trial_recommends_nothing():
    rec = recommend([trial("zero-shot", "prompting", 0.1, status="failed")], spec(), STATS)
    assert rec.pick is None and rec.confidence == "none"


def test_a_clearly_worse_fine_tune_gets_no_retraining_or_break_even_sentence():
    rag = trial("rag", "rag", 0.70, vs_zero=("better", 0.3))
    worse = {**LORA, "metrics": {"accuracy": 0.42, "accuracy_ci95": [0.37, 0.47]},
             "cost": {**LORA["cost"], "break_even_queries": 80.0, "break_even_queries_vs": "rag"}}
    worse["comparisons"] = {"vs_best": {"other": "rag", "verdict": "worse", "delta": -0.28, "delta_ci95": [-0.35, -0.2],
                                        "p_holm": 0.001, "test": "McNemar exact"}}
    rec = recommend([ZS, rag, worse], spec(knowledge_changes="weekly"), STATS)
    assert rec.pick == "rag"
    assert not [s.text for s in rec.what_would_change if "lora" in s.text]


def test_a_leader_with_inseparable_rivals_says_so():
    rag = trial("rag", "rag", 0.66, vs_best=("lora", "insufficient evidence", -0.1, 0.02), vs_zero=("better", 0.26))
    rec = recommend([rag, {**LORA, "comparisons": {}}, ZS], spec(), STATS)
    assert rec.pick == "lora" and rec.tied_with == ["rag"]
    assert any("not separable" in s.text and "up to 10 points worse" in s.text for s in rec.rationale)
