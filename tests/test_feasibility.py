"""Feasibility (issue 20): the quality bar's verdict and headline, learning-curve subsets, points and fit, levers."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from advisor.data import nested_order, train_subset
from advisor.feasibility import verdict
from advisor.learning_curve import _model, analyse, examples_to, fit
from advisor.plan import resolve_sizes
from advisor.recommend import recommend
from contracts.records import Example, Splits
from contracts.spec import Constraints
from evaluators import metrics
from tests.test_recommend import LORA, STATS, ZS, trial


def _examples(counts: dict[str, int]) -> list[Example]:
    return [Example(f"{label}-{i}", f"text {label} {i}", label) for label, n in counts.items() for i in range(n)]


def test_subsets_are_nested_and_stratified():
    train = _examples({"billing": 30, "shipping": 20, "refund": 10, "other": 12})
    order = nested_order(train, seed=0, stratify=True)
    assert sorted(e.id for e in order) == sorted(e.id for e in train)  # a permutation
    shares = {label: n / len(train) for label, n in Counter(e.target for e in train).items()}
    previous: set[str] = set()
    for size in (6, 12, 24, 48):
        subset = train_subset(Splits(train=train), size, seed=0, stratify=True).train
        ids = {e.id for e in subset}
        assert len(subset) == size and previous <= ids  # the smaller subset lies inside the larger
        counts = Counter(e.target for e in subset)
        assert all(abs(counts[label] - share * size) < 2 for label, share in shares.items()), counts
        previous = ids
    assert [e.id for e in nested_order(train, 0, True)] == [e.id for e in order]  # same seed, same order
    assert [e.id for e in nested_order(train, 1, True)] != [e.id for e in order]
    assert train_subset(Splits(train=train), None, 0, True).train is train


def test_sizes_resolve_to_counts_below_the_full_split():
    assert resolve_sizes([50, 0.25, "all", 1.0, 500, 100], 200) == [50, 100]
    assert resolve_sizes(None, 200) == []


def test_plan_adds_curve_points_for_trials_that_learn_from_train(tmp_path):
    from advisor.plan import make_plan
    from advisor.task import check_task
    from baselines.device import DeviceInfo

    for split, rows in (("train", 40), ("test", 10)):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps({"text": f"t{i}", "label": "ab"[i % 2]}) + "\n" for i in range(rows)))
    (tmp_path / "task.yaml").write_text("name: t\ntask: {type: classification}\n"
                                        "data: {train: train.jsonl, test: test.jsonl, train_sizes: [10, 0.5, all]}\n"
                                        "strategies: {prompting: {shots: [0, 3]}, lora: {}}\n")
    spec, splits, _ = check_task(tmp_path / "task.yaml")
    trials = {t.name: t for t in make_plan(spec, splits, DeviceInfo("cpu"))}
    assert sorted(trials) == ["3-shot", "3-shot@n=10", "3-shot@n=20", "lora-r16", "lora-r16@n=10", "lora-r16@n=20", "zero-shot"]
    assert trials["lora-r16@n=10"].settings["train_size"] == 10
    assert len({t.hash for t in trials.values()}) == len(trials)  # the size is in the hash

    from advisor.execute import curve_point

    settings, sub = curve_point(trials["lora-r16@n=10"], spec, splits)
    assert "train_size" not in settings and len(sub.train) == 10 and sub.test is splits.test
    assert curve_point(trials["lora-r16"], spec, splits)[1] is splits

    from advisor.learning_curve import forecast

    (line,) = forecast(list(trials.values()), splits, spec)
    assert line == ("learning curve: 4 extra trial(s) on nested subsets of 10, 20 of the 40 train examples; "
                    "their cost: the forecast's lines for the trials named '@n='")


@pytest.mark.parametrize(("ci", "bar", "higher", "expected"), [
    ((0.91, 0.97), 0.9, True, "surely"), ((0.85, 0.95), 0.9, True, "maybe"), ((0.05, 0.12), 0.9, True, "no"),
    ((0.02, 0.04), 0.05, False, "surely"), ((0.03, 0.07), 0.05, False, "maybe"), ((0.06, 0.09), 0.05, False, "no"),
])
def test_verdict_reads_the_ci_in_the_metric_direction(ci, bar, higher, expected):
    metric = SimpleNamespace(signed=lambda v: v if higher else -v)
    assert verdict(list(ci), bar, metric) == expected


def _spec(**constraints):
    return SimpleNamespace(headline_metric="accuracy", constraints=Constraints(**constraints))


def test_far_below_the_bar_the_headline_says_so_and_names_the_levers():
    stats = {**STATS, "learning_curves": {"lora": {
        "points": [{"n": 50, "trial": "lora@n=50", "value": 0.55, "ci95": [0.48, 0.62]}, {"n": 100, "trial": "lora", "value": 0.70, "ci95": [0.63, 0.76]}],
        "fit": None, "why_no_fit": "fewer than three sizes"}},
        "largest_fitting": {"gpu": "a10g-24gb", "by_method": {"qlora": "33B", "lora": "13B", "full": "1B"}, "run_model": "135M", "setup": "b 1"}}
    rec = recommend([ZS, LORA], _spec(min_quality=0.95), stats)
    first = rec.rationale[0].text
    assert first.startswith("Quality bar not reached: no trial reaches min_quality 95.0%. The best so far, lora")
    assert "more data" in first and "a bigger model (up to 33B with QLoRA on a10g-24gb)" in first
    assert rec.quality_bar["verdict"] == "no" and rec.quality_bar["surely"] == []
    assert any(s.text.startswith("A bigger model: on the target GPU a10g-24gb") for s in rec.what_would_change)


def test_a_pick_whose_ci_clears_the_bar_says_so():
    rec = recommend([ZS, LORA], _spec(min_quality=0.6), STATS)
    assert rec.rationale[0].text.startswith("Quality bar met: lora surely reaches min_quality 60.0% (accuracy 70.0%, 95% CI 65.0%–75.0%")
    assert rec.quality_bar == {"min_quality": 0.6, "verdict": "surely", "surely": ["lora"], "maybe": [],
                               "evidence": {"lora.metrics.accuracy": 0.7, "lora.metrics.accuracy_ci95": LORA["metrics"]["accuracy_ci95"]}}
    straddles = recommend([ZS, LORA], _spec(min_quality=0.72), STATS)
    assert straddles.rationale[0].text.startswith("Quality bar not shown: no trial surely reaches min_quality 72.0%. The best so far, lora")
    assert recommend([ZS, LORA], _spec(), STATS).quality_bar is None


def test_retrieval_lever_names_the_missing_passages():
    rag = trial("rag", "rag", 0.10, vs_zero=("insufficient evidence", 0.01))
    rag["metrics"] |= {"recall_at_k": 0.51, "retrieval_k": 3}
    rec = recommend([trial("zero-shot", "prompting", 0.09), rag], _spec(min_quality=0.5), STATS)
    lever = next(s for s in rec.what_would_change if s.text.startswith("Retrieval:"))
    assert "recall@3 0.51" in lever.text and "for 49% of the questions the gold passage is not retrieved" in lever.text
    assert "retrieval (recall@3 0.51)" in rec.rationale[0].text


def test_fit_recovers_a_known_curve():
    ns = np.array([12.0, 24, 48, 96])
    a, b, c = fit(ns, _model(ns, 2.0, 0.6, 0.05))
    assert (a, b, c) == pytest.approx((2.0, 0.6, 0.05), rel=1e-3)
    assert examples_to((a, b, c), 0.1) == pytest.approx((2.0 / 0.05) ** (1 / 0.6), rel=1e-2)
    assert examples_to((a, b, c), 0.04) == np.inf  # below the floor: never
    assert fit(ns[:2], _model(ns[:2], 2.0, 0.6, 0.05)) is None  # two sizes cannot fix three parameters


def test_curve_analysis_from_stored_answers(tmp_path):
    """Items right with the curve's probability; the bootstrap range holds the examples-to-bar figure."""
    rng, n_items = np.random.default_rng(0), 2000
    truth = lambda n: 1 - _model(n, 2.0, 0.5, 0.05)  # noqa: E731 - accuracy; 0.9 is reached at n = 1600
    points = []
    for n in (50, 100, 200, 400):
        right = rng.random(n_items) < truth(n)
        name = f"lora@n={n}" if n < 400 else "lora"
        (tmp_path / "trials" / name).mkdir(parents=True)
        (tmp_path / "trials" / name / "predictions.jsonl").write_text(
            "".join(json.dumps({"id": str(i), "output": "a" if r else "b", "target": "a"}) + "\n" for i, r in enumerate(right)))
        record = {"id": name, "name": name, "status": "ok", "metrics": {"accuracy": right.mean(), "accuracy_ci95": [0, 1]},
                  "resources": {"wall_s": 10.0}, "cost": {"one_time_usd": 0.01}}
        points.append((n, record))
    out = analyse(points, metrics.get("accuracy"), 0.9, tmp_path, seed=0)
    lo, hi = out["to_bar"]["range95"]
    assert lo < 1600 < (hi or np.inf) and 800 < out["to_bar"]["n"] < 3200
    assert out["to_bar"]["extrapolation"] == pytest.approx(out["to_bar"]["n"] / 400, rel=0.01)
    assert out["cost"] == {"extra_trials": 3, "wall_s": 30.0, "one_time_usd": 0.03}
    assert out["gain_per_doubling"] > 0 and out["fit"]["bootstrap_fits"] > 250


