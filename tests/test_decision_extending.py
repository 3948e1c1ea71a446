"""Extending the decision: a lower-is-better metric and a new strategy family, registered here only (no edit
elsewhere), are ranked, compared, recommended and reported the right way round."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from advisor.aggregate import annotate
from advisor.env import environment
from advisor.recommend import recommend
from baselines import Strategy, family_facts, strategies
from contracts.records import RunResults
from evaluators import metrics
from evaluators.base import Metric

from test_recommend import answers, run_spec, stored


class Lookup(Strategy):
    """A family the code base has never heard of: answers from a lookup table."""

    Options = BaseModel
    simplicity_rank = 1
    retrieves = True

    @classmethod
    def expand(cls, options, spec):
        return [("lookup", {})]

    def predict(self, examples):
        return []


@pytest.fixture
def extended():
    strategies.register("lookup")(Lookup)
    metrics.register("error_rate")(Metric("error_rate", "Error rate", lambda p, r: sum(a != b for a, b in zip(p, r)) / len(r),
                                          ("classification",), higher_is_better=False, per_item=lambda p, r: float(p != r),
                                          paired_test="mcnemar"))
    yield
    strategies.unregister("lookup")
    metrics.unregister("error_rate")


def test_lower_is_better_metric_and_new_family_rank_compare_recommend_and_report(extended, tmp_path):
    from reports import render_report

    refs = ["y"] * 100
    trials = [stored(tmp_path, "zero-shot", "prompting", answers(55, 100), refs, settings={"shots": 0}),
              stored(tmp_path, "lookup", "lookup", answers(90, 100), refs),
              stored(tmp_path, "3-shot", "prompting", answers(70, 100), refs, settings={"shots": 3})]
    spec = run_spec("error_rate")
    stats = annotate(trials, spec, tmp_path)
    assert stats["best"] == "lookup"  # the lowest error, not the highest
    zero = trials[0]["comparisons"]["vs_best"]
    assert zero["delta"] == pytest.approx(0.35) and zero["verdict"] == "worse" and zero["test"] == "McNemar exact"
    rec = recommend(trials, spec, stats)
    assert rec.pick == "lookup" and rec.ranking == ["lookup", "3-shot", "zero-shot"]
    assert rec.rationale[0].text.startswith("lookup: error_rate 10.0%")
    assert "Against zero-shot: -35.0 points" in rec.rationale[1].text and "better" in rec.rationale[1].text
    assert any("No forgetting" in s.text and "lookup does not train" in s.text for s in rec.rationale)

    results = {"schema_version": 1, "complete": True, "warnings": [], "environment": environment(),
               "task": {"name": "extended", "type": "classification", "model": "m", "metric": "error_rate", "source": "task.yaml",
                        "seed": 0, "labels": ["n", "y"], "n_train": 0, "spec": {"forgetting": None}},
               "families": {n: f.model_dump() for n, f in family_facts().items()},
               "metrics": {n: m.model_dump() for n, m in metrics.facts().items()},
               "statistics": stats, "target_scale": None, "trials": trials, "recommendation": rec.as_dict()}
    assert results["metrics"]["error_rate"]["higher_is_better"] is False and results["families"]["lookup"]["simplicity_rank"] == 1
    RunResults.model_validate(results)
    (tmp_path / "results.json").write_text(json.dumps(results))
    render_report(tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert "Error rate" in html and "lookup" in html and rec.rationale[0].text.split(" [")[0] in html
