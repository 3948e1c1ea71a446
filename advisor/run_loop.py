"""Run a plan: trials through an executor, each stored the moment it finishes, reused on re-run.

Why a worker process per trial (LocalExecutor's default): a trial's peak memory must be its own
(ru_maxrss only ever grows in a long-lived process), an out-of-memory kill must cost one trial rather
than the whole run, and fine-tuned weights must not leak into the next trial. Loading the cached
model takes under a second, so isolation is cheap. `isolate=False` runs trials in this process
(tests, debugging); memory is then measured relative to the trial's start.

Other executors (e.g. Ray) implement `Executor.run`: one trial in, its stored TrialRecord out.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from rich.console import Console

from advisor.budgeted import Budget, run_budgeted
from advisor.execute import Progress as OnProgress
from advisor.execute import execute_trial, quiet_libraries
from advisor.learning_curve import forecast
from advisor.parent_death import die_with_parent
from advisor.forecast import Throughput, forecast_lines, run_forecast
from advisor.prechecks import validation_pass
from advisor.progress import display
from advisor.results_writer import header, write_results
from advisor.reuse import default_out, lacks_forgetting, reusable
from advisor.rundir import RunDir
from advisor.task import check_task
from contracts.io import read_json, write_json
from contracts.records import Forecast, Splits, Trial, TrialRecord

class Interrupt:
    """Ctrl-C for one run: remembered, then raised. The flag makes sure a KeyboardInterrupt that lands
    inside a finalizer or a library callback (where Python only prints it) still stops the run."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def handler(self, signum, frame) -> None:
        self._event.set()
        raise KeyboardInterrupt

    def check(self) -> None:
        if self._event.is_set():
            raise KeyboardInterrupt


class Executor(Protocol):
    def run(self, trial: Trial, spec, splits: Splits, store: RunDir, on_progress: OnProgress, interrupt: Interrupt) -> TrialRecord:
        """Run one trial to its stored record (ok or failed); raise KeyboardInterrupt when interrupted.
        Executors that run trials at once add `run_many` (see _Run.run_all, advisor.ray_executor)."""


def _start(proc) -> None:
    """Start a worker with SIGINT blocked, so that a Ctrl-C reaching the process group while the worker starts
    stays pending there; the worker then ignores it (`_in_worker`)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        proc.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _in_worker() -> None:
    """First thing in a worker: the parent alone handles Ctrl-C (it terminates the worker; an interrupted trial is
    not stored), so a worker never prints a KeyboardInterrupt traceback of its own; and the worker dies with its
    parent (a compare killed by SIGTERM or SIGKILL leaves no trial running on: advisor.parent_death)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    die_with_parent()


def _worker(trial: Trial, spec_path: str, out: str, messages, device: str) -> None:
    """Entry point of a trial's worker process; reports progress through `messages`."""
    _in_worker()
    quiet_libraries()
    spec, splits, _ = check_task(spec_path)
    execute_trial(trial, spec, splits, RunDir(Path(out)), progress=lambda done, total, what: messages.put((done, total, what)),
                  isolation="own worker process", device=device)


def _base_worker(spec_path: str, out: str, device: str) -> None:
    """Scores the base model on the forgetting benchmarks into the run folder, in a process of its own, so a
    trial's worker reads them there instead of loading a second model beside the one it trained."""
    from advisor.execute import base_model
    from baselines.models import cache_dir
    from evaluators.forgetting import base_scores

    _in_worker()
    quiet_libraries()
    spec, _, _ = check_task(spec_path)
    base_scores(spec, Path(out), cache_dir(), base_model(spec, device))


def _wait(proc, interrupt: Interrupt) -> None:
    try:
        while proc.is_alive():
            interrupt.check()
            proc.join(0.2)
    except BaseException:
        proc.terminate()
        proc.join(5)
        raise