def test_curve_members_group_points_with_their_full_size_trial():
    from advisor.learning_curve import curve_members

    rec = lambda name, n=None: {"name": name, "status": "ok", "settings": {"train_size": n} if n else {}}  # noqa: E731
    records = [rec("zero-shot"), rec("lora-r16@n=20/m1", 20), rec("lora-r16/m1"), rec("lora-r16@n=10/m1", 10), rec("3-shot@n=10", 10)]
    curves = curve_members(records, 40)
    assert {k: [n for n, _ in v] for k, v in curves.items()} == {"lora-r16/m1": [10, 20, 40], "3-shot": [10]}


def _on(model: str, t: dict) -> dict:
    """A trial of a `models:` run: its settings carry its model's entry."""
    return {**t, "settings": {"model": {"kind": "local", "name": model}}}


def test_model_gap_lever_sets_each_models_best_against_the_best_and_unknown_models_apart():
    tuned = _on("local", trial("local/lora", "lora", 0.70, one_time=0.5, per_1k=0.005,
                               forgetting={"applies": True, "mean_delta": -0.02, "benchmarks": {"arc_easy": {}}}))
    trials = [_on("local", trial("local/zero-shot", "prompting", 0.40, vs_best=("local/lora", "worse", -0.4, -0.2))), tuned,
              _on("hosted", trial("hosted/zero-shot", "prompting", 0.55, vs_best=("local/lora", "worse", -0.25, -0.05))),
              _on("hosted", trial("hosted/rag", "rag", 0.50, vs_best=("local/lora", "worse", -0.3, -0.1))),
              _on("other", trial("other/zero-shot", "prompting", 0.0, status="failed"))]
    rec = recommend(trials, _spec(min_quality=0.95), STATS)
    lever = next(s for s in rec.what_would_change if s.text.startswith("Another model:"))
    assert lever.text == ("Another model: of the 3 models compared, local's best, local/lora, scores highest (accuracy 70.0%); "
                          "hosted's best, hosted/zero-shot, 55.0% (-15.0 points, paired 95% CI -25.0 to -5.0: worse); "
                          "other: unknown, none of its trials finished.")
    assert lever.evidence == {"other/zero-shot.status": "failed", "local/lora.metrics.accuracy": 0.70, "hosted/zero-shot.metrics.accuracy": 0.55,
                              "hosted/zero-shot.comparisons.vs_best.delta_ci95": [-0.25, -0.05]}
    assert "another model (local best; hosted -15.0, other unknown)" in rec.rationale[0].text  # named in the headline below the bar


