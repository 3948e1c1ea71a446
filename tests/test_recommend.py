"""The recommendation rules, one table row per rule (see advisor/recommend.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from advisor.recommend import recommend
from contracts.spec import Constraints


def trial(name, strategy, acc, ci=None, *, vs_best=None, vs_zero=None, p95=100.0, one_time=0.0, per_1k=0.01, monthly=None,
          forgetting=None, status="ok"):
    t = {"id": name, "hash": "0" * 16, "name": name, "strategy": strategy, "status": status,
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
    ("R2 unknown latency cannot pass a latency limit",
     [ZS, {**LORA, "latency": {"p95_ms": None}}], {"max_latency_ms": 500}, STATS, "zero-shot", None),
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
    ("R5 weekly knowledge changes: retrieval within the margin replaces a fine-tune",
     [trial("rag", "rag", 0.70, vs_best=("full", "insufficient evidence", -0.015, 0.01)),
      trial("full", "full", 0.71, forgetting={"applies": True, "mean_delta": 0.0, "benchmarks": {}}), ZS],
     {"knowledge_changes": "weekly"}, STATS, "rag", None),
    ("R5 weekly knowledge changes: retrieval merely not separable does not replace it",
     [trial("rag", "rag", 0.69, vs_best=("full", "insufficient evidence", -0.05, 0.03)),
      trial("full", "full", 0.71, forgetting={"applies": True, "mean_delta": 0.0, "benchmarks": {}}), ZS],
     {"knowledge_changes": "weekly"}, STATS, "full", None),
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
    assert "Against zero-shot: +30.0 points" in rec.rationale[1].text
    assert any("Forgetting: -2.0 points" in s.text for s in rec.rationale)
    assert any("retrained 52x a year" in s.text for s in rec.rationale)
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
    assert any("not separable" in s.text and "up to 10 points worse, or as good" in s.text for s in rec.rationale)


def test_an_inseparable_rival_whose_unadjusted_ci_excludes_zero_is_not_called_as_good():
    """Holm's adjustment can leave a rival 'not separable' while its unadjusted CI lies wholly below the leader."""
    rag = trial("rag", "rag", 0.60, vs_best=("lora", "insufficient evidence", -0.15, -0.03), vs_zero=("better", 0.2))
    rec = recommend([rag, {**LORA, "comparisons": {}}, ZS], spec(), STATS)
    text = next(s.text for s in rec.rationale if "not separable" in s.text)
    assert "or as good" not in text
    assert "3 to 15 points worse by the paired 95% CI" in text and "Holm-adjusted test does not separate them" in text


# --- issue 14: one table-driven test per finding, each failing on the code before the fix -------------------------

def sentences(rec) -> str:
    return " ".join(s.text for s in rec.rationale + rec.what_would_change)


FAILED_FORGETTING = {"applies": True, "error": "RuntimeError: lm-eval crashed"}
FULL = trial("full", "full", 0.80, vs_zero=("better", 0.4), one_time=2.0)

F1_UNKNOWN_FORGETTING = [
    # (case, forgetting record of a full fine-tune, constraints, expected pick, sentence that must appear)
    ("failed measurement, no limit", FAILED_FORGETTING, {}, "full", "Forgetting unknown: the forgetting measurement failed"),
    ("not configured, no limit", None, {}, "full", "Forgetting unknown: not measured"),
    ("failed measurement under max_forgetting", FAILED_FORGETTING, {"max_forgetting": 1.0}, "zero-shot", "No forgetting"),
    ("not configured under max_forgetting", None, {"max_forgetting": 1.0}, "zero-shot", "No forgetting"),
]


@pytest.mark.parametrize(("case", "forgetting", "constraints", "pick", "says"), F1_UNKNOWN_FORGETTING, ids=[c[0] for c in F1_UNKNOWN_FORGETTING])
def test_f1_unknown_forgetting_is_never_none(case, forgetting, constraints, pick, says):
    full = {**FULL, "forgetting": forgetting}
    rec = recommend([ZS, full], spec(**constraints), STATS)
    assert rec.pick == pick
    assert says in sentences(rec)
    if pick == "full":
        assert "No forgetting" not in sentences(rec) and "weights are unchanged" not in sentences(rec)
    else:
        assert "forgetting unknown" in rec.excluded["full"][0] and "max_forgetting 1 cannot be checked" in rec.excluded["full"][0]


