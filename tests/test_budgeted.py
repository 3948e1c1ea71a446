"""Budgeted comparison (advisor.budgeted): rungs, stratified nested subsets, the stopping test and its evidence,
the time budget, and one run end to end (a training made once across rungs, stopped trials labelled)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import ClassVar

import pytest

from advisor import compare
from advisor.budgeted import TEST_SIZE, Budget, decide, rung_cost, rung_sizes, rung_trial, stop_sentence, scored_subset, within_budget
from advisor.eligibility import exclusions
from baselines.base import Strategy
from conftest import registered, write_classification_task, write_jsonl
from contracts.records import Example, Prediction, Splits, StoppedEarly, Trial
from contracts.spec import Strict
from evaluators import metrics
from evaluators.base import Metric

QUICK, TEN_MINUTES = Budget(None), Budget(10)


def test_rungs_start_at_a_quarter_of_the_test_set_with_at_least_20_items():
    assert rung_sizes(100, QUICK) == [25, 100]
    assert rung_sizes(100, TEN_MINUTES) == [25, 50, 100]
    assert rung_sizes(120, TEN_MINUTES) == [30, 60, 120]
    assert rung_sizes(60, TEN_MINUTES) == [20, 40, 60]
    assert rung_sizes(20, QUICK) == [20] and rung_sizes(12, TEN_MINUTES) == [12]


def test_budget_parses_quick_or_minutes():
    assert Budget.parse("quick") == QUICK and Budget.parse("2.5") == Budget(2.5)
    for bad in ("0", "-3", "soon", "inf"):
        with pytest.raises(ValueError, match="quick or a number of minutes"):
            Budget.parse(bad)


def _examples(counts: dict[str, int]) -> list[Example]:
    return [Example(f"{label}-{i}", f"text {label} {i}", label) for label, n in counts.items() for i in range(n)]


def test_subsets_are_stratified_nested_and_in_file_order():
    splits = Splits(test=_examples({"a": 40, "b": 30, "c": 20, "d": 10}))
    quarter, half = (scored_subset(splits, n, seed=3, stratify=True).test for n in (25, 50))
    shares = Counter(e.target for e in quarter)
    assert len(quarter) == 25 and all(abs(shares[lab] - n / 4) <= 1 for lab, n in {"a": 40, "b": 30, "c": 20, "d": 10}.items())
    assert {e.id for e in quarter} < {e.id for e in half}
    order = [e.id for e in splits.test]
    assert [e.id for e in half] == sorted((e.id for e in half), key=order.index)
    assert scored_subset(splits, 100, seed=3, stratify=True) is splits


def test_a_rung_is_its_own_trial_and_the_full_rung_is_the_plan_trial():
    trial = Trial("3-shot", "prompting", {"shots": 3}, "f" * 64)
    quarter, half = rung_trial(trial, 25, 100), rung_trial(trial, 50, 100)
    assert quarter.name == trial.name and quarter.settings == {"shots": 3, TEST_SIZE: 25}
    assert len({trial.hash, quarter.hash, half.hash}) == 3 and quarter.id != trial.id
    assert rung_trial(trial, 100, 100) is trial


ACCURACY = metrics.get("accuracy")


def _answers(refs: list[str], wrong: set[int]) -> list[str]:
    return [("x" if i in wrong else r) for i, r in enumerate(refs)]


def test_a_trial_clearly_behind_the_leader_stops_with_its_evidence():
    refs = ["a", "b"] * 15
    outputs = {"best": _answers(refs, {0, 1}), "close": _answers(refs, {0, 1, 2, 3}), "bad": _answers(refs, set(range(14)))}
    leader, stops = decide(ACCURACY, outputs, refs)
    assert leader == "best" and set(stops) == {"bad"}
    evidence = stops["bad"]
    assert evidence["why"] == "worse" and evidence["n"] == 30 and evidence["leader"] == "best"
    assert evidence["delta"] == pytest.approx(-12 / 30) and evidence["test"] == "McNemar exact"
    assert evidence["p"] == pytest.approx(2 * 0.5**12) and evidence["p_holm"] >= evidence["p"]


def test_the_metric_direction_comes_from_its_declaration():
    """A lower-is-better metric: the trial with the most errors is the one behind, by the paired bootstrap."""
    error = Metric("error", "Error", lambda p, r: sum(x != y for x, y in zip(p, r)) / len(r), ("classification",),
                   higher_is_better=False, per_item=lambda p, r: float(p != r), paired_test="bootstrap")
    refs = ["a"] * 30
    outputs = {"few errors": _answers(refs, {0}), "many errors": _answers(refs, set(range(20)))}
    leader, stops = decide(error, outputs, refs)
    assert leader == "few errors" and set(stops) == {"many errors"}
    assert stops["many errors"]["test"] == "paired bootstrap" and stops["many errors"]["delta"] == pytest.approx(19 / 30)


def test_the_budget_promotes_the_best_while_they_fit_and_always_the_leader():
    costs = {"lead": 50.0, "second": 30.0, "third": 30.0}
    assert within_budget(["lead", "second", "third"], costs, left_s=85) == ["lead", "second"]
    assert within_budget(["lead", "second", "third"], costs, left_s=10) == ["lead"]
    assert within_budget(["lead", "second", "third"], costs, left_s=500) == ["lead", "second", "third"]


def test_projected_cost_scales_the_answering_and_leaves_out_a_reloaded_training():
    resources = {"wall_s": 110.0, "predict_s": 10.0, "train_s": 90.0}
    assert rung_cost(resources, 25, 100) == pytest.approx(40.0 + 10.0)
    reloaded = {"wall_s": 30.0, "predict_s": 20.0, "train_s": 90.0, "training_reused": True}  # train_s: the original training's
    assert rung_cost(reloaded, 50, 100) == pytest.approx(40.0 + 10.0)


def test_a_stopped_trial_is_excluded_with_the_numbers_of_its_evidence(tmp_path):
    from advisor.task import load_task

    spec = load_task(write_classification_task(tmp_path, "smollm2-135m-instruct"))
    stop = StoppedEarly(why="worse", n=25, of=100, leader="3-shot", delta=-0.24, delta_ci95=[-0.4, -0.08], p=0.0042, p_holm=0.0084,
                        test="McNemar exact")
    record = {"id": "zero-shot-1", "name": "zero-shot", "strategy": "prompting", "hash": "h", "status": "ok", "n_test": 25,
              "stopped_early": stop.model_dump()}
    assert exclusions([record], spec)["zero-shot"] == [
        "stopped early on 25 of 100 test items: 24.0 points behind 3-shot there, McNemar exact p = 0.0042 < 0.05; not a candidate"]
    budget = stop.model_copy(update={"why": "budget", "budget_s": 600.0, "left_s": 40.0, "needed_s": 95.0, "delta": -0.02, "p": 0.7})
    assert "the time budget (600 s) had 40 s left and the rest of the test set needed about 95 s; 2.0 points behind 3-shot, " \
           "not shown worse (McNemar exact p = 0.7)" in stop_sentence(budget, "%")


class OracleOptions(Strict):
    right: list[float] = [1.0]


class Oracle(Strategy):
    """Answers right on a fixed share of the items (by a hash of each id), after a 'training' kept in its folder."""

    Options = OracleOptions
    simplicity_rank = 50
    changes_weights = True
    trainings: ClassVar[list[str]] = []

    @classmethod
    def expand(cls, options, spec):
        return [(f"oracle-{round(100 * r)}", {"right": r}) for r in options.right]

    def prepare(self) -> None:
        marker = self.ctx.trial_dir / "trained.txt"
        self.reused = marker.exists()
        if not self.reused:
            Oracle.trainings.append(self.ctx.trial_dir.name)
            marker.write_text("weights")

    def predict(self, examples):
        def right(e: Example) -> bool:
            return int(hashlib.md5(e.id.encode()).hexdigest(), 16) % 100 < 100 * self.settings["right"]

        other = {lab: next(o for o in self.ctx.splits.labels if o != lab) for lab in self.ctx.splits.labels}
        return [Prediction(e.id, e.target if right(e) else other[e.target]) for e in examples]

    def details(self):
        return {"training_reused": self.reused}


@pytest.mark.slow  # about 8 s: the run's forecast measures the throughput for 2 s at each rung
def test_budgeted_run_end_to_end(tmp_path, tiny_model_dir, fake_embedder):
    """48 test items: rung 1 on 20 (stratified), then the survivors on all 48. The weak oracle stops on its evidence,
    the strong one trains once for both rungs and is the pick; a second run reuses every rung."""
    from advisor.plan import make_plan
    from advisor.task import check_task
    from reports import render_report

    labels = ["billing", "shipping", "account"]
    write_jsonl(tmp_path / "train.jsonl", [{"text": f"train {lab} {i}", "label": lab} for lab in labels for i in range(3)])
    write_jsonl(tmp_path / "test.jsonl", [{"text": f"message {lab} {i}", "label": lab} for lab in labels for i in range(16)])
    task = tmp_path / "task.yaml"
    task.write_text(f"name: tiny\nmodel: {tiny_model_dir}\ntask: {{type: classification}}\ndata: {{train: train.jsonl, test: test.jsonl}}\n"
                    "strategies:\n  prompting: {shots: [0], templates: [terse]}\n  oracle: {right: [1.0, 0.3]}\n"
                    "constraints: {knowledge_changes: weekly}\n", encoding="utf-8")  # retraining sentences name trained trials
    Oracle.trainings.clear()
    with registered("oracle", Oracle):
        out = compare(task, out=tmp_path / "run", isolate=False, budget=QUICK)
        results = json.loads((out / "results.json").read_text())
        trials = {t["name"]: t for t in results["trials"]}
        weak, strong = trials["oracle-30"], trials["oracle-100"]
        assert weak["n_test"] == 20 and weak["settings"][TEST_SIZE] == 20
        stop = weak["stopped_early"]
        assert stop["why"] == "worse" and stop["leader"] == "oracle-100" and stop["n"] == 20 and stop["of"] == 48 and stop["p"] < 0.05
        assert results["recommendation"]["excluded"]["oracle-30"][0].startswith("stopped early on 20 of 48 test items")
        assert strong["n_test"] == 48 and "stopped_early" not in strong and results["recommendation"]["pick"] == "oracle-100"
        spec, splits, _ = check_task(task)
        plan = {t.name: t for t in make_plan(spec, splits)}
        assert strong["id"] == plan["oracle-100"].id  # the full rung is the plan's own trial: a plain run reuses it
        assert Oracle.trainings == [plan["oracle-100"].id, plan["oracle-30"].id]  # trained once, in the full trial's folder
        assert strong["details"]["training_reused"] is True
        rung = json.loads((out / "trials" / f"{rung_trial(plan['oracle-100'], 20, 48).id}.json").read_text())
        assert rung["n_test"] == 20 and "p50_ms" not in rung["latency"] and "stopped_early" not in rung
        scored = (out / "trials" / weak["id"] / "predictions.jsonl").read_text().splitlines()
        assert sorted(Counter(json.loads(line)["target"] for line in scored).values()) == [6, 7, 7]  # stratified
        assert results["statistics"]["n_test"] == 48
        assert "oracle-30" not in json.dumps(results["recommendation"]["what_would_change"])  # its figures are a subset's
        render_report(out)
        assert "stopped early on 20 of 48" in (out / "report.md").read_text()
        compare(task, out=tmp_path / "run", isolate=False, budget=QUICK)
        again = json.loads((out / "results.json").read_text())["trials"]
        assert len(Oracle.trainings) == 2 and [(t["id"], t["n_test"], t["metrics"]) for t in again] == \
            [(t["id"], t["n_test"], t["metrics"]) for t in results["trials"]]  # every rung reused, nothing trained again


@pytest.mark.slow  # about 6 s: the run's forecast measures the throughput for 2 s at each rung
def test_a_lone_survivor_goes_straight_to_the_full_test_set(tmp_path, tiny_model_dir):
    """With MINUTES the rungs double (20, 40, 48 here), but once one trial is left there is nothing to decide."""
    labels = ["billing", "shipping"]
    write_jsonl(tmp_path / "train.jsonl", [{"text": f"train {lab} {i}", "label": lab} for lab in labels for i in range(3)])
    write_jsonl(tmp_path / "test.jsonl", [{"text": f"message {lab} {i}", "label": lab} for lab in labels for i in range(24)])
    task = tmp_path / "task.yaml"
    task.write_text(f"name: tiny\nmodel: {tiny_model_dir}\ntask: {{type: classification}}\ndata: {{train: train.jsonl, test: test.jsonl}}\n"
                    "strategies:\n  prompting: null\n  oracle: {right: [1.0, 0.2]}\n", encoding="utf-8")
    with registered("oracle", Oracle):
        out = compare(task, out=tmp_path / "run", isolate=False, budget=TEN_MINUTES)
    scored = sorted(json.loads(p.read_text())["n_test"] for p in (out / "trials").glob("*.json"))
    assert scored == [20, 20, 48]
