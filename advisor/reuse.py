"""Reuse of finished trials: in this run folder, or copied from an earlier run of the same task (same
content hash), unless the spec now asks for forgetting benchmarks the stored record lacks."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from advisor.budgeted import TEST_SIZE
from advisor.plan import TRAIN_SIZE
from advisor.rundir import RunDir
from contracts.io import read_json
from contracts.records import Trial, TrialRecord

RUNS_ROOT = Path("runs")
"""Where runs go without --out: relative to the working directory, like the README says."""


def lacks_forgetting(record: dict, spec) -> bool:
    """A stored trial that changed weights but was scored on other benchmarks (or none) than the spec asks
    for now: it must run again (its training reloads from its checkpoint) so forgetting is measured."""
    from baselines import strategies
    from evaluators.forgetting import covers

    if not (spec.forgetting and spec.forgetting.benchmarks and strategies.get(record["strategy"]).changes_weights) \
            or {TRAIN_SIZE, TEST_SIZE} & set(record.get("settings") or {}):  # curve points and rungs measure quality only
        return False
    return (record.get("forgetting") or {}).get("applies") is not False and not covers(record.get("forgetting"), spec)


def reusable(trial: Trial, store: RunDir, spec) -> dict | None:
    """A finished record of this exact trial, here or in an earlier run of the same task, measured on
    the forgetting benchmarks the spec asks for."""
    if (record := store.finished(trial)) and not lacks_forgetting(record, spec):
        return record
    for other in sorted(store.root.parent.glob(f"{spec.name}-*"), reverse=True):
        if other == store.root or not (record := RunDir(other).finished(trial)) or lacks_forgetting(record, spec):
            continue
        shutil.copytree(other / "trials" / trial.id, store.trial_dir(trial), dirs_exist_ok=True)
        store.save_trial(TrialRecord.model_validate({**record, "reused_from": str(other)}))
        return record
    return None


def default_out(spec, resume: bool = True) -> Path:
    """The newest unfinished run of this task (to resume it), else a new timestamped folder."""
    runs = sorted(RUNS_ROOT.glob(f"{spec.name}-*"), reverse=True)
    if resume and runs and (results := read_json(runs[0] / "results.json")) is not None and not results.get("complete"):
        return runs[0]
    return RUNS_ROOT / f"{spec.name}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"