# F2: comparisons are paired with the best trial that may win (constraints before pairing) --------------------------

def run_spec(metric="accuracy", **constraints):
    from contracts.spec import Pricing

    return SimpleNamespace(headline_metric=metric, constraints=Constraints(**constraints), pricing=Pricing(), seed=0,
                           forgetting=None, target=None, model="unused")


def stored(tmp_path, name, strategy, outputs, refs, p95=50.0, settings=None, **resources):
    """A finished trial as the runner stores it, with its predictions file."""
    from evaluators.statistics import score_all
    from evaluators import metrics

    t = {"id": name, "hash": "0" * 16, "name": name, "strategy": strategy, "status": "ok", "settings": settings or {},
         "metrics": score_all(metrics.names(), outputs, refs),
         "latency": {"p95_ms": p95, "measured": "per-query share of batched wall time"},
         "resources": {"prepare_s": 1.0, "examples_per_s": 10.0, "prompt_tokens_per_query": 100.0, "n_predictions": len(refs),
                       "output_tokens": len(refs), **resources}}
    folder = tmp_path / "trials" / name
    folder.mkdir(parents=True)
    (folder / "predictions.jsonl").write_text("".join(json.dumps({"id": str(i), "output": o, "target": r}) + "\n"
                                                      for i, (o, r) in enumerate(zip(outputs, refs))))
    return t


def answers(n_right: int, n: int = 200, offset: int = 0) -> list[str]:
    """n answers to the all-"y" references, right on n_right consecutive items starting at `offset`."""
    return ["y" if (i - offset) % n < n_right else "n" for i in range(n)]


def test_f2_constraints_come_before_pairing(tmp_path):
    from advisor.aggregate import annotate
    from evaluators.comparisons import minimum_detectable_effect

    refs = ["y"] * 200
    trials = [stored(tmp_path, "lora", "lora", answers(160), refs, p95=900.0),  # best, but breaks the latency limit
              stored(tmp_path, "rag", "rag", answers(140), refs),
              stored(tmp_path, "3-shot", "prompting", answers(139, offset=30), refs, settings={"shots": 3}),  # 69.5%, other items
              stored(tmp_path, "zero-shot", "prompting", answers(100), refs, settings={"shots": 0})]
    s = run_spec(max_latency_ms=500)
    stats = annotate(trials, s, tmp_path)
    assert stats["best"] == "rag" and stats["best_is_eligible"]
    assert stats["minimum_detectable_effect"] == round(minimum_detectable_effect(0.70, 200), 4)
    assert trials[2]["comparisons"]["vs_best"]["other"] == "rag"
    assert trials[0]["comparisons"]["vs_best"]["other"] == "rag"  # the excluded trial is compared too, and labelled
    rec = recommend(trials, s, stats)
    assert rec.pick == "rag" and rec.tied_with == ["3-shot"]
    assert "lora" in rec.excluded and "latency" in rec.excluded["lora"][0]


# F3: the knowledge-change rule quantifies instead of swapping outside the margin ----------------------------------

def test_f3_knowledge_change_trades_points_for_dollars_instead_of_swapping():
    rag = trial("rag", "rag", 0.62, vs_best=("full", "insufficient evidence", -0.40, 0.04), one_time=0.01)
    full = {**FULL, "forgetting": {"applies": True, "mean_delta": 0.0, "benchmarks": {"arc_easy": {}}}}
    rec = recommend([rag, full, ZS], spec(knowledge_changes="weekly"), STATS)
    assert rec.pick == "full"
    text = sentences(rec)
    assert "retrained 52x a year ($104.0000 a year" in text
    assert "give up 18.0 points to save about $103.4800 a year" in text  # 52 x (2.00 - 0.01)


# F4: "simpler" and "cheaper" are computed -----------------------------------------------------------------------

def test_f4_cheaper_only_when_the_cost_says_so():
    rag = trial("rag", "rag", 0.70, per_1k=0.001, vs_zero=("better", 0.3))
    eight = trial("8-shot", "prompting", 0.695, per_1k=0.02, vs_best=("rag", "insufficient evidence", -0.015, 0.01))
    rec = recommend([rag, eight, ZS], spec(), STATS)
    assert rec.pick == "8-shot"
    swap = next(s.text for s in rec.rationale if "preferred" in s.text)
    assert "simpler (prompting before rag" in swap
    assert "cheaper" not in swap  # $0.02 per 1k is not cheaper than $0.001


