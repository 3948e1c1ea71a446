"""Forecast against actual: the training memory the estimator expects beside each forecast line, and the
report's table of forecast and measured seconds per trial."""

from __future__ import annotations

from pathlib import Path

from advisor.estimate import estimate_for_settings
from advisor.forecast import Throughput, forecast_lines
from advisor.forecast_counts import trial_work
from advisor.prechecks import validation_pass
from baselines.device import planned, resolve_device
from baselines.engine import LanguageModel
from baselines.models import load_model
from reports.forecast import forecast_table

STATED = Throughput(forward=1000.0, train=100.0, source="stated")


def test_fine_tuning_lines_carry_the_estimators_training_memory(classification_task, tiny_model_dir):
    task = classification_task("prompting: {shots: [0], templates: [terse]}\n  lora: {epochs: 1}")
    spec, splits, trials, _ = validation_pass(task, planned(resolve_device("cpu")))
    lines = forecast_lines(trials, splits, spec, STATED)
    (zero,) = [line for line in lines if line.strip().startswith("zero-shot ")]
    (lora,) = [line for line in lines if line.strip().startswith("lora")]
    assert "training memory" not in zero  # the estimator has no formula for prompting
    lm = LanguageModel(*load_model(str(tiny_model_dir), device="cpu"))
    lora_trial = next(t for t in trials if t.family == "lora")
    longest = trial_work(lm, lora_trial, splits, spec, planned("cpu"), 0).longest_train
    assert 0 < longest <= lora_trial.settings["max_seq_len"]
    expected = estimate_for_settings(Path(tiny_model_dir) / "config.json", "lora", lora_trial.settings, longest, "cpu", "fp32")
    assert lora.endswith(f"training memory ~{expected['estimated_total_mb']:,.0f} MB")
    assert "training memory: advisor estimate's terms at the longest train example" in lines[0]


def _trial(name: str, forecast_s: float | None, wall_s: float, status: str = "ok", reused_s: float = 0.0) -> dict:
    forecast = {"seconds": forecast_s, "forward_positions": 1000, "train_positions": 0, "forward_per_s": 1234.5, "train_per_s": 98.7,
                "measured": "measured for 2 s on cpu at the run's start"} if forecast_s is not None else None
    return {"name": name, "status": status, "forecast": forecast, "resources": {"wall_s": wall_s, "reused_setup_s": reused_s}}


def test_the_table_sets_each_forecast_against_the_recorded_wall_time():
    table = forecast_table([_trial("zero-shot", 10.0, 12.0), _trial("lora", 10.0, 16.0), _trial("fast", 10.0, 6.0),
                            _trial("old", None, 5.0), _trial("broken", 10.0, 1.0, status="failed"),
                            _trial("lora+rag", 10.0, 9.0, reused_s=40.0)])
    rows = {r["trial"]: r for r in table["rows"]}
    assert list(rows) == ["zero-shot", "lora", "fast", "lora+rag"]  # no forecast (an older run) or not ok: not compared
    assert rows["zero-shot"]["ratio"] == 1.2 and rows["zero-shot"]["within"] is True
    assert rows["lora"]["ratio"] == 1.6 and rows["lora"]["within"] is False
    assert rows["fast"]["ratio"] == 0.6 and rows["fast"]["within"] is False  # 1/1.5 = 0.67 is the bar below
    assert rows["lora+rag"]["note"] == "reused 40 s of setup work from elsewhere (not in its wall time)"
    assert (table["within"], table["compared"], table["factor"]) == (2, 4, 1.5)
    assert "measured for 2 s on cpu at the run's start: 1,234 positions/s forward and 99 in training" in table["caption"]
    assert forecast_table([_trial("old", None, 5.0)]) is None


def test_a_forecast_that_counted_forgetting_is_set_against_wall_time_plus_forgetting():
    counted, older = _trial("lora", 100.0, 80.0), _trial("lora-old", 100.0, 80.0)
    counted["forecast"]["forgetting_s"] = 40.0
    for t in (counted, older):
        t["resources"]["forgetting_s"] = 60.0
    rows = {r["trial"]: r for r in forecast_table([counted, older])["rows"]}
    assert rows["lora"]["actual_s"] == 140.0 and rows["lora"]["ratio"] == 1.4  # 80 s wall + 60 s forgetting
    assert rows["lora-old"]["actual_s"] == 80.0  # an older forecast left forgetting out: wall time alone
