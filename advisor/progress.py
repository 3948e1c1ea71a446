"""What a running compare shows: live bars on a terminal, plain lines anywhere else.

On a terminal rich draws a bar per running trial and one for the run (`Bars`). Where stderr is not a
terminal (CI, nohup, a Ray driver's log) rich draws nothing, so `LogLines` prints plain lines instead:
one when a trial starts, one per phase of it, its result, and every `interval` seconds (a minute unless
stated) the trials done out of the total with an ETA. A phase is the trial's progress text without its
decimal figures, so "epoch 1/2 loss 2.311" and "template terse" start one, each new loss does not.

The ETA is the forecast seconds (advisor.forecast) of the trials still to run (a running trial's less
the time it has run so far, not below zero), scaled by the actual wall time over the forecast of the
trials that finished in this run (1 until one has). It assumes trials run one after another, so with
trials at once (Ray) it is an upper bound; it is unknown when a trial left has no forecast.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from advisor.execute import Progress as OnProgress
from contracts.records import Trial, TrialRecord

LOG_INTERVAL_S = 60.0
_DECIMAL = re.compile(r"\d*\.\d+")


def display(console: Console, trials: list[Trial], todo: list[Trial], forecast_s: dict[str, float]) -> Bars | LogLines:
    """Bars on a terminal, plain lines otherwise; `forecast_s`: trial id -> forecast seconds (for the ETA)."""
    return Bars(console, trials, todo) if console.is_terminal else LogLines(console, trials, todo, forecast_s)


def _status(record: TrialRecord, markup: bool) -> str:
    if record.status == "ok":
        return "[green]ok[/]" if markup else "ok"
    return f"[red]{record.status}[/]: {record.error}" if markup else f"{record.status}: {record.error}"


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


class Bars:
    """rich's live bars (a terminal): the run's bar, and one per running trial while it runs."""

    def __init__(self, console: Console, trials: list[Trial], todo: list[Trial]):
        self.console, self.total, self.reused_count = console, len(trials), len(trials) - len(todo)
        self._running: dict[str, tuple[int, float]] = {}

    def __enter__(self) -> Bars:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
        self.bars = Progress(*columns, console=self.console, transient=False).__enter__()
        self.overall = self.bars.add_task("trials", total=self.total, completed=self.reused_count)
        return self

    def __exit__(self, *exc) -> None:
        self.bars.__exit__(*exc)

    def reused(self, trial: Trial, status: str) -> None:
        self.console.print(f"  reused {trial.name} ({status})")

    def started(self, trial: Trial) -> OnProgress:
        inner = self.bars.add_task(f"  {trial.name}", total=None)
        self._running[trial.id] = (inner, time.perf_counter())
        return lambda done, total, what: self.bars.update(inner, completed=done, total=total, description=f"  {trial.name}: {what}")

    def finished(self, trial: Trial, record: TrialRecord) -> None:
        if (inner := self._running.pop(trial.id, None)) is not None:
            self.bars.remove_task(inner[0])
        self.bars.advance(self.overall)
        self.console.print(f"  {trial.name}: {_status(record, True)}" + (f" ({time.perf_counter() - inner[1]:.0f} s)" if inner else ""))


@dataclass
class _Running:
    began: float
    phase: str = ""
    text: str = "starting"


class LogLines:
    """Plain lines for a log: per trial its start, phases and result; every `interval` s the run's done/total and ETA."""

    def __init__(self, console: Console, trials: list[Trial], todo: list[Trial], forecast_s: dict[str, float],
                 interval: float | None = None):
        self.console, self.interval = console, LOG_INTERVAL_S if interval is None else interval
        self.position = {t.id: i for i, t in enumerate(trials, 1)}
        self.total, self.done, self.left = len(trials), len(trials) - len(todo), {t.id for t in todo}
        self.forecast_s = forecast_s
        self.running: dict[str, _Running] = {}
        self.names = {t.id: t.name for t in trials}
        self.ran: list[tuple[float, float]] = []
        """(actual, forecast) seconds of each trial finished in this run that had a forecast."""
        self._stop, self._lock = threading.Event(), threading.Lock()
        self.began = time.perf_counter()

    def __enter__(self) -> LogLines:
        self._beat = threading.Thread(target=self._beats, name="advisor progress lines", daemon=True)
        self._beat.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._beat.join()

    def _say(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _tag(self, trial: Trial) -> str:
        return f"[{self.position[trial.id]}/{self.total}] {trial.name}"

    def reused(self, trial: Trial, status: str) -> None:
        self._say(f"{self._tag(trial)}: reused ({status})")

    def started(self, trial: Trial) -> OnProgress:
        with self._lock:
            self.running[trial.id] = state = _Running(time.perf_counter())
        self._say(f"{self._tag(trial)}: started" + (f", forecast ~{_duration(f)}" if (f := self.forecast_s.get(trial.id)) else ""))

        def on_progress(done: int, total: int, what: str) -> None:
            state.text = f"{what} ({done}/{total})" if total else what
            if (phase := _DECIMAL.sub("", what)) != state.phase:
                state.phase = phase
                self._say(f"{self._tag(trial)}: {state.text}")

        return on_progress

    def finished(self, trial: Trial, record: TrialRecord) -> None:
        with self._lock:
            state = self.running.pop(trial.id, None)
            self.left.discard(trial.id)
            self.done += 1
            took = time.perf_counter() - state.began if state else None
            if took is not None and self.forecast_s.get(trial.id):
                self.ran.append((took, self.forecast_s[trial.id]))
        self._say(f"{self._tag(trial)}: {_status(record, False)}" + (f" ({took:.0f} s)" if took is not None else ""))

    def eta(self) -> tuple[float, float] | None:
        """(seconds left, the actual/forecast scale used), or None when a trial left has no forecast."""
        if any(not self.forecast_s.get(i) for i in self.left):
            return None
        scale = sum(a for a, _ in self.ran) / sum(f for _, f in self.ran) if self.ran else 1.0
        now = time.perf_counter()
        return sum(max(self.forecast_s[i] * scale - (now - self.running[i].began if i in self.running else 0.0), 0.0)
                   for i in self.left), scale

    def summary(self) -> str:
        """The once-an-interval line: trials done out of all, what runs, the time so far and the ETA."""
        with self._lock:
            eta = self.eta()
            running = "; ".join(f"{self.names[i]}: {s.text}" for i, s in self.running.items())
            done = self.done
        how = (f"~{_duration(eta[0])} (forecast of what is left x {eta[1]:.2f}, the actual/forecast time of the trials "
               f"finished in this run{'' if self.ran else ': none yet'})") if eta else "unknown (no forecast for a trial left)"
        return (f"progress: {done}/{self.total} trials done" + (f", running {running}" if running else "")
                + f"; {_duration(time.perf_counter() - self.began)} elapsed; ETA {how}")

    def _beats(self) -> None:
        while not self._stop.wait(self.interval):
            self._say(self.summary())
