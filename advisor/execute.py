"""One trial -> one stored TrialRecord: prepare, predict, score, measure forgetting, save.

Failures are results: an exception (or out of memory) is stored as a failed record with its reason,
and the run goes on. This module knows nothing of processes or loops (advisor.run_loop does).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from advisor.matrix import trial_model
from advisor.rundir import RunDir
from contracts.io import write_jsonl
from contracts.records import Forgetting, Latency, Prediction, Resources, Splits, Trial, TrialRecord
from evaluators.meters import PeakMemory, WallClock, per_query_latency

if TYPE_CHECKING:
    from baselines.base import TrialRef
    from baselines.device import DeviceInfo
    from evaluators.forgetting import BaseModelRef

Progress = Callable[[int, int, str], None]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def execute_trial(trial: Trial, spec, splits: Splits, store: RunDir, progress: Progress | None = None,
                  isolation: str = "in-process", device: str = "auto") -> TrialRecord:
    """Prepare, predict, score and store one trial on `device` ('auto', 'cpu', 'cuda', 'cuda:N').
    Failures are results: they are stored too."""
    record = measure_trial(trial, spec, splits, store, progress, isolation, device)
    store.save_trial(record)
    return record


def measure_trial(trial: Trial, spec, splits: Splits, store: RunDir, progress: Progress | None = None,
                  isolation: str = "in-process", device: str = "auto") -> TrialRecord:
    """`execute_trial` without storing the record: the trial's own files go to its folder, the caller saves
    the record (a Ray worker returns it to the driver, which alone writes records)."""
    from advisor.budgeted import scored_on
    from baselines import Context, strategies
    from baselines.device import probe, resolve_device
    from evaluators import metrics
    from evaluators.statistics import score_all

    device = resolve_device(device)
    hardware = probe(device)
    record = TrialRecord(**TrialRecord.pending(trial).model_dump(exclude_unset=True, exclude={"status"}), status="ok", started_at=_now())
    find = trial_finder(store, spec, splits, hardware)
    work, splits = scored_on(trial, spec, splits, hardware)  # a budgeted run's rung: a test subset, in its full trial's folder
    settings, train = curve_point(trial, spec, splits)  # a learning-curve point trains on a nested subset of train
    model = trial_model(spec, settings, store.root)  # the trial's own model in a `models:` plan (local or endpoint)
    spec, settings = model.spec, model.settings
    ctx = Context(spec, train, store.trial_dir(work), progress or (lambda *a: None),
                  find_trial=model.find(find), model=model.lm, device=device)
    strategy = strategies.get(trial.family)(settings, ctx)
    try:  # the meter starts in the worker, before any model: on a GPU it reads torch's counters from here
        with PeakMemory(device) as memory, WallClock() as total:
            with WallClock() as prep:
                strategy.prepare()
            with WallClock() as pred:
                predictions = strategy.predict(splits.test)
            # an endpoint times each request itself; a local model is timed serving one query at a time
            timed = work is trial and not hasattr(model.lm, "latency_measured")  # a subset rung measures quality only
            served = per_query_latency(strategy.answer_one, splits.test, seed=spec.seed) if timed else None
    except Exception as exc:  # noqa: BLE001 - any failure of one trial is recorded, the run goes on
        oom = type(exc).__name__ in ("OutOfMemoryError", "MemoryError")
        (store.trial_dir(trial) / "error.txt").write_text(traceback.format_exc())
        return record.model_copy(update={"status": "oom" if oom else "failed", "error": f"{type(exc).__name__}: {exc}"})
    refs = [e.target for e in splits.test]
    outputs = [p.output for p in predictions]
    per_item = metrics.get(spec.headline_metric).per_item  # each answer's own score, for the report's per-example view
    write_jsonl(store.trial_dir(trial) / "predictions.jsonl",
                [{**p.to_json(), "input": e.input, "target": e.target, **({"score": per_item(p.output, e.target)} if per_item else {})}
                 for p, e in zip(predictions, splits.test)])
    record.metrics = {**score_all(metrics.for_task(spec.task.type), outputs, refs, seed=spec.seed),
                      **strategy.extra_metrics(splits.test, predictions)}
    record.n_test = len(refs)
    record.resources = Resources.model_validate({
        "wall_s": round(total.seconds, 2), "prepare_s": round(prep.seconds, 2), "predict_s": round(pred.seconds, 2),
        **_token_figures(predictions), **hardware.as_resources(), **memory.as_dict(),
        "memory_measured": f"{isolation}; RSS sampled every 20 ms from the trial's start"
                           + ("; GPU: torch's peak allocated and reserved since the trial's start" if "peak_cuda_mb" in memory.as_dict() else ""),
        **strategy.resources(), **model.resources()})
    record.details = model.details(strategy.details()) | ({"generation_budget": ctx.budget} if ctx.budget else {})
    record.latency = (_latency(predictions, served, getattr(model.lm, "latency_measured", "")) if work is trial
                      else Latency(measured="not measured: a budgeted run's subset rung measures quality only"))
    if spec.forgetting and spec.forgetting.benchmarks and train is splits and work is trial:  # curve points, rungs: quality only
        record.forgetting = _forgetting(spec, strategy, store, record.resources, device)
    record.finished_at = _now()
    return record


def curve_point(trial: Trial, spec, splits: Splits) -> tuple[dict[str, Any], Splits]:
    """(the family's own settings, the splits it learns from): a learning-curve point's train is its nested,
    stratified subset (classification), and its size is no setting of the family."""
    from advisor.data import train_subset
    from advisor.budgeted import TEST_SIZE
    from advisor.plan import TRAIN_SIZE

    settings = {k: v for k, v in trial.settings.items() if k not in (TRAIN_SIZE, TEST_SIZE)}
    return settings, train_subset(splits, trial.settings.get(TRAIN_SIZE), spec.seed, spec.task.type == "classification")


def trial_finder(store: RunDir, spec, splits: Splits, device: DeviceInfo) -> Callable[[str, str, dict[str, Any]], TrialRef]:
    """The handle strategies get on other trials of this plan (fine-tuning + RAG finds its training there)."""
    from advisor.plan import make_trial
    from baselines.base import TrialRef

    def find(family: str, name: str, settings: dict[str, Any]) -> TrialRef:
        trial = make_trial(spec, splits, family, name, settings, device)
        return TrialRef(trial.id, trial.hash, store.trial_dir(trial), store.finished(trial))

    return find


def _token_figures(predictions: list[Prediction]) -> dict:
    n = max(len(predictions), 1)
    answer_ms = sum(p.latency_ms for p in predictions)
    prompt = sum(p.prompt_tokens for p in predictions)
    # throughput of the answering itself (a prompting trial also scores its other templates)
    return {"examples_per_s": round(1000 * n / answer_ms, 2) if answer_ms else None, "prompt_tokens": prompt,
            "output_tokens": sum(p.output_tokens for p in predictions), "prompt_tokens_per_query": round(prompt / n, 1),
            "n_predictions": len(predictions)}


def _latency(predictions: list[Prediction], served: dict | None, endpoint_measured: str) -> Latency:
    """Per-query latency (p50_ms, p95_ms: what max_latency_ms and the rationale read) beside each answer's share of
    its batch's wall time (what the throughput, resources.examples_per_s, is made of)."""
    shares = sorted(p.latency_ms for p in predictions)
    if served is None:
        return Latency(p50_ms=_quantile(shares, 0.5), p95_ms=_quantile(shares, 0.95), measured=endpoint_measured)
    return Latency(p50_ms=served["p50_ms"], p95_ms=served["p95_ms"],
                   measured=f"batch 1: {served['n']} test queries answered one at a time after an untimed warm-up, the whole "
                            "path timed (for retrieval: query embedding and index search included)",
                   batch_share_p50_ms=_quantile(shares, 0.5), batch_share_p95_ms=_quantile(shares, 0.95),
                   batch_size=max((p.batch_size for p in predictions if p.batch_size), default=None),  # B (a last batch may be smaller)
                   batch_share_measured="each answer's share of its batch's wall time at the batch size used (throughput)")


def _quantile(values: list[float], q: float) -> float | None:
    return round(values[min(len(values) - 1, int(q * len(values)))], 2) if values else None


def base_model(spec, device: str) -> BaseModelRef:
    from baselines.models import fingerprint, load_model
    from evaluators.forgetting import BaseModelRef

    return BaseModelRef(fingerprint(spec.model), lambda: load_model(spec.model, device=device))


def _forgetting(spec, strategy, store: RunDir, resources: Resources, device: str) -> Forgetting:
    """Benchmarks on the adapted model, outside the trial's time and memory figures. The base model's scores
    are read from the run folder when a worker of their own stored them there (`advisor.run_loop`)."""
    from baselines.models import cache_dir
    from evaluators.forgetting import forgetting_record

    base = base_model(spec, device)
    with WallClock() as clock:
        try:
            found = strategy.forgetting_measured() or forgetting_record(spec, strategy.adapted_model(), store.root, cache_dir(), base)
        except Exception as exc:  # noqa: BLE001 - a benchmark failure must not lose the trial's own results
            found = {"applies": True, "error": f"{type(exc).__name__}: {exc}"}
    resources.forgetting_s = round(clock.seconds, 2)
    return Forgetting.model_validate(found)


def quiet_libraries() -> None:
    """Library progress bars would garble the runner's own; bitsandbytes' CPU backend logs a warning about
    an optional kernels package on every import, which is harmless (its own CPU kernels are used); peft
    calls a transformers method that transformers 5 marks deprecated."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
