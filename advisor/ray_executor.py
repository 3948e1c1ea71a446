"""Trials as Ray tasks: the GPUs of one box or the machines of a Ray cluster run them at once.

Each trial is one Ray task in a fresh worker process (max_calls=1), so its memory figures are its own and
trained weights never leak into another trial, as under LocalExecutor. It asks for one GPU when the run
is on CUDA, else one CPU: a box with 4 GPUs runs 4 trials at once. A worker writes only its trial's folder
(checkpoints, predictions) and returns the record; this driver alone writes records and results.json. The
trial folders are in the run folder, or with `--storage PATH` under PATH (`RunDir.artefacts`): that path
(and the task file with its data) must be at the same path on every node: nothing to do on one machine, a
shared filesystem on a cluster.

A worker or node lost mid-trial: Ray runs the task again (`max_retries`), and fine-tuning resumes from its
last epoch checkpoint in the trial folder; after the last try the trial is stored as failed with Ray's
reason and the run goes on. Ordering is kept by the driver, which submits a trial once what it builds on
is stored: a fine-tuning + RAG trial after its fine-tuned trial (`Strategy.needs`; it reads that trial's
stored record), weight-changing trials after the base model's forgetting scores.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from advisor.execute import measure_trial, quiet_libraries
from advisor.plan import make_trial
from advisor.rundir import RunDir
from advisor.run_loop import Interrupt, _base_worker
from advisor.task import check_task
from contracts.records import Splits, Trial, TrialRecord

FORWARDED_ENV = ("ADVISOR_CACHE_DIR", "ADVISOR_BENCHMARK_DATA", "ADVISOR_NO_PLUGINS", "HF_HOME", "HF_HUB_OFFLINE")
"""Settings of this shell that workers started by a local Ray must see too."""
BASE = "base model forgetting scores"


class _Messages:
    """A Ray actor (no CPU of its own) that holds the workers' progress lines until the driver takes them."""

    def __init__(self) -> None:
        self.lines: list[tuple] = []

    def put(self, line: tuple) -> None:
        self.lines.append(line)

    def take(self) -> list[tuple]:
        lines, self.lines = self.lines, []
        return lines


def _trial_task(trial: Trial, spec_path: str, out: str, device: str, messages) -> tuple[TrialRecord, float, float]:
    """In a Ray worker: one trial -> (its record, unsaved; start and end times) for the driver."""
    import ray

    began = time.time()
    quiet_libraries()
    node = ray.get_runtime_context().get_node_id()
    where = f"{next(n['NodeManagerAddress'] for n in ray.nodes() if n['NodeID'] == node)} (node {node[:8]})"
    messages.put.remote((trial.id, where, 0, 0, "loading the task"))
    spec, splits, _ = check_task(spec_path)
    record = measure_trial(trial, spec, splits, RunDir(Path(out)), isolation=f"own Ray worker process on {where}", device=device,
                           progress=lambda done, total, what: messages.put.remote((trial.id, where, done, total, what)))
    return record, began, time.time()


class _OneTrial:
    """The board for `RayExecutor.run`: one trial's progress, and its record once stored."""

    def __init__(self, on_progress) -> None:
        self.on_progress, self.record = on_progress, None

    def started(self, trial: Trial):
        return self.on_progress

    def finished(self, trial: Trial, record: TrialRecord) -> None:
        self.record = record


