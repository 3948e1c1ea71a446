"""Feasibility: does the pick reach the quality bar (constraints.min_quality), and what would move it.

The verdict reads the pick's 95% CI in the metric's own direction: "surely" when the whole CI is on the
good side of the bar, "no" when the whole CI is on the bad side, "maybe" when it straddles the bar.
The levers are computed from the run (the learning curve, retrieval recall, answers cut by the
generation budget, the largest model the estimator fits on the target GPU, and with `models:` the quality
gap between the models compared), each a cited sentence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from advisor.rationale import Facts, Sentence, retrieval_recall
from contracts.records import MAX_EXTRAPOLATION, TrialRecord

Verdict = Literal["surely", "maybe", "no"]
RECALL_WORKS = 0.7
"""Below this retrieval recall@k the missing passages, not the generation, bound what RAG can answer."""
SCALE_METHODS = {"qlora": "QLoRA", "lora": "LoRA", "full": "full fine-tuning"}


def verdict(ci: list[float], bar: float, metric) -> Verdict:
    worst, best = sorted(metric.signed(v) for v in ci)
    if worst >= metric.signed(bar):
        return "surely"
    return "no" if best < metric.signed(bar) else "maybe"


def quality_bar(pick: TrialRecord, eligible: list[TrialRecord], f: Facts) -> dict | None:
    """Recommendation.quality_bar: the bar, the pick's verdict with its evidence, and which trials surely reach it."""
    bar, name = f.constraints.min_quality, f.metric.name
    if bar is None:
        return None
    ci, verdicts = pick.metrics[f"{name}_ci95"], {r.name: verdict(r.metrics[f"{name}_ci95"], bar, f.metric) for r in eligible}
    return {"min_quality": bar, "verdict": verdicts[pick.name],
            "evidence": {f"{pick.name}.metrics.{name}": pick.metrics[name], f"{pick.name}.metrics.{name}_ci95": ci},
            "surely": [n for n, v in verdicts.items() if v == "surely"], "maybe": [n for n, v in verdicts.items() if v == "maybe"]}


def bar_sentence(pick: TrialRecord, bar: dict, f: Facts, levers: list[tuple[str, Sentence]]) -> Sentence:
    """The decision's first sentence when a bar is set: whether it is reached, before anything else."""
    m, name = f.metric, pick.name
    value, (lo, hi) = pick.metrics[m.name], pick.metrics[f"{m.name}_ci95"]
    shown = f"{m.name} {f.value(value)}, 95% CI {f.value(lo)}–{f.value(hi)}"
    named = f" Levers (see what would change this decision): {'; '.join(label for label, _ in levers)}." if levers else ""
    target = f"min_quality {f.value(bar['min_quality'])}"
    if bar["verdict"] == "surely":
        return Sentence(f"Quality bar met: {name} surely reaches {target} ({shown}: the whole interval clears the bar).", bar["evidence"])
    others = [t for t in bar["surely"] if t != name]
    if others:
        how = "may reach" if bar["verdict"] == "maybe" else "does not reach"
        return Sentence(f"Quality bar: {name} {how} {target} ({shown}); {', '.join(others)} surely reach(es) it.", bar["evidence"])
    if bar["verdict"] == "maybe":
        return Sentence(f"Quality bar not shown: no trial surely reaches {target}. The best so far, {name} ({shown}), may reach it: "
                        f"the interval straddles the bar.{named}", bar["evidence"])
    short = f.points(m.signed(bar["min_quality"]) - m.signed(value), sign=False)
    none = f"no trial reaches {target}" if not bar["maybe"] else f"no trial surely reaches {target} ({', '.join(bar['maybe'])} may)"
    return Sentence(f"Quality bar not reached: {none}. The best so far, {name} ({shown}), is {short} {f.unit_word} "
                    f"short of it, and its whole interval misses the bar: it is not a solution to build yet.{named}", bar["evidence"])


