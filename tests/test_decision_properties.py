"""Property test: on generated result sets, every sentence of the recommendation holds against the results.

Each cited number equals the value at its results.json path, and each comparative word (simpler, cheaper,
no forgetting, unknown, within the equivalence margin) is true of the numbers it compares.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.eligibility import exclusions
from advisor.recommend import recommend
from baselines import family_facts
from contracts.spec import Constraints

FAMILIES = ["prompting", "rag", "lora", "full"]
FORGETTING = [None, {"applies": True, "error": "RuntimeError: crashed"},
              {"applies": True, "mean_delta": -0.005, "benchmarks": {"arc_easy": {"delta": -0.005, "delta_ci95": [-0.04, 0.03], "n": 100}}},
              {"applies": True, "mean_delta": -0.05, "benchmarks": {"arc_easy": {"delta": -0.05, "delta_ci95": [-0.09, -0.01], "n": 100}}}]


@st.composite
def result_sets(draw):
    n = draw(st.integers(2, 5))
    trials = []
    for i in range(n):
        family = draw(st.sampled_from(FAMILIES))
        trials.append({"id": f"t{i}", "hash": "0" * 16, "name": f"{family}-{i}", "strategy": family, "status": "ok",
                       "metrics": {"accuracy": (acc := draw(st.integers(0, 100)) / 100), "accuracy_ci95": [max(acc - 0.07, 0), min(acc + 0.07, 1)]},
                       "latency": {"p95_ms": draw(st.sampled_from([50.0, 900.0])), "measured": "per-query share of batched wall time"},
                       "cost": {"one_time_usd": draw(st.sampled_from([0.0, 0.01, 2.0])), "per_1k_queries_usd": draw(st.sampled_from([0.001, 0.005, 0.02])),
                                "monthly_usd": None, "prompt_tokens_per_1k_queries": 1e5, "basis": "generated"},
                       "forgetting": draw(st.sampled_from(FORGETTING)) if family in ("lora", "full") else {"applies": False},
                       "comparisons": {}})
    constraints = Constraints(max_latency_ms=draw(st.sampled_from([None, 500.0])), max_forgetting=draw(st.sampled_from([None, 2.0])),
                              knowledge_changes=draw(st.sampled_from([None, "weekly"])), equivalence_points=draw(st.sampled_from([2.0, 5.0])))
    spec = SimpleNamespace(headline_metric="accuracy", constraints=constraints)
    excluded = exclusions(trials, spec)
    eligible = [t for t in trials if t["name"] not in excluded] or trials
    best = max(eligible, key=lambda t: t["metrics"]["accuracy"])
    for t in trials:  # what aggregate would pair: every trial against the best eligible one
        if t is not best:
            delta = t["metrics"]["accuracy"] - best["metrics"]["accuracy"]
            half = draw(st.sampled_from([0.01, 0.05, 0.15]))
            p = draw(st.sampled_from([0.001, 0.5]))
            t["comparisons"]["vs_best"] = {"other": best["name"], "delta": delta, "delta_ci95": [delta - half, delta + half], "p_holm": p,
                                           "test": "McNemar exact", "verdict": ("worse" if delta < 0 else "better") if p < 0.05 and delta else "insufficient evidence"}
    return trials, spec


def resolve(results: dict, path: str):
    head, _, rest = path.partition(".")
    if head in ("families", "statistics", "task"):
        node = results[head]
    else:
        name = max((t["name"] for t in results["trials"] if path.startswith(t["name"] + ".")), key=len)
        node, rest = next(t for t in results["trials"] if t["name"] == name), path[len(name) + 1:]
    for key in rest.split(".") if rest else []:
        node = node[key]
    return node


@pytest.mark.slow  # 1,000 generated result sets
@settings(max_examples=1000, deadline=None)
@given(result_sets())
def test_every_sentence_holds_against_the_results(generated):
    trials, spec = generated
    stats = {"n_test": 200, "minimum_detectable_effect": 0.12, "selection": "Ranked on the test set."}
    rec = recommend(trials, spec, stats)
    results = {"trials": trials, "statistics": stats, "families": {n: f.model_dump() for n, f in family_facts().items()},
               "task": {"spec": {"data": {"train_sizes": None}}}}  # the generated spec sets no learning curve
    if rec.pick is None:
        return
    pick = next(t for t in trials if t["name"] == rec.pick)
    families = results["families"]
    assert rec.pick not in rec.excluded
    for s in rec.rationale + rec.what_would_change:
        for path, value in s.evidence.items():
            assert resolve(results, path) == value, (s.text, path)
        for a, b in re.findall(r"simpler \((\w+) before (\w+) in simplicity\)", s.text):
            assert families[a]["simplicity_rank"] < families[b]["simplicity_rank"], s.text
        for a, b in re.findall(r"cheaper \(\$([\d.]+) vs \$([\d.]+)", s.text):
            assert float(a) < float(b), s.text
        if (m := re.search(r"within the ([\d.]+)-point equivalence margin", s.text)) and "not shown within" not in s.text:
            lo, hi = pick["comparisons"]["vs_best"]["delta_ci95"]
            assert 100 * lo >= -float(m.group(1)) - 1e-9, s.text
    text = " ".join(s.text for s in rec.rationale)
    changes = families[pick["strategy"]]["changes_weights"]
    measured = bool(pick["forgetting"]) and "mean_delta" in pick["forgetting"] and not pick["forgetting"].get("error")
    assert ("No forgetting" in text) == (not changes)
    assert ("Forgetting unknown" in text) == (changes and not measured)
    assert rec.rationale[0].text.startswith(f"{pick['name']}: accuracy {100 * pick['metrics']['accuracy']:.1f}%")