class RayExecutor:
    """Trials at once on a Ray cluster: `address` None starts a local Ray (all of this machine's CPUs and GPUs,
    or `num_cpus`), 'auto' joins the cluster running here, 'HOST:PORT' joins that one. A Ray already
    initialised in this process (ray.init) is used as it is. `storage`: where the trials' own files go (a folder every
    node reads and writes at this same path; None: the run folder)."""

    def __init__(self, address: str | None = None, device: str = "auto", max_retries: int = 2, num_cpus: int | None = None,
                 storage: Path | None = None):
        from baselines.device import resolve_device

        self.address, self.max_retries, self.num_cpus, self.storage = address, max_retries, num_cpus, storage
        self.device = resolve_device(device)
        self.nodes: dict[str, str] = {}
        """trial id -> where it ran (node address and id), as its worker reported."""
        self.timings: dict[str, dict[str, float]] = {}
        """trial id -> submitted, started, ended, received (time.time()): Ray's overhead per trial."""

    def _connect(self) -> bool:
        """Joins or starts Ray; True when this call started the connection (and must shut it down)."""
        import ray

        if ray.is_initialized():
            return False
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        ray.init(address=self.address or "local", num_cpus=self.num_cpus if self.address is None else None,
                 include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env} if env else None)
        return True

    def _options(self, name: str) -> dict:
        """Resources from the trial's device: a whole GPU (Ray sets CUDA_VISIBLE_DEVICES) or one CPU."""
        from baselines.device import device_type

        gpu = device_type(self.device) == "cuda"
        return {"name": name, "num_cpus": 1, "num_gpus": 1 if gpu else 0, "max_retries": self.max_retries, "retry_exceptions": False}

    def run(self, trial: Trial, spec, splits: Splits, store: RunDir, on_progress, interrupt: Interrupt) -> TrialRecord:
        board = _OneTrial(on_progress)
        self.run_many([trial], spec, splits, store, board, interrupt)
        return board.record

    def run_many(self, trials: list[Trial], spec, splits: Splits, store: RunDir, board, interrupt: Interrupt) -> None:
        """Submit every trial whose prerequisites are stored, store each record as it comes back, until all are;
        on KeyboardInterrupt cancel what runs (finished records are already stored) and re-raise."""
        import ray

        owns = self._connect()
        messages = ray.remote(num_cpus=0)(_Messages).remote()
        task = ray.remote(max_calls=1)(_trial_task)  # a fresh worker process per trial
        waits, running, progress, done = self._prerequisites(trials, spec, splits), {}, {}, set()
        todo = list(trials)
        if any(BASE in w for w in waits.values()):
            running[ray.remote(max_calls=1)(_base_worker).options(**self._options("advisor base scores")).remote(
                str(Path(spec.source).resolve()), str(store.artefacts.resolve()), self._worker_device())] = None
        try:
            while todo or running:
                interrupt.check()
                for trial in [t for t in todo if waits[t.id] <= done]:
                    todo.remove(trial)
                    progress[trial.id] = board.started(trial)
                    running[self._submit(task, trial, spec, store, messages)] = trial
                ready, _ = ray.wait(list(running), num_returns=len(running), timeout=0.2) if running else ([], [])
                for trial_id, where, n, total, what in ray.get(messages.take.remote()):
                    self.nodes[trial_id] = where
                    progress[trial_id](n, total, f"{where}: {what}")
                for ref in ready:
                    trial = running.pop(ref)
                    if trial is None:
                        done.add(BASE)  # a failure shows in each trial's forgetting record, which tries again
                        continue
                    record = self._collect(ref, trial)
                    store.save_trial(record)
                    board.finished(trial, record)
                    done.add(trial.id)
        except BaseException:
            for ref in running:
                ray.cancel(ref, force=True)
            raise
        finally:
            ray.kill(messages)
            if owns:
                ray.shutdown()

    def _worker_device(self) -> str:
        from baselines.device import device_type

        return device_type(self.device)  # the GPU Ray gave the worker is its cuda:0

    def _submit(self, task, trial: Trial, spec, store: RunDir, messages):
        self.timings[trial.id] = {"submitted": time.time()}
        return task.options(**self._options(f"advisor trial {trial.name}")).remote(
            trial, str(Path(spec.source).resolve()), str(store.artefacts.resolve()), self._worker_device(), messages)

    def _collect(self, ref, trial: Trial) -> TrialRecord:
        """The worker's record, or a failed one with Ray's reason (a worker or node lost after the last retry)."""
        import ray
        from ray.exceptions import OutOfMemoryError, RayError, RayTaskError

        try:
            record, began, ended = ray.get(ref)
        except RayError as exc:
            cause = exc.cause if isinstance(exc, RayTaskError) else exc
            lines = [line for line in str(cause).splitlines() if line.strip()]
            why = f"{type(cause).__name__}: {lines[0] if lines else ''}"
            if not isinstance(exc, RayTaskError):
                why = f"Ray gave up after {self.max_retries + 1} attempt(s): {why}"
            status = "oom" if isinstance(exc, OutOfMemoryError) else "failed"
            return TrialRecord.pending(trial).model_copy(update={"status": status, "error": why})
        self.timings[trial.id].update(started=began, ended=ended, received=time.time())
        return record

    def _prerequisites(self, trials: list[Trial], spec, splits: Splits) -> dict[str, set[str]]:
        """Per trial, what must be stored before it starts: the trials of this batch it builds on, and the base
        model's forgetting scores when it changes weights and forgetting is measured."""
        from baselines import strategies
        from baselines.device import probe

        hardware = probe(self.device)
        ids = {t.id for t in trials}
        forgetting = bool(spec.forgetting and spec.forgetting.benchmarks)
        waits = {}
        for trial in trials:
            cls = strategies.get(trial.family)
            needed = {make_trial(spec, splits, *need, hardware).id for need in cls.needs(trial.settings)}
            waits[trial.id] = (needed & ids) | ({BASE} if forgetting and cls.changes_weights else set())
        return waits
