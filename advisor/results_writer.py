"""results.json: the run-level header, every trial's record, cross-trial statistics and the decision.

Rewritten (atomically) after every trial, so an interrupted run still has a valid, partial results.json;
validated against contracts.records.RunResults before it is written.
"""

from __future__ import annotations

from advisor.env import environment
from advisor.rundir import RunDir
from contracts.io import write_json
from contracts.records import SCHEMA_VERSION, RunResults, Splits, Trial, TrialRecord


def header(spec, splits: Splits, warnings) -> dict:
    """The run-level part of results.json: what was asked, on which data, on what machine."""
    return {
        "task": {"name": spec.name, "type": spec.task.type, "model": spec.model, "metric": spec.headline_metric,
                 "source": str(spec.source), "seed": spec.seed, "labels": splits.labels, "n_train": len(splits.train),
                 "data_fingerprints": splits.fingerprints, "spec": spec.model_dump(mode="json")},
        "warnings": [str(w) for w in warnings],
        "environment": environment(),
    }


def _tokens_per_example(records: list[dict], baseline: str | None) -> float | None:
    """Prompt + answer tokens of one training example, as seen by the baseline (zero-shot) trial."""
    zero = next((r for r in records if r.get("name") == baseline and r.get("status") == "ok"), None)
    if zero is None:
        return None
    res = zero["resources"]
    return res["prompt_tokens_per_query"] + res["output_tokens"] / max(res.get("n_predictions", 1), 1)


def write_results(store: RunDir, spec, trials: list[Trial], head: dict, complete: bool) -> dict:
    from advisor.aggregate import annotate, baseline_trial, target_scale
    from advisor.feasibility import feasibility_statistics
    from advisor.recommend import recommend
    from baselines import family_facts
    from evaluators import metrics

    by_id = {r["id"]: r for r in store.records()}
    records = [by_id.get(t.id) or TrialRecord.pending(t).stored() for t in trials]
    target = target_scale(spec, head["task"]["n_train"], _tokens_per_example(records, baseline_trial(records)))
    statistics = annotate(records, spec, store.root, target)
    statistics |= feasibility_statistics(records, spec, store.root, head["task"]["n_train"])
    results = {
        "schema_version": SCHEMA_VERSION,
        "complete": complete,
        **head,
        # what the registries declare, so readers of results.json never need the registries
        "families": {name: f.model_dump() for name, f in family_facts().items()},
        "metrics": {name: m.model_dump() for name, m in metrics.facts().items()},
        "statistics": statistics,
        "target_scale": target,
        "trials": records,
        "recommendation": recommend(records, spec, statistics, target).as_dict() if complete else None,
    }
    RunResults.model_validate(results)  # the published schema (advisor schema --results) holds
    write_json(store.root / "results.json", results)
    return results
