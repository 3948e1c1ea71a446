"""Run a plan: each trial in its own worker process, stored the moment it finishes, reused on re-run.

Why a worker process per trial: a trial's peak memory must be its own (ru_maxrss only ever grows in
a long-lived process), an out-of-memory kill must cost one trial rather than the whole run, and
fine-tuned weights must not leak into the next trial. Loading the cached model takes under a second,
so isolation is cheap. `isolate=False` runs trials in this process (tests, debugging); memory is
then measured relative to the trial's start.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import queue as queue_mod
import shutil
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from advisor.data import Splits
from advisor.env import environment
from advisor.plan import make_plan
from advisor.results import SCHEMA_VERSION, Trial
from advisor.rundir import RunDir, read_json, write_json, write_jsonl
from advisor.task import check_task, corpus_warnings
from evaluators.meters import PeakMemory, WallClock

RUNS_ROOT = Path("runs")


def execute_trial(trial: Trial, spec, splits: Splits, store: RunDir, progress=None, isolation: str = "in-process") -> dict:
    """Prepare, predict, score and store one trial. Failures are results: they are stored too."""
    from baselines import Context, strategies
    from baselines.models import pick_device
    from evaluators import metrics
    from evaluators.statistics import score_all

    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record = {"schema_version": SCHEMA_VERSION, "id": trial.id, "name": trial.name, "strategy": trial.family,
              "settings": trial.settings, "hash": trial.hash, "started_at": started}
    ctx = Context(spec, splits, store.trial_dir(trial), progress or (lambda *a: None))
    strategy = strategies.get(trial.family)(trial.settings, ctx)
    try:
        with PeakMemory() as memory, WallClock() as total:
            with WallClock() as prep:
                strategy.prepare()
            with WallClock() as pred:
                predictions = strategy.predict(splits.test)
    except Exception as exc:  # noqa: BLE001 - any failure of one trial is recorded, the run goes on
        oom = type(exc).__name__ in ("OutOfMemoryError", "MemoryError")
        (ctx.trial_dir / "error.txt").write_text(traceback.format_exc())
        record.update(status="oom" if oom else "failed", error=f"{type(exc).__name__}: {exc}")
        store.save_trial(record)
        return record
    refs = [e.target for e in splits.test]
    outputs = [p.output for p in predictions]
    names = metrics.for_task(spec.task.type)
    write_jsonl(ctx.trial_dir / "predictions.jsonl",
                [{**p.to_json(), "input": e.input, "target": e.target} for p, e in zip(predictions, splits.test)])
    n = max(len(predictions), 1)
    latencies = sorted(p.latency_ms for p in predictions)
    record.update(
        status="ok",
        metrics={**score_all(names, outputs, refs, seed=spec.seed), **strategy.extra_metrics(splits.test, predictions)},
        n_test=len(refs),
        resources={
            "wall_s": round(total.seconds, 2),
            "prepare_s": round(prep.seconds, 2),
            "predict_s": round(pred.seconds, 2),
            # throughput of the answering itself (a prompting trial also scores its other templates)
            "examples_per_s": round(1000 * n / answer_ms, 2) if (answer_ms := sum(p.latency_ms for p in predictions)) else None,
            "prompt_tokens": sum(p.prompt_tokens for p in predictions),
            "output_tokens": sum(p.output_tokens for p in predictions),
            "prompt_tokens_per_query": round(sum(p.prompt_tokens for p in predictions) / n, 1),
            "n_predictions": len(predictions),
            "device": pick_device(),
            **memory.as_dict(),
            "memory_measured": f"{isolation}; RSS sampled every 20 ms from the trial's start",
            **strategy.resources(),
        },
        details=strategy.details(),
        latency={"p50_ms": _quantile(latencies, 0.5), "p95_ms": _quantile(latencies, 0.95),
                 "measured": "per-query share of batched wall time"},
    )
    if spec.forgetting and spec.forgetting.benchmarks:
        record["forgetting"] = _forgetting(spec, strategy, store, record["resources"])
    record["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    store.save_trial(record)
    return record


def _quantile(values: list[float], q: float) -> float | None:
    return round(values[min(len(values) - 1, int(q * len(values)))], 2) if values else None


def _forgetting(spec, strategy, store: RunDir, resources: dict) -> dict:
    """Benchmarks on the adapted model, outside the trial's time and memory figures."""
    from baselines.models import cache_dir
    from evaluators.forgetting import forgetting_record

    with WallClock() as clock:
        try:
            record = strategy.forgetting_measured() or forgetting_record(spec, strategy.adapted_model(), store.root, cache_dir())
        except Exception as exc:  # noqa: BLE001 - a benchmark failure must not lose the trial's own results
            record = {"applies": True, "error": f"{type(exc).__name__}: {exc}"}
    resources["forgetting_s"] = round(clock.seconds, 2)
    return record