class LocalExecutor:
    """Trials one after another on this machine, each in its own worker process (or in this one), on `device`."""

    def __init__(self, isolate: bool = True, device: str = "auto"):
        from baselines.device import resolve_device

        self.isolate = isolate
        self.device = resolve_device(device)
        self._base_scored: set[Path] = set()

    def _score_base(self, trial: Trial, spec, store: RunDir, interrupt: Interrupt) -> None:
        """Once per run folder, before the first trial that changes weights: the base model's forgetting scores."""
        from baselines import strategies

        if (not (spec.forgetting and spec.forgetting.benchmarks) or not strategies.get(trial.family).changes_weights
                or store.root in self._base_scored):
            return
        proc = mp.get_context("spawn").Process(target=_base_worker, args=(str(spec.source), str(store.root), self.device), daemon=True)
        _start(proc)
        _wait(proc, interrupt)
        self._base_scored.add(store.root)  # a failure shows in the trial's forgetting record, which tries again

    def run(self, trial: Trial, spec, splits: Splits, store: RunDir, on_progress: OnProgress, interrupt: Interrupt) -> TrialRecord:
        if not self.isolate:
            return execute_trial(trial, spec, splits, store, on_progress, device=self.device)
        self._score_base(trial, spec, store, interrupt)
        ctx = mp.get_context("spawn")
        messages = ctx.Queue()
        proc = ctx.Process(target=_worker, args=(trial, str(spec.source), str(store.root), messages, self.device), daemon=True)
        _start(proc)
        try:
            while proc.is_alive() or not messages.empty():
                interrupt.check()
                try:
                    on_progress(*messages.get(timeout=0.2))
                except queue_mod.Empty:
                    pass
            proc.join()
        except BaseException:
            proc.terminate()
            proc.join(5)
            raise
        stored = read_json(store.trial_path(trial))
        if stored is not None and stored.get("hash") == trial.hash:
            return TrialRecord.model_validate(stored)
        code = proc.exitcode
        reason = f"killed by signal {-code} (9 usually means out of memory)" if code and code < 0 else f"exit code {code}"
        record = TrialRecord.pending(trial).model_copy(update={"status": "oom" if code == -9 else "failed",
                                                               "error": f"worker process died: {reason}"})
        store.save_trial(record)
        return record


def _device_line(device) -> str:
    from baselines.device import ADAMW, PAGED_ADAMW_8BIT

    if device.type != "cuda":
        return f"device: {device.device}, fp32, {ADAMW}, answering batches of 8"
    gpu = device.name or "a GPU not visible here (planned as one with native bf16)"
    return (f"device: {device.device}, {gpu}, {device.precision}; {ADAMW} ({PAGED_ADAMW_8BIT} for 4-bit models); "
            "answering batches sized to the free GPU memory (up to 64)")


def dry_run(path, out: Path | None = None, device: str = "auto") -> list[str]:
    """The plan for `device` as lines of text (warnings, the device, then one line per trial); runs and
    writes nothing. A GPU this machine lacks can be planned for (`--device cuda`)."""
    from baselines.device import planned, resolve_device

    hardware = planned(resolve_device(device))
    spec, splits, trials, warnings = validation_pass(path, hardware)
    store = RunDir(Path(out)) if out else None
    lines = [str(w) for w in warnings] + [_device_line(hardware)]
    for t in trials:
        record = store.finished(t) if store else None
        state = ("stored, will be reused" if not lacks_forgetting(record, spec) else "stored, runs again for forgetting") if record else "to run"
        sized = (f"  (train batch {t.settings['batch_size']}, gradient checkpointing {'on' if t.settings['gradient_checkpointing'] else 'off'})"
                 if "gradient_checkpointing" in t.settings else "")
        lines.append(f"{t.name:32} {t.family:12} {t.hash[:12]}  {state}{sized}")
    return (lines + forecast(trials, splits, spec) + forecast_lines(trials, splits, spec, device=hardware.device)
            + [f"{len(trials)} trial(s); nothing was run (--dry-run)"])