# F5: reused training keeps its original cost ---------------------------------------------------------------------

def test_f5_reloaded_training_is_priced_at_its_original_time():
    from contracts.spec import Pricing
    from evaluators.cost import trial_cost

    reloaded = {"prepare_s": 3.0, "train_s": 3600.0, "training_reused": True, "examples_per_s": 10.0}
    assert trial_cost(reloaded, Pricing(cpu_hour_usd=1.0), None).one_time_usd == pytest.approx(3603 / 3600)


# F6: latency says how it was measured; never "per query" for a share of batch time -------------------------------

def test_f6_latency_sentences_say_how_latency_was_measured():
    how = "per-query share of batched wall time"
    lora = {**LORA, "latency": {"p95_ms": 900.0, "measured": how}}
    rec = recommend([ZS, lora], spec(max_latency_ms=500), STATS)
    assert how in rec.excluded["lora"][0]
    rec = recommend([ZS, lora], spec(), STATS)
    latency = next(s.text for s in rec.rationale if s.text.startswith("Latency"))
    assert how in latency and "ms per query" not in latency


# F8: statistics at the edges ------------------------------------------------------------------------------------

def test_f8_proportion_intervals_keep_their_width_at_0_and_100_percent():
    from evaluators.statistics import score_all

    for outputs in (["y"] * 20, ["n"] * 20):
        lo, hi = score_all(["accuracy"], outputs, ["y"] * 20)["accuracy_ci95"]
        assert hi - lo > 0.1


def test_f8_bootstrap_p_is_never_below_its_resolution():
    from evaluators import metrics
    from evaluators.comparisons import paired_bootstrap

    refs = ["the cat sat"] * 50
    _, p, _ = paired_bootstrap(metrics.get("token_f1"), refs, ["dog"] * 50, refs, samples=999)
    assert p == pytest.approx(2 / 1000)


def test_f8_holm_counts_each_pair_once():
    from evaluators import metrics
    from evaluators.comparisons import compare_trials
    from evaluators.statistics import mcnemar_p

    refs = ["y"] * 40
    outputs = {"best": answers(40, 40), "zero-shot": answers(20, 40), "other": answers(39, 40)}
    out = compare_trials(metrics.get("accuracy"), outputs, refs, "best", "zero-shot")
    p = mcnemar_p([1] * 40, [1] * 20 + [0] * 20)
    # distinct pairs: best-zero (asked twice), other-best, other-zero -> 3 comparisons, not 4
    assert out["best"]["vs_zero_shot"]["p_holm"] == pytest.approx(3 * p)
    assert out["zero-shot"]["vs_best"]["p_holm"] == out["best"]["vs_zero_shot"]["p_holm"]
    assert out["zero-shot"]["vs_best"]["delta"] == -out["best"]["vs_zero_shot"]["delta"]
    assert out["zero-shot"]["vs_best"]["verdict"] == "worse" and out["best"]["vs_zero_shot"]["verdict"] == "better"


def test_f8_mde_of_a_continuous_metric_comes_from_the_paired_spread(tmp_path):
    from advisor.aggregate import annotate
    from evaluators.comparisons import minimum_detectable_effect

    refs = ["the cat sat on the mat"] * 60
    a = ["the cat sat"] * 30 + ["a dog"] * 30
    b = ["the cat"] * 60
    trials = [stored(tmp_path, "rag", "rag", a, refs), stored(tmp_path, "zero-shot", "prompting", b, refs, settings={"shots": 0})]
    stats = annotate(trials, run_spec("token_f1"), tmp_path)
    se = next(t["comparisons"]["vs_best"]["delta_se"] for t in trials if "vs_best" in t["comparisons"])
    assert stats["minimum_detectable_effect"] == pytest.approx(2.8 * se, abs=1e-4)
    assert stats["minimum_detectable_effect"] != round(minimum_detectable_effect(trials[0]["metrics"]["token_f1"], 60), 4)


def test_f8_forgetting_ci_is_read_against_the_limit():
    wide = {"applies": True, "mean_delta": -0.01, "limit": 100,
            "benchmarks": {"arc_easy": {"delta": -0.01, "delta_ci95": [-0.12, 0.10], "n": 100}}}
    rec = recommend([ZS, {**LORA, "forgetting": wide}], spec(max_forgetting=2.0), STATS)
    assert rec.pick == "lora"
    assert "the sample cannot tell" in sentences(rec)


