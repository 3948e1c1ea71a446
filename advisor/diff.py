"""`advisor diff RUN_A RUN_B`: what changed between two runs of a task, trial by trial, on the same items.

Trials are matched by name. When both runs scored the same test set (equal test-data fingerprint),
each trial's change is tested paired on the items they share (McNemar for right/wrong metrics, paired
bootstrap otherwise, Holm-adjusted over the trials) and the items that flipped are listed; otherwise
the diff says it cannot pair and sets the two runs' own 95% intervals side by side.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from advisor.rundir import read_predictions, read_results

ALPHA = 0.05


def _changed(a: dict, b: dict) -> dict[str, list]:
    """{key: [value in A, value in B]} for the keys whose values differ (flat, one level)."""
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _paired(metric, ta: dict, tb: dict, pa: dict[str, dict], pb: dict[str, dict], seed: int) -> dict:
    from evaluators.comparisons import paired_bootstrap
    from evaluators.statistics import item_scores, mcnemar_p

    shared = sorted(set(pa) & set(pb))
    refs = [pb[i]["target"] for i in shared]
    out_a, out_b = [pa[i]["output"] for i in shared], [pb[i]["output"] for i in shared]
    (lo, hi), p_boot, *_ = paired_bootstrap(metric, out_b, out_a, refs, seed=seed)
    row = {"n_shared": len(shared), "a": metric.fn(out_a, refs), "b": metric.fn(out_b, refs), "delta_ci95": [lo, hi]}
    row["delta"] = row["b"] - row["a"]
    if metric.per_item is not None:
        sa, sb = item_scores(metric.per_item, out_a, refs), item_scores(metric.per_item, out_b, refs)
        row["worse_items"] = [i for i, x, y in zip(shared, sa, sb) if y < x]
        row["better_items"] = [i for i, x, y in zip(shared, sa, sb) if y > x]
    if metric.paired_test == "mcnemar":
        row.update(p=mcnemar_p(list(sb == 1), list(sa == 1)), test="McNemar exact")
    else:
        row.update(p=p_boot, test="paired bootstrap")
    return row


def diff_runs(run_a: Path, run_b: Path) -> dict[str, Any]:
    """The diff as JSON-ready data: per matched trial the change, its test and flipped items; what differs."""
    from evaluators import metrics
    from evaluators.comparisons import holm

    a, b = read_results(run_a), read_results(run_b)
    name = b["task"]["metric"]
    metric = metrics.get(name)
    fa, fb = a["task"].get("data_fingerprints", {}), b["task"].get("data_fingerprints", {})
    pairable = fa.get("test") is not None and fa.get("test") == fb.get("test")
    trials_a = {t["name"]: t for t in a["trials"] if t.get("status") == "ok"}
    trials_b = {t["name"]: t for t in b["trials"] if t.get("status") == "ok"}
    rows = []
    for trial in [n for n in trials_b if n in trials_a]:
        ta, tb = trials_a[trial], trials_b[trial]
        if pairable and (pa := read_predictions(run_a, ta)) and (pb := read_predictions(run_b, tb)):
            row = _paired(metric, ta, tb, pa, pb, b["task"].get("seed", 0))
        else:
            row = {"a": ta["metrics"][name], "b": tb["metrics"][name], "a_ci95": ta["metrics"].get(f"{name}_ci95"),
                   "b_ci95": tb["metrics"].get(f"{name}_ci95"), "test": "unpaired (test sets differ): intervals only"}
            row["delta"] = row["b"] - row["a"]
        rows.append({"trial": trial, **row, "settings_changed": _changed(ta.get("settings", {}), tb.get("settings", {}))})
    tested = [r for r in rows if "p" in r]
    for row, adjusted in zip(tested, holm([r["p"] for r in tested])):
        sign = 1 if metric.higher_is_better else -1
        row["p_holm"] = adjusted
        row["verdict"] = ("better" if sign * row["delta"] > 0 else "worse") if adjusted < ALPHA else "insufficient evidence"
    env_a, env_b = a.get("environment", {}), b.get("environment", {})
    return {
        "run_a": str(run_a), "run_b": str(run_b), "metric": name, "higher_is_better": metric.higher_is_better,
        "paired": pairable,
        "why_not_paired": None if pairable else "the test data differ (fingerprints), so items cannot be paired",
        "trials": rows,
        "only_in_a": sorted(set(trials_a) - set(trials_b)), "only_in_b": sorted(set(trials_b) - set(trials_a)),
        "data_fingerprints_changed": _changed(fa, fb),
        "model_changed": _changed({"model": a["task"].get("model")}, {"model": b["task"].get("model")}),
        "packages_changed": _changed(env_a.get("packages", {}), env_b.get("packages", {})),
        "git_commit_changed": _changed({"git": env_a.get("git_commit")}, {"git": env_b.get("git_commit")}),
    }


def regressions(diff: dict, points: float) -> list[dict]:
    """Trials significantly worse in B by more than `points` (in the metric's percentage points)."""
    sign = 1 if diff["higher_is_better"] else -1
    return [r for r in diff["trials"] if r.get("verdict") == "worse" and -sign * 100 * r["delta"] > points]


def _pct(v: float | None) -> str:
    return "?" if v is None else f"{100 * v:.1f}"


def _test_cell(r: dict) -> str:
    if "p_holm" in r:
        return f"{r['verdict']} ({r['test']}, Holm p={r['p_holm']:.3g})"
    return r["test"]


def _flips(r: dict, most: int = 10) -> str:
    if "worse_items" not in r:
        return ""
    shown = lambda ids: ", ".join(ids[:most]) + (f" (+{len(ids) - most})" if len(ids) > most else "")  # noqa: E731
    return f"worse: {shown(r['worse_items']) or '-'}; better: {shown(r['better_items']) or '-'}"


def to_markdown(diff: dict) -> str:
    """The diff as a Markdown section (a pull-request comment)."""
    lines = [f"### advisor diff: {diff['metric']} (%), {diff['run_a']} -> {diff['run_b']}", ""]
    if not diff["paired"]:
        lines += [f"Not paired: {diff['why_not_paired']}; each run's own interval is shown.", ""]
    lines += ["| trial | A | B | change (points) | test | items that changed |", "|---|---:|---:|---:|---|---|"]
    for r in diff["trials"]:
        ci = f" [{100 * r['delta_ci95'][0]:+.1f}, {100 * r['delta_ci95'][1]:+.1f}]" if "delta_ci95" in r else ""
        lines.append(f"| {r['trial']} | {_pct(r['a'])} | {_pct(r['b'])} | {100 * r['delta']:+.1f}{ci} | {_test_cell(r)} | {_flips(r)} |")
    for key, what in (("only_in_a", "Only in A"), ("only_in_b", "Only in B")):
        if diff[key]:
            lines += ["", f"{what}: {', '.join(diff[key])}"]
    changes = [f"{r['trial']} settings: {json.dumps(r['settings_changed'])}" for r in diff["trials"] if r["settings_changed"]]
    for key in ("data_fingerprints_changed", "model_changed", "packages_changed", "git_commit_changed"):
        changes += [f"{k}: {v[0]} -> {v[1]}" for k, v in diff[key].items()]
    if changes:
        lines += ["", "Changed between the runs:", *[f"- {c}" for c in changes]]
    return "\n".join(lines) + "\n"


def print_table(diff: dict, console) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title=f"{diff['metric']} (%): A={diff['run_a']}  B={diff['run_b']}", title_justify="left",
                  box=box.SIMPLE_HEAD, header_style="bold")
    for column, justify in (("trial", "left"), ("A", "right"), ("B", "right"), ("change", "right"), ("test", "left"), ("items", "left")):
        table.add_column(column, justify=justify)
    for r in diff["trials"]:
        table.add_row(r["trial"], _pct(r["a"]), _pct(r["b"]), f"{100 * r['delta']:+.1f}", _test_cell(r), _flips(r, most=5))
    console.print(table)
    if not diff["paired"]:
        console.print(f"not paired: {diff['why_not_paired']}", markup=False)