def test_model_gap_lever_needs_several_models():
    assert not any(s.text.startswith("Another model:") for s in recommend([ZS, LORA], _spec(), STATS).what_would_change)
    alone = [_on("local", ZS), _on("local", LORA)]
    assert not any(s.text.startswith("Another model:") for s in recommend(alone, _spec(), STATS).what_would_change)


def _fitted_curve(n_to_bar: int, largest: int = 72) -> dict:
    return {"lora": {"points": [{"n": 12, "trial": "lora@n=12", "value": 0.31, "ci95": None}, {"n": largest, "trial": "lora", "value": 0.375, "ci95": None}],
                     "fit": {"a": 1.0, "b": 0.1, "c": 0.0}, "form": "err(n) = a*n^-b + c", "ceiling": 1.0, "ceiling_ci95": [0.9, 1.0],
                     "gain_per_doubling": 0.027, "gain_per_doubling_ci95": [0.0, 0.084], "largest_n": largest,
                     "to_bar": {"bar": 0.9, "reached_at": None, "n": n_to_bar, "range95": [n_to_bar // 2, None], "unreachable_share": 0.39,
                                "extrapolation": round(n_to_bar / largest, 1)}}}


@pytest.mark.parametrize("n_to_bar, quoted", [(500, True), (594_469_988_569_246, False)])
def test_an_examples_to_bar_figure_far_past_the_data_is_not_quoted_as_a_number(n_to_bar, quoted):
    """Seen on support-tickets (12-72 examples): 'about 594,469,988,569,246 examples' is no figure to act on."""
    rec = recommend([ZS, LORA], _spec(min_quality=0.9), {**STATS, "learning_curves": _fitted_curve(n_to_bar)})
    lever = next(s.text for s in rec.what_would_change if s.text.startswith("lora's learning curve"))
    assert (f"about {n_to_bar:,} train examples would reach the bar" in lever) is quoted
    assert ("beyond 10x the largest measured size (720 train examples" in lever) is not quoted


def test_the_chart_stops_at_ten_times_the_data_and_keeps_its_labels_apart():
    """Seen on support-tickets: the x axis ran to a million examples with no tick there, and '3-shot' was printed over 'bar 90%'."""
    import re

    from reports.learning_curves import learning_curve_svg

    curves = _fitted_curve(594_469_988_569_246)
    curves["3-shot"] = {**curves["lora"], "to_bar": {**curves["lora"]["to_bar"], "n": 1_199_106_343, "extrapolation": 16654254.8}}
    svg = learning_curve_svg({"statistics": {"learning_curves": curves}, "task": {"metric": "accuracy", "spec": {"constraints": {"min_quality": 0.9}}},
                              "metrics": {"accuracy": {"higher_is_better": True}}})
    ticks = [int(t.replace(",", "")) for t in re.findall(r'class="tick">([\d,]+)</text>', svg)]
    assert max(ticks) == 720  # 10x the largest measured size, labelled
    ys = [float(v) for v in re.findall(r'y="([\d.]+)" class="label"', svg)]  # the bar's label and the two legend entries
    assert len(ys) == 3 and all(abs(a - b) >= 14 for i, a in enumerate(ys) for b in ys[i + 1:])
