"""Issue 14 F5 and F7: reused work keeps its original cost, and `--fresh` really recomputes."""

from __future__ import annotations

import json

import pytest

from advisor import compare
from contracts.spec import Pricing

FAST = "epochs: 2, batch_size: 4, max_seq_len: 64"


def _trial(out) -> dict:
    (trial,) = json.loads((out / "results.json").read_text())["trials"]
    assert trial["status"] == "ok", trial.get("error")
    return trial


@pytest.mark.slow  # trains
def test_a_reloaded_training_carries_its_original_figures_and_fresh_trains_again(classification_task, tmp_path):
    from baselines.finetune import train as train_mod

    task = classification_task(f"lora: {{r: 4, {FAST}}}")
    run = tmp_path / "run"
    first = _trial(compare(task, out=run, isolate=False))
    assert first["resources"]["training_reused"] is False and first["details"]["training_reused"] is None

    (run / "trials" / f"{first['id']}.json").unlink()  # e.g. forgetting benchmarks added later: the trial runs again
    again = _trial(compare(task, out=run, isolate=False))
    res, orig = again["resources"], first["resources"]
    assert res["training_reused"] is True and "reloaded" in again["details"]["training_reused"]
    for key in ("train_s", "train_peak_rss_mb", "train_rss_delta_mb", "train_tokens"):
        assert res[key] == orig[key], key  # the training's own figures, not the reload's
    # the training is still priced at its original time, not at the seconds of the reload
    assert again["cost"]["one_time_usd"] >= orig["train_s"] / 3600 * Pricing().cpu_hour_usd > 0
    row = next(line for line in (run / "report.md").read_text().splitlines() if line.startswith("| lora-r4 | reused"))
    assert row.startswith("| lora-r4 | reused: this trial's own finished training") and f"| {orig['train_s']:,.1f} s |" in row  # the report says so

    calls = []
    real = train_mod._micro_loss
    train_mod._micro_loss = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        fresh = _trial(compare(task, out=run, isolate=False, fresh=True))
    finally:
        train_mod._micro_loss = real
    assert calls and fresh["resources"]["training_reused"] is False  # --fresh trained again in the same folder
    assert fresh["details"]["resumed_from_epoch"] is None


def test_fresh_clears_a_trials_record_and_folder(tmp_path):
    from advisor.rundir import RunDir
    from contracts.records import Trial

    store = RunDir(tmp_path)
    trial = Trial("lora", "lora", {}, "0" * 16, 4)
    (store.trial_dir(trial) / "checkpoints").mkdir()
    (store.trial_dir(trial) / "checkpoints" / "finished.json").write_text("{}")
    store.trial_path(trial).write_text("{}")
    assert store.cleared(trial) is trial
    assert not store.trial_path(trial).exists() and not (store.trials_dir / trial.id).exists()