def levers(pick: TrialRecord, ok: list[TrialRecord], f: Facts) -> list[tuple[str, Sentence]]:
    """(short label, cited sentence) for each lever the run measured."""
    return _data_levers(ok, f) + _retrieval_lever(ok, f) + _budget_lever(pick, f) + _model_lever(f) + _model_gap_lever(ok, f)


def _range(pair: list, scale) -> str:
    """A bootstrap range; None (the bar never reached in those fits) reads "never"."""
    return " to ".join(scale(v) if v is not None else "never" for v in pair)


def _data_levers(ok: list[TrialRecord], f: Facts) -> list[tuple[str, Sentence]]:
    curves, out = f.statistics.get("learning_curves") or {}, []
    for base, c in curves.items():
        path = f"statistics.learning_curves.{base}"
        sizes = ", ".join(f"{p['n']} ({f.value(p['value'])})" for p in c["points"])
        if not c.get("fit"):
            out.append((f"more data: {base}'s curve could not be fitted",
                        Sentence(f"{base}'s learning curve, train examples (quality): {sizes}; no fit: {c['why_no_fit']}.", {f"{path}.points": c["points"]})))
            continue
        gain = f"one more doubling of train adds {f.points(c['gain_per_doubling'])} {f.unit_word} (95% range {_range(c['gain_per_doubling_ci95'], f.points)})"
        head = f"{base}'s learning curve, train examples (quality): {sizes}; fitted {c['form']}"
        evidence = {f"{path}.gain_per_doubling": c["gain_per_doubling"], f"{path}.ceiling": c["ceiling"]}
        to_bar = c.get("to_bar")
        if to_bar is None or to_bar["reached_at"] is not None:
            reached = f"; it reaches the bar from {to_bar['reached_at']} examples (measured)" if to_bar else ""
            out.append((f"more data ({base}: {f.points(c['gain_per_doubling'])} per doubling)",
                        Sentence(f"{head}: {gain}{reached}.", evidence)))
        elif to_bar["n"] is None:
            out.append((f"more data will not reach the bar ({base}'s curve has flattened)",
                        Sentence(f"{head}: the curve has flattened at about {f.value(c['ceiling'])} (fitted ceiling, 95% range "
                                 f"{_range(c['ceiling_ci95'], f.value)}), short of the bar: more data of this kind will not reach it; {gain}.",
                                 evidence | {f"{path}.to_bar.n": None, f"{path}.ceiling_ci95": c["ceiling_ci95"]})))
        elif to_bar["extrapolation"] > MAX_EXTRAPOLATION:
            limit = MAX_EXTRAPOLATION * c["largest_n"]
            out.append((f"more data: not within {MAX_EXTRAPOLATION}x the measured sizes ({base})",
                        Sentence(f"{head}: the fit reaches the bar only beyond {MAX_EXTRAPOLATION}x the largest measured size "
                                 f"({limit:,} train examples; {to_bar['unreachable_share']:.0%} of bootstrap fits never reach it), further "
                                 f"than a curve measured up to {c['largest_n']} examples can say: more data of this kind is not a "
                                 f"near lever; {gain}.",
                                 evidence | {f"{path}.to_bar.extrapolation": to_bar["extrapolation"], f"{path}.largest_n": c["largest_n"]})))
        else:
            span = _range(to_bar["range95"], lambda v: f"{round(v):,}")
            out.append((f"more data (about {to_bar['n']:,} examples for {base})",
                        Sentence(f"{head}: about {to_bar['n']:,} train examples would reach the bar (95% range {span}; "
                                 f"{to_bar['unreachable_share']:.0%} of bootstrap fits never reach it), {to_bar['extrapolation']}x the largest "
                                 f"measured size ({c['largest_n']}), an extrapolation; {gain}.",
                                 evidence | {f"{path}.to_bar.n": to_bar["n"], f"{path}.to_bar.range95": to_bar["range95"]})))
    if not curves and any(f.families[t.strategy].changes_weights for t in ok):
        out.append(("more data: not measured", Sentence("Whether more labelled data would help is not measured: set data.train_sizes "
                                                        "(e.g. [0.25, 0.5, all]) for a learning curve.", {"task.spec.data.train_sizes": None})))
    return out