def test_f8_budget_is_checked_at_the_target_scale():
    target = {"model": "8B", "gpu": "a10g-24gb", "methods": {"lora": {"cost_usd": 40.0}}}
    lora = {**LORA, "settings": {"epochs": 2}}
    rec = recommend([ZS, lora], spec(budget_usd=50.0), STATS, target)
    assert rec.pick == "zero-shot" and "target scale (8B on a10g-24gb) estimated $80.00 > budget $50.00" in rec.excluded["lora"][0]


def test_f8_test_set_selection_is_stated(tmp_path):
    from advisor.aggregate import annotate

    refs = ["y"] * 40
    trials = [stored(tmp_path, "zero-shot", "prompting", answers(20, 40), refs, settings={"shots": 0})]
    stats = annotate(trials, run_spec(), tmp_path)
    assert "same test set" in stats["selection"]
    assert stats["selection"] in sentences(recommend(trials, run_spec(), stats))


# F9: long answers: retrieval that works and markedly more precise answers are weighed -----------------------------

def test_f9_precision_decides_between_f1_ties_when_retrieval_works():
    def qa(name, strategy, f1, ci, precision, p_ci, **extra):
        t = trial(name, strategy, 0.0, **extra)
        t["metrics"] = {"token_f1": f1, "token_f1_ci95": ci, "token_precision": precision, "token_precision_ci95": p_ci}
        return t

    closed = qa("closed-book", "prompting", 0.169, [0.14, 0.20], 0.317, [0.27, 0.37])
    rag = qa("rag", "rag", 0.151, [0.12, 0.18], 0.471, [0.39, 0.55], vs_best=("closed-book", "insufficient evidence", -0.05, 0.01))
    s = SimpleNamespace(headline_metric="token_f1", constraints=Constraints())
    rag["metrics"] |= {"recall_at_k": 0.75, "grounding_rate": 0.9}
    rec = recommend([closed, rag], s, STATS)
    assert rec.pick == "rag"
    assert "token precision 47.1%" in sentences(rec) and "recall 0.75" in sentences(rec)
    rag["metrics"]["recall_at_k"] = 0.30  # retrieval does not work: precision alone does not swap
    assert recommend([closed, rag], s, STATS).pick == "closed-book"


def test_f9_token_precision_and_recall_are_metrics():
    from evaluators import metrics

    assert metrics.get("token_precision").per_item("cat sat down here", "cat sat") == 0.5
    assert metrics.get("token_recall").per_item("cat", "cat sat") == 0.5
    assert {"token_precision", "token_recall"} <= set(metrics.for_task("qa"))


def test_an_equivalent_trial_of_the_same_family_is_told_why_the_pick_stays():
    """Seen on company-handbook: rag/sentence/hnsw, cheaper to set up and equivalent, was told 'the simplest family comes
    first' while both trials are rag; the pick stays because it costs less per query, and the sentence must say so."""
    flat = trial("rag-flat", "rag", 0.70, vs_zero=("better", 0.3), one_time=0.0008, per_1k=0.0678)
    hnsw = trial("rag-hnsw", "rag", 0.70, vs_best=("rag-flat", "insufficient evidence", -0.005, 0.005), vs_zero=("better", 0.3),
                 one_time=0.0006, per_1k=0.0750)
    rec = recommend([flat, hnsw, ZS], spec(), STATS)
    assert rec.pick == "rag-flat"
    text = next(s.text for s in rec.rationale if s.text.startswith("rag-hnsw: equivalent"))
    assert "simplest family comes first" not in text
    assert "rag-flat, of the same simplicity, costs no more per query ($0.0678 vs $0.0750 per 1,000 queries)" in text


def test_a_weight_changing_pick_states_its_own_retraining_when_knowledge_changes_monthly():
    """Seen on support-tickets: the other fine-tuned trials were told '12x a year', the pick (full) was not."""
    rec = recommend([ZS, LORA], spec(knowledge_changes="monthly"), STATS)
    assert rec.pick == "lora"
    assert any(s.text == "Knowledge changes monthly: lora must be retrained 12x a year ($6.0000 a year at this run's one-time cost)."
               for s in rec.rationale)
    assert not any("must be retrained" in s.text for s in recommend([ZS, LORA], spec(), STATS).rationale)