class _Run:
    """One compare: the plan, its store and header, the executor, and what to do after each write."""

    def __init__(self, spec, splits: Splits, trials: list[Trial], store: RunDir, head: dict, executor: Executor,
                 console: Console, on_results: Callable[[Path], None], device: str):
        self.spec, self.splits, self.trials, self.store, self.head = spec, splits, trials, store, head
        self.executor, self.console, self.on_results, self.device = executor, console, on_results, device
        self.interrupt = Interrupt()
        self.forecasts: dict[str, Forecast] = {}
        self.throughput: Throughput | None = None

    def write(self, complete: bool) -> None:
        write_results(self.store, self.spec, self.trials, self.head, complete=complete)
        self.on_results(self.store.root)

    def started(self, trial: Trial) -> OnProgress:
        """A trial starts running; returns its progress callback."""
        return self.display.started(trial)

    def finished(self, trial: Trial, record: TrialRecord) -> None:
        """A trial's record is stored: the forecast made for it joins the record, then its line and results.json."""
        if (forecast := self.forecasts.get(trial.id)) is not None:
            record = record.model_copy(update={"forecast": forecast})
            self.store.save_trial(record)
        self.display.finished(trial, record)
        self.write(complete=False)

    def make_forecasts(self, todo: list[Trial]) -> None:
        """When something is left to run: the forecast per trial (measuring the throughput takes 2-4 s, once per run)."""
        if not todo:
            return
        try:
            lines, forecasts, self.throughput = run_forecast(todo, self.splits, self.spec, self.device, self.throughput)
        except Exception as exc:  # noqa: BLE001 - the forecast only informs (the ETA, the report's table); the trials still run
            lines, forecasts = [f"forecast: not made ({type(exc).__name__}: {exc}); the progress lines give no ETA"], {}
        self.forecasts |= forecasts
        for line in lines:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def run_all(self, fresh: bool, trials: list[Trial] | None = None) -> None:
        """Reuse what is stored, forecast the rest, then run it: one after another, or all at once by
        `executor.run_many(trials, spec, splits, store, board=self, interrupt)`, which stores each record and calls
        started/finished. `trials`: those to run now (default: the plan; a budgeted run passes one rung at a time)."""
        trials, todo, reused = self.trials if trials is None else trials, [], []
        for trial in trials:
            self.interrupt.check()
            if not fresh and (stored := reusable(trial, self.store, self.spec)):
                reused.append((trial, stored["status"]))
            else:
                todo.append(self.store.cleared(trial) if fresh else trial)
        self.make_forecasts(todo)
        with display(self.console, trials, todo, {k: f.seconds for k, f in self.forecasts.items()}) as self.display:
            for trial, status in reused:
                self.display.reused(trial, status)
            if hasattr(self.executor, "run_many"):
                return self.executor.run_many(todo, self.spec, self.splits, self.store, self, self.interrupt)
            for trial in todo:
                self.finished(trial, self.executor.run(trial, self.spec, self.splits, self.store, self.started(trial), self.interrupt))


def compare(path, out: Path | None = None, isolate: bool = True, fresh: bool = False, console: Console | None = None,
            executor: Executor | None = None, on_results: Callable[[Path], None] = lambda root: None, device: str = "auto",
            budget: Budget | None = None) -> Path:
    """Run every trial of a task (resuming what is stored) on `device` ('auto', 'cpu', 'cuda', 'cuda:N') and
    write results.json; `on_results(run folder)` is called after each write (the CLI renders the reports there).
    With a `budget`, trials run on growing subsets of the test set and the clearly worse stop (advisor.budgeted)."""
    from advisor.model_checks import model_checks
    from baselines.device import probe, resolve_device
    from baselines.models import resolve

    console = console or Console(stderr=True)
    quiet_libraries()
    device = resolve_device(device)
    # the checks `advisor validate` makes, on the device this run uses (a GPU torch cannot see is an error here)
    spec, splits, trials, warnings = validation_pass(path, probe(device))
    store = RunDir(Path(out) if out else default_out(spec, resume=not fresh), getattr(executor, "storage", None))  # Ray: --storage
    store.lock()
    model_path = resolve(spec.model)  # convert the embedded model once, before any trial is timed
    warnings = warnings + model_checks(spec, splits, model_path)
    head = header(spec, splits, warnings)
    write_json(store.root / "plan.json", [{"id": t.id, "name": t.name, "strategy": t.family, "hash": t.hash} for t in trials])
    write_json(store.root / "env.json", head["environment"])
    for w in warnings:
        console.print(str(w), markup=False, soft_wrap=True)
    console.print(f"advisor: {len(trials)} trial(s) for [bold]{spec.name}[/] -> {store.root}")
    run = _Run(spec, splits, trials, store, head, executor or LocalExecutor(isolate, device), console, on_results, device)
    run.write(complete=False)  # exists (valid) from the start
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, run.interrupt.handler) if in_main else None
    try:
        run_budgeted(run, fresh, budget) if budget else run.run_all(fresh)
    except KeyboardInterrupt:
        run.write(complete=False)
        console.print(f"[red]interrupted[/]: finished trials are kept in {store.root}; run the same command to resume")
        raise
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
    run.write(complete=True)
    return store.root
