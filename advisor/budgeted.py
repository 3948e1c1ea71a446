"""Budgeted comparison (`advisor compare --budget quick|MINUTES`): successive halving over the TEST set.

Every trial is first scored on a stratified subset of the test set (a rung: a quarter of it, at least 20
items); a trial that the headline metric's own paired test (McNemar for 0/1 item scores, else the paired
bootstrap: `evaluators.comparisons`) shows behind the rung's leader at p < 0.05 stops there, and the others
go on to a larger subset (each rung's items lie inside the next's), until the full test set. `quick` has
one subset rung, then the full test set; MINUTES doubles the subset at each rung and stops promoting when
the projected time of the rest of the ladder no longer fits (the leader always goes on: a recommendation
needs a trial scored on every item). Only trials scored on the full test set are candidates; a stopped
trial keeps its record, labelled with its evidence (`TrialRecord.stopped_early`).

The raw p (not Holm's): the trial that would win is at risk only in its one comparison with the leader, so
alpha bounds the chance of dropping it at each rung; Holm's p is kept in the evidence too.

A rung is a trial of its own (the subset size is in its settings, so in its content hash: a subset record
is never reused as a full one) that works in its full trial's folder, so a training or an index is made
once and reloaded by the next rung (the same reload a resumed run uses). Subset rungs measure quality only:
no batch-1 latency, no forgetting; the full rung is the plan's own trial and measures everything.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import click

from advisor.data import nested_order
from advisor.plan import TRAIN_SIZE, make_trial
from advisor.rundir import read_predictions
from contracts.io import content_hash
from contracts.records import Splits, StoppedEarly, Trial, TrialRecord
from evaluators.comparisons import ALPHA, compare_trials

TEST_SIZE = "test_size"
"""A rung's setting: how many test items (a nested, stratified subset) it is scored on."""
FIRST_SHARE, FIRST_MIN = 0.25, 20
"""The first rung: a quarter of the test set, at least 20 items."""


@dataclass(frozen=True)
class Budget:
    minutes: float | None
    """None: `quick` (one subset rung, then the full test set, no time limit)."""

    @classmethod
    def parse(cls, text: str) -> Budget:
        if text == "quick":
            return cls(None)
        try:
            minutes = float(text)
        except ValueError:
            minutes = 0.0
        if not minutes > 0 or math.isinf(minutes):
            raise ValueError(f"'{text}': use quick or a number of minutes above 0")
        return cls(minutes)


class BudgetOption(click.ParamType):
    """`--budget quick|MINUTES` on the command line."""

    name = "quick|MINUTES"

    def convert(self, value, param, ctx) -> Budget:
        try:
            return value if isinstance(value, Budget) else Budget.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def rung_sizes(n_test: int, budget: Budget) -> list[int]:
    """Test items per rung, ending with the whole test set; a test set of FIRST_MIN items or fewer has one rung."""
    sizes = [min(n_test, max(FIRST_MIN, math.ceil(FIRST_SHARE * n_test)))]
    while sizes[-1] < n_test:
        sizes.append(n_test if budget.minutes is None else min(n_test, 2 * sizes[-1]))
    return sizes


def scored_subset(splits: Splits, size: int | None, seed: int, stratify: bool) -> Splits:
    """The splits with test cut to its nested subset of `size` items (by label when stratified), in file order."""
    if size is None or size >= len(splits.test):
        return splits
    keep = {e.id for e in nested_order(splits.test, seed, stratify)[:size]}
    return replace(splits, test=[e for e in splits.test if e.id in keep])


def rung_trial(trial: Trial, size: int, n_test: int) -> Trial:
    """`trial` scored on `size` test items: the trial itself on the full test set."""
    if size >= n_test:
        return trial
    return Trial(trial.name, trial.family, {**trial.settings, TEST_SIZE: size},
                 content_hash({"trial": trial.hash, TEST_SIZE: size}), trial.simplicity_rank)


def scored_on(trial: Trial, spec, splits: Splits, device) -> tuple[Trial, Splits]:
    """(the trial whose folder holds the work, the splits with the test items it is scored on): a rung works in
    its full trial's folder (a finished training reloads there) and is scored on its subset."""
    size = trial.settings.get(TEST_SIZE)
    if size is None:
        return trial, splits
    settings = {k: v for k, v in trial.settings.items() if k != TEST_SIZE}
    full = make_trial(spec, splits, trial.family, trial.name, settings, device)
    return full, scored_subset(splits, size, spec.seed, spec.task.type == "classification")


def decide(metric, outputs: dict[str, list[str]], refs: list[str], seed: int = 0) -> tuple[str, dict[str, dict]]:
    """(the leader, {trial: evidence} for each trial the paired test shows behind it at p < ALPHA) on one rung."""
    leader = max(outputs, key=lambda name: metric.signed(metric.fn(outputs[name], refs)))
    rows = compare_trials(metric, outputs, refs, leader, None, seed=seed)
    stops = {}
    for name, row in rows.items():
        if (c := row.get("vs_best")) and c["p"] < ALPHA and metric.signed(c["delta"]) < 0:
            stops[name] = {"why": "worse", "n": len(refs), "leader": leader, "delta": c["delta"], "delta_ci95": c["delta_ci95"],
                           "p": c["p"], "p_holm": c["p_holm"], "test": c["test"]}
    return leader, stops


def rung_cost(resources: dict, n_scored: int, n_next: int) -> float:
    """Projected seconds of a trial on `n_next` items from its rung on `n_scored`: the answering time scaled by the
    items, plus its other work again (loading, template selection), less a training the next rung reloads. The full
    rung's latency and forgetting measurements are not projected."""
    trained = 0.0 if resources.get("training_reused") else resources.get("train_s", 0.0)  # a fine-tuning family's figures
    other = resources["wall_s"] - resources["predict_s"] - trained
    return resources["predict_s"] * n_next / n_scored + max(other, 0.0)