def _retrieval_lever(ok: list[TrialRecord], f: Facts) -> list[tuple[str, Sentence]]:
    measured = [t for t in ok if retrieval_recall(t) is not None and "retrieval_k" in t.metrics]
    if not measured:
        return []
    best = max(measured, key=lambda t: f.metric.signed(t.metrics[f.metric.name]))
    recall, k = retrieval_recall(best), best.metrics["retrieval_k"]
    evidence = {f"{best.name}.metrics.recall_at_k": recall, f"{best.name}.metrics.retrieval_k": k}
    wider = sorted({(t.metrics["retrieval_k"], retrieval_recall(t)) for t in measured if t.metrics["retrieval_k"] > k})
    more = "".join(f"; at k={k2} it reaches {r2:.2f}" for k2, r2 in wider)
    judgement = (f"fix retrieval before generation: for {1 - recall:.0%} of the questions the gold passage is not retrieved, and no "
                 "prompt can answer from a passage it never sees" if recall < RECALL_WORKS else "retrieval mostly finds the gold passage")
    return [(f"retrieval (recall@{k} {recall:.2f})",
             Sentence(f"Retrieval: {best.name} finds the gold passage for {recall:.0%} of the test questions (recall@{k} {recall:.2f}){more}: "
                      f"{judgement}.", evidence))]


def _budget_lever(pick: TrialRecord, f: Facts) -> list[tuple[str, Sentence]]:
    hits = (f.statistics.get("budget_hits") or {}).get(pick.name)
    if not hits or not hits["hits"]:
        return []
    share = hits["hits"] / hits["n"]
    return [(f"answer length ({share:.0%} of answers cut)",
             Sentence(f"{hits['hits']} of {hits['n']} answers of {pick.name} ({share:.0%}) stopped at the generation budget "
                      f"(max_new_tokens {hits['max_new_tokens']}): they may be cut off; a larger max_new_tokens may score higher.",
                      {f"statistics.budget_hits.{pick.name}": hits}))]


def _model_lever(f: Facts) -> list[tuple[str, Sentence]]:
    fits = f.statistics.get("largest_fitting")
    if not fits:
        return []
    found = [f"{fits['by_method'][m] or 'none of the table'} with {label}" for m, label in SCALE_METHODS.items()]
    return [(f"a bigger model (up to {fits['by_method']['qlora'] or 'none'} with QLoRA on {fits['gpu']})",
             Sentence(f"A bigger model: on the target GPU {fits['gpu']} the estimator fits up to {', '.join(found)} ({fits['setup']}); this "
                      f"run's model is {fits['run_model']}.", {"statistics.largest_fitting": fits}))]


def _model_of(r: TrialRecord) -> str | None:
    """The model a trial ran on in a `models:` run (settings.model.name); None with one local model."""
    return (r.settings.get("model") or {}).get("name")