def _quiet_libraries() -> None:
    """Library progress bars would garble the runner's own; bitsandbytes' CPU backend logs a warning about
    an optional kernels package on every import, which is harmless (its own CPU kernels are used); peft
    calls a transformers method that transformers 5 marks deprecated."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)


def _worker(trial: Trial, spec_path: str, out: str, messages) -> None:
    """Entry point of a trial's worker process; reports progress through `messages`."""
    _quiet_libraries()
    try:
        spec, splits, _ = check_task(spec_path)
        execute_trial(trial, spec, splits, RunDir(Path(out)),
                      progress=lambda done, total, what: messages.put((done, total, what)), isolation="own worker process")
    except KeyboardInterrupt:
        pass  # the parent handles Ctrl-C; an interrupted trial is simply not stored


_interrupted = threading.Event()


def _on_sigint(signum, frame) -> None:
    """Ctrl-C: remember it, then interrupt. The flag makes sure a KeyboardInterrupt that lands inside
    a finalizer or a library callback (where Python only prints it) still stops the run."""
    _interrupted.set()
    raise KeyboardInterrupt


def _raise_if_interrupted() -> None:
    if _interrupted.is_set():
        raise KeyboardInterrupt


def _run_isolated(trial: Trial, spec, store: RunDir, on_progress) -> dict:
    ctx = mp.get_context("spawn")
    messages = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(trial, str(spec.source), str(store.root), messages), daemon=True)
    proc.start()
    try:
        while proc.is_alive() or not messages.empty():
            _raise_if_interrupted()
            try:
                on_progress(*messages.get(timeout=0.2))
            except queue_mod.Empty:
                pass
        proc.join()
    except BaseException:
        proc.terminate()
        proc.join(5)
        raise
    record = read_json(store.trial_path(trial))
    if record is None or record.get("hash") != trial.hash:
        code = proc.exitcode
        reason = f"killed by signal {-code} (9 usually means out of memory)" if code and code < 0 else f"exit code {code}"
        record = {"schema_version": SCHEMA_VERSION, "id": trial.id, "name": trial.name, "strategy": trial.family,
                  "settings": trial.settings, "hash": trial.hash, "status": "oom" if code == -9 else "failed",
                  "error": f"worker process died: {reason}"}
        store.save_trial(record)
    return record


def _lacks_forgetting(record: dict, spec) -> bool:
    """A stored trial that changed weights but was scored on other benchmarks (or none) than the spec asks
    for now: it must run again (its training reloads from its checkpoint) so forgetting is measured."""
    from baselines import changes_weights
    from evaluators.forgetting import covers

    if not (spec.forgetting and spec.forgetting.benchmarks and changes_weights(record["strategy"])):
        return False
    return (record.get("forgetting") or {}).get("applies") is not False and not covers(record.get("forgetting"), spec)


def _reusable(trial: Trial, store: RunDir, spec) -> dict | None:
    """A finished record of this exact trial, here or in an earlier run of the same task, measured on
    the forgetting benchmarks the spec asks for."""
    if (record := store.finished(trial)) and not _lacks_forgetting(record, spec):
        return record
    for other in sorted(store.root.parent.glob(f"{spec.name}-*"), reverse=True):
        if other == store.root or not (record := RunDir(other).finished(trial)) or _lacks_forgetting(record, spec):
            continue
        shutil.copytree(other / "trials" / trial.id, store.trial_dir(trial), dirs_exist_ok=True)
        record = {**record, "reused_from": str(other)}
        store.save_trial(record)
        return record
    return None


def default_out(spec, resume: bool = True) -> Path:
    """The newest unfinished run of this task (to resume it), else a new timestamped folder."""
    runs = sorted(RUNS_ROOT.glob(f"{spec.name}-*"), reverse=True)
    if resume and runs and (results := read_json(runs[0] / "results.json")) is not None and not results.get("complete"):
        return runs[0]
    return RUNS_ROOT / f"{spec.name}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"


def header(spec, splits: Splits, warnings) -> dict:
    """The run-level part of results.json: what was asked, on which data, on what machine."""
    return {
        "task": {"name": spec.name, "type": spec.task.type, "model": spec.model, "metric": spec.headline_metric,
                 "source": str(spec.source), "seed": spec.seed, "labels": splits.labels, "n_train": len(splits.train),
                 "data_fingerprints": splits.fingerprints, "spec": spec.model_dump(mode="json")},
        "warnings": [str(w) for w in warnings],
        "environment": environment(),
    }


def _tokens_per_example(records: list[dict]) -> float | None:
    """Prompt + answer tokens of one training example, as seen by the zero-shot trial."""
    zero = next((r for r in records if r.get("name") == "zero-shot" and r.get("status") == "ok"), None)
    if zero is None:
        return None
    res = zero["resources"]
    return res["prompt_tokens_per_query"] + res["output_tokens"] / max(res.get("n_predictions", 1), 1)