def within_budget(ranked: list[str], costs: dict[str, float], left_s: float) -> list[str]:
    """The trials (best first) whose projected seconds fit in `left_s` together; the leader always."""
    promoted, spent = [], 0.0
    for name in ranked:
        if promoted and spent + costs[name] > left_s:
            break
        promoted.append(name)
        spent += costs[name]
    return promoted


def _rung_outputs(store, records: dict[str, dict], items: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    rows = {name: read_predictions(store.root, r) for name, r in records.items()}
    first = next(iter(rows.values()))
    return {name: [r[i]["output"] for i in items] for name, r in rows.items()}, [first[i]["target"] for i in items]


def _stopped_by_budget(stops: dict, ranked: list[str], metric, outputs, refs, costs, left_s: float, minutes: float, seed: int) -> None:
    """Add to `stops` the survivors the rest of the ladder has no time for, with how far they were behind."""
    promoted = within_budget(ranked, costs, left_s)
    if len(promoted) == len(ranked):
        return
    rows = compare_trials(metric, {n: outputs[n] for n in ranked}, refs, ranked[0], None, seed=seed)
    for name in ranked[len(promoted):]:
        c = rows[name]["vs_best"]
        stops[name] = {"why": "budget", "n": len(refs), "leader": ranked[0], "delta": c["delta"], "delta_ci95": c["delta_ci95"],
                       "p": c["p"], "p_holm": c["p_holm"], "test": c["test"], "budget_s": round(60 * minutes, 1),
                       "left_s": round(left_s, 1), "needed_s": round(costs[name], 1)}


def run_budgeted(run, fresh: bool, budget: Budget) -> None:
    """The rungs through `run` (advisor.run_loop._Run): each rung's trials run (or are reused), then the decision; a
    lone survivor goes straight to the full test set. Learning-curve points are no contenders: they run on the full
    test set after the rungs."""
    spec, store, plan, began = run.spec, run.store, list(run.trials), time.perf_counter()
    n, curve = len(run.splits.test), [t for t in plan if TRAIN_SIZE in t.settings]
    alive, sizes = [t for t in plan if t not in curve], rung_sizes(n, budget)
    standing = {t.name: t for t in plan}  # the trial whose record results.json lists for each plan trial
    if fresh:
        for t in plan:
            store.cleared(t)  # the full trials' folders, where every rung trains: once, at the start
    size = sizes[0]
    while alive:
        rung = [rung_trial(t, size, n) for t in alive]
        standing |= {r.name: r for r in rung}
        run.trials = [standing[t.name] for t in plan]
        run.console.print(f"budget {budget.minutes or 'quick'}: {len(rung)} trial(s) on {size} of {n} test items")
        run.run_all(False, [store.cleared(r) if fresh and size < n else r for r in rung])
        if size == n:
            break
        records = {r.name: found for r in rung if (found := store.finished(r))}  # failed trials stop, labelled as failed
        left = None if budget.minutes is None else 60 * budget.minutes - (time.perf_counter() - began)
        stops = _rung_decision(run, records, size, [m for m in sizes if m > size], left, budget)
        alive = [t for t in alive if t.name in records and t.name not in stops]
        size = n if len(alive) == 1 else next(m for m in sizes if m > size)
        run.write(complete=False)
    if curve:
        run.run_all(False, curve)


def _rung_decision(run, records: dict[str, dict], size: int, later: list[int], left_s: float | None, budget: Budget) -> dict[str, dict]:
    """Decide one rung: {trial: evidence} of those that stop here, each stored in its rung record (cleared in the others,
    which a resumed run may have stopped under another budget)."""
    from evaluators import metrics

    spec, store, n = run.spec, run.store, len(run.splits.test)
    if not records:
        return {}
    metric = metrics.get(spec.headline_metric)
    items = [e.id for e in scored_subset(run.splits, size, spec.seed, spec.task.type == "classification").test]
    outputs, refs = _rung_outputs(store, records, items)
    _, stops = decide(metric, outputs, refs, spec.seed)
    if left_s is not None:
        ranked = sorted((r for r in records if r not in stops), key=lambda r: -metric.signed(metric.fn(outputs[r], refs)))
        costs = {r: sum(rung_cost(records[r]["resources"], size, m) for m in later) for r in ranked}
        _stopped_by_budget(stops, ranked, metric, outputs, refs, costs, left_s, budget.minutes, spec.seed)
    for name, record in records.items():
        kept = {k: v for k, v in record.items() if k != "stopped_early"}
        store.save_trial(TrialRecord.model_validate(kept | ({"stopped_early": {**stops[name], "of": n}} if name in stops else {})))
    return stops


def stop_sentence(stop: StoppedEarly, unit: str) -> str:
    """The exclusion reason of a stopped trial, every number from its evidence."""
    gap = f"{100 * abs(stop.delta):.1f} points" if unit == "%" else f"{abs(stop.delta):.3g}"
    where = f"stopped early on {stop.n} of {stop.of} test items"
    if stop.why == "worse":
        return f"{where}: {gap} behind {stop.leader} there, {stop.test} p = {stop.p:.3g} < {ALPHA}; not a candidate"
    return (f"{where}: the time budget ({stop.budget_s:.0f} s) had {stop.left_s:.0f} s left and the rest of the test set needed "
            f"about {stop.needed_s:.0f} s; {gap} behind {stop.leader}, not shown worse ({stop.test} p = {stop.p:.3g}); not a candidate")
