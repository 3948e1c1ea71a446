"""Progress where stderr is not a terminal (CI, nohup, Ray): plain lines per trial phase, and every interval the
trials done out of the total with an ETA; the forecast made at the run's start is kept in each trial's record."""

from __future__ import annotations

import io
import json
import re
import time

import pytest
from rich.console import Console

import advisor.forecast
import advisor.progress
from advisor import compare
from advisor.forecast import Throughput
from advisor.progress import LogLines
from contracts.records import Trial, TrialRecord

STATED = Throughput(forward=2000.0, train=200.0, source="stated for the test")


def _log() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=300), out


def test_a_run_logged_to_a_file_prints_phases_a_heartbeat_and_keeps_its_forecast(classification_task, tmp_path, monkeypatch):
    monkeypatch.setattr(advisor.forecast, "measure", lambda lm, **kwargs: STATED)  # the throughput probe costs 2 s; it is tested elsewhere
    monkeypatch.setattr(advisor.progress, "LOG_INTERVAL_S", 0.05)
    console, log = _log()
    out = compare(classification_task("prompting: {shots: [0, 1], templates: [terse, question], select_on: 1}"),
                  out=tmp_path / "run", isolate=False, console=console)
    lines = log.getvalue().splitlines()
    assert any(line.startswith("forecast (stated for the test: 2,000 positions/s forward") for line in lines)
    assert "[1/2] zero-shot: started, forecast ~" in log.getvalue()
    phases = [line for line in lines if line.startswith("[2/2] 1-shot: template ")]
    phases = [p.split(" (")[0] for p in phases]  # selection items, then test items: each template's turn is a phase
    assert phases[:2] == ["[2/2] 1-shot: template terse", "[2/2] 1-shot: template question"] and len(phases) > 2
    assert all(a != b for a, b in zip(phases, phases[1:]))  # one line per phase, not per progress call
    counts = [tuple(map(int, m)) for m in re.findall(r"template \w+ \((\d+)/(\d+)\)", log.getvalue())]
    assert counts and all(done <= total for done, total in counts)  # the latency pass after the last template is not counted
    assert re.search(r"^\[2/2\] 1-shot: ok \(\d+ s\)$", log.getvalue(), re.M)
    beats = [line for line in lines if line.startswith("progress: ")]
    assert beats and all(re.search(r"^progress: [0-2]/2 trials done.*; ETA (~|unknown)", b) for b in beats)
    assert any("ETA ~" in b and "actual/forecast" in b for b in beats)
    results = json.loads((out / "results.json").read_text())
    for trial in results["trials"]:
        stored = json.loads((out / "trials" / f"{trial['id']}.json").read_text())
        assert stored["forecast"] == trial["forecast"]
        assert trial["forecast"]["seconds"] > 0 and trial["forecast"]["forward_positions"] > 0
        assert trial["forecast"]["forward_per_s"] == 2000.0 and trial["forecast"]["measured"].startswith("stated for the test")
    assert "## Forecast against actual time" in (out / "report.md").read_text()
    assert "<h2>Forecast against actual time" in (out / "report.html").read_text()


def test_a_second_run_reuses_each_trial_with_its_original_forecast_and_time(classification_task, tmp_path, monkeypatch):
    monkeypatch.setattr(advisor.forecast, "measure", lambda lm, **kwargs: STATED)
    task = classification_task("prompting: {shots: [0], templates: [terse]}")
    first = json.loads((compare(task, out=tmp_path / "run", isolate=False, console=_log()[0]) / "results.json").read_text())
    monkeypatch.setattr(advisor.forecast, "measure", lambda lm, **kwargs: pytest.fail("nothing left to run: no throughput to measure"))
    console, log = _log()
    second = json.loads((compare(task, out=tmp_path / "run", isolate=False, console=console) / "results.json").read_text())
    assert "[1/1] zero-shot: reused (ok)" in log.getvalue() and "forecast (" not in log.getvalue()
    assert [(t["forecast"], t["resources"]["wall_s"]) for t in second["trials"]] == [(t["forecast"], t["resources"]["wall_s"])
                                                                                    for t in first["trials"]]


def _trials(n: int) -> list[Trial]:
    return [Trial(f"t{i}", "prompting", {}, f"{i:040d}") for i in range(n)]


def test_eta_scales_the_forecast_left_by_actual_over_forecast_so_far(monkeypatch):
    clock = iter([0.0, 0.0, 30.0, 30.0, 40.0])  # created; t0 starts; t0 ends; t1 starts; eta() is asked
    monkeypatch.setattr(advisor.progress.time, "perf_counter", lambda: next(clock))
    trials = _trials(3)
    lines = LogLines(_log()[0], trials, trials, {t.id: 20.0 for t in trials}, interval=3600)
    lines.started(trials[0])
    lines.finished(trials[0], TrialRecord.pending(trials[0]).model_copy(update={"status": "ok"}))
    lines.started(trials[1])
    left, scale = lines.eta()
    assert scale == pytest.approx(30 / 20)  # t0 took 30 s against a forecast of 20
    assert left == pytest.approx((30 - 10) + 30)  # t1: 30 scaled less the 10 s it has run; t2: 30 scaled


def test_eta_is_unknown_when_a_trial_left_has_no_forecast():
    trials = _trials(2)
    lines = LogLines(_log()[0], trials, trials, {trials[0].id: 5.0}, interval=3600)
    assert lines.eta() is None and "ETA unknown (no forecast for a trial left)" in lines.summary()


def test_a_new_phase_prints_a_line_a_new_loss_does_not():
    trials = _trials(1)
    console, log = _log()
    on_progress = LogLines(console, trials, trials, {}, interval=3600).started(trials[0])
    for step, what in enumerate(["epoch 1/2 loss 2.311", "epoch 1/2 loss 2.100", "epoch 2/2 loss 1.950", "answering"]):
        on_progress(step, 4, what)
    assert log.getvalue().splitlines()[1:] == ["[1/1] t0: epoch 1/2 loss 2.311 (0/4)", "[1/1] t0: epoch 2/2 loss 1.950 (2/4)",
                                               "[1/1] t0: answering (3/4)"]


def test_the_heartbeat_fires_every_interval_and_stops_with_the_run():
    trials = _trials(1)
    console, log = _log()
    with LogLines(console, trials, trials, {}, interval=0.02) as lines:
        lines.started(trials[0])(3, 10, "epoch 1/2 loss 2.311")
        time.sleep(0.15)
    count = log.getvalue().count("progress: 0/1 trials done, running t0: epoch 1/2 loss 2.311 (3/10)")
    time.sleep(0.05)
    assert count >= 2 and log.getvalue().count("progress: 0/1 trials done") == count