def _model_gap_lever(ok: list[TrialRecord], f: Facts) -> list[tuple[str, Sentence]]:
    """With several models: each model's best finished trial against the best of them (with the paired CI where that
    trial is the run's reference for `vs_best`); a model none of whose trials finished is unknown."""
    models = list(dict.fromkeys(m for r in f.by_name.values() if (m := _model_of(r))))
    if len(models) < 2:
        return []
    name, score = f.metric.name, lambda t: f.metric.signed(t.metrics[f.metric.name])  # noqa: E731
    best = {m: max((t for t in ok if _model_of(t) == m), key=score, default=None) for m in models}
    unknown = [m for m in models if best[m] is None]
    evidence = {f"{r.name}.status": r.status for r in f.by_name.values() if _model_of(r) in unknown}
    if len(unknown) == len(models):
        return [("another model: unknown (no trial finished)", Sentence("No trial of any model finished: the quality gap between the "
                                                                         f"models ({', '.join(models)}) is unknown.", evidence))]
    top = max((t for t in best.values() if t), key=score)
    parts = [f"{_model_of(top)}'s best, {top.name}, scores highest ({name} {f.value(top.metrics[name])})"]
    evidence[f"{top.name}.metrics.{name}"] = top.metrics[name]
    gaps = []
    for m in models:
        t = best[m]
        if t is None or t is top:
            continue
        vs = t.comparisons.get("vs_best")
        paired = f", paired 95% CI {f.points(vs['delta_ci95'][0])} to {f.points(vs['delta_ci95'][1])}: {vs['verdict']}" \
            if vs and vs.get("other") == top.name else ""
        gap = t.metrics[name] - top.metrics[name]
        gaps.append(f"{m} {f.points(gap)}")
        parts.append(f"{m}'s best, {t.name}, {f.value(t.metrics[name])} ({f.points(gap)} {f.unit_word}{paired})")
        evidence[f"{t.name}.metrics.{name}"] = t.metrics[name]
        if paired:
            evidence[f"{t.name}.comparisons.vs_best.delta_ci95"] = vs["delta_ci95"]
    parts += [f"{m}: unknown, none of its trials finished" for m in unknown]
    label = f"another model ({_model_of(top)} best; {', '.join(gaps + [f'{m} unknown' for m in unknown])})"
    return [(label, Sentence(f"Another model: of the {len(models)} models compared, {'; '.join(parts)}.", evidence))]


def largest_fitting(spec) -> dict | None:
    """The largest model size of the estimator's table that trains on one target GPU, per method."""
    if spec.target is None:
        return None
    from advisor.estimate import Setup, estimate
    from advisor.shapes import KNOWN_SHAPES

    shapes = sorted({s.name: s for s in KNOWN_SHAPES.values()}.values(), key=lambda s: s.params)
    labels: dict[str, str] = {}
    for label, s in KNOWN_SHAPES.items():
        labels.setdefault(s.name, label)
    setup = Setup()
    by_method = {m: next((labels[s.name] for s in reversed(shapes) if estimate(s, spec.target.gpu, Setup(method=m), spec.target.gpus).fits), None)
                 for m in SCALE_METHODS}
    return {"gpu": spec.target.gpu, "by_method": by_method, "run_model": spec.model,
            "setup": f"batch {setup.batch} x {setup.seq_len} tokens, gradient checkpointing, LoRA rank {setup.rank}"}


def budget_hits(records: list[dict], spec, run_root: Path) -> dict[str, dict]:
    """{trial: {hits, n, max_new_tokens}}: answers that used the whole generation budget (qa, generation)."""
    from advisor.rundir import read_predictions

    if spec.task.type == "classification":
        return {}
    out = {}
    for r in records:
        chosen = (r.get("details") or {}).get("generation_budget") or r.get("settings") or {}  # baselines.budget's choice
        budget = chosen.get("max_new_tokens")
        if r.get("status") != "ok" or not budget or not (rows := read_predictions(run_root, r)):
            continue
        out[r["name"]] = {"hits": sum(row.get("output_tokens", 0) >= budget for row in rows.values()), "n": len(rows), "max_new_tokens": budget}
    return out


def feasibility_statistics(records: list[dict], spec, run_root: Path, n_train: int) -> dict:
    """The run-level figures the levers cite: learning curves, generation-budget hits, the largest fitting model."""
    from advisor.learning_curve import learning_curves

    return {"learning_curves": learning_curves(records, spec, run_root, n_train), "budget_hits": budget_hits(records, spec, run_root),
            "largest_fitting": largest_fitting(spec)}