def write_results(store: RunDir, spec, trials: list[Trial], head: dict, complete: bool) -> dict:
    from advisor.aggregate import annotate, target_scale
    from advisor.recommend import recommend

    by_id = {r["id"]: r for r in store.records()}
    records = [by_id.get(t.id) or {"id": t.id, "name": t.name, "strategy": t.family, "settings": t.settings,
                                   "hash": t.hash, "status": "pending"} for t in trials]
    statistics = annotate(records, spec, store.root)
    results = {
        "schema_version": SCHEMA_VERSION,
        "complete": complete,
        **head,
        "statistics": statistics,
        "target_scale": target_scale(spec, head["task"]["n_train"], _tokens_per_example(records)),
        "trials": records,
        "recommendation": recommend(records, spec, statistics).as_dict() if complete else None,
    }
    write_json(store.root / "results.json", results)
    from reports import render_report

    render_report(store.root)
    return results


def model_checks(spec, splits: Splits, model_path: str) -> list:
    """Leakage by embedding and over-long inputs; a failing check is a warning, never a stop."""
    from advisor.model_checks import near_duplicates, too_long
    from advisor.yaml_errors import Problem

    found = []
    for check in (lambda: near_duplicates(spec, splits), lambda: too_long(spec, splits, model_path)):
        try:
            found += check()
        except Exception as exc:  # noqa: BLE001
            found.append(Problem(str(spec.source), None, "data", f"check skipped: {type(exc).__name__}: {exc}", "warning"))
    return found


def dry_run(path, out: Path | None = None) -> list[str]:
    """The plan as lines of text (warnings, then one line per trial); runs and writes nothing."""
    spec, splits, warnings = check_task(path)
    warnings += corpus_warnings(spec)
    trials = make_plan(spec, splits)
    store = RunDir(Path(out)) if out else None
    lines = [str(w) for w in warnings]
    for t in trials:
        record = store.finished(t) if store else None
        state = ("stored, will be reused" if not _lacks_forgetting(record, spec) else "stored, runs again for forgetting") if record else "to run"
        lines.append(f"{t.name:32} {t.family:12} {t.hash[:12]}  {state}")
    return lines + [f"{len(trials)} trial(s); nothing was run (--dry-run)"]


def _run_trials(trials: list[Trial], spec, splits: Splits, store: RunDir, isolate: bool, fresh: bool, console, head: dict) -> None:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bars:
        overall = bars.add_task("trials", total=len(trials))
        for trial in trials:
            _raise_if_interrupted()
            if not fresh and (record := _reusable(trial, store, spec)):
                console.print(f"  reused {trial.name} ({record['status']})")
                bars.advance(overall)
                continue
            inner = bars.add_task(f"  {trial.name}", total=None)

            def on_progress(done: int, total: int, what: str, inner=inner, name=trial.name) -> None:
                bars.update(inner, completed=done, total=total, description=f"  {name}: {what}")

            started = time.perf_counter()
            if isolate:
                record = _run_isolated(trial, spec, store, on_progress)
            else:
                record = execute_trial(trial, spec, splits, store, on_progress)
            bars.remove_task(inner)
            bars.advance(overall)
            status = "[green]ok[/]" if record["status"] == "ok" else f"[red]{record['status']}[/]: {record.get('error')}"
            console.print(f"  {trial.name}: {status} ({time.perf_counter() - started:.0f} s)")
            write_results(store, spec, trials, head, complete=False)


def compare(path, out: Path | None = None, isolate: bool = True, fresh: bool = False, console: Console | None = None) -> Path:
    """Run every trial of a task (resuming what is stored) and write results.json and the reports."""
    console = console or Console(stderr=True)
    _quiet_libraries()
    spec, splits, warnings = check_task(path)
    warnings += corpus_warnings(spec)
    trials = make_plan(spec, splits)
    store = RunDir(Path(out) if out else default_out(spec, resume=not fresh))
    store.lock()
    from baselines.models import resolve

    model_path = resolve(spec.model)  # convert the embedded model once, before any trial is timed
    warnings = warnings + model_checks(spec, splits, model_path)
    head = header(spec, splits, warnings)
    write_json(store.root / "plan.json", [{"id": t.id, "name": t.name, "strategy": t.family, "hash": t.hash} for t in trials])
    write_json(store.root / "env.json", head["environment"])
    for w in warnings:
        console.print(str(w), markup=False, soft_wrap=True)
    console.print(f"advisor: {len(trials)} trial(s) for [bold]{spec.name}[/] -> {store.root}")
    write_results(store, spec, trials, head, complete=False)  # exists (valid) from the start
    _interrupted.clear()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _on_sigint) if in_main else None
    try:
        _run_trials(trials, spec, splits, store, isolate, fresh, console, head)
    except KeyboardInterrupt:
        write_results(store, spec, trials, head, complete=False)
        console.print(f"[red]interrupted[/]: finished trials are kept in {store.root}; run the same command to resume")
        raise
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
    write_results(store, spec, trials, head, complete=True)
    return store.root
