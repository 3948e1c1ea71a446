"""The runner: run-dir contents, resume by content hash, failures as results, worker isolation."""

from __future__ import annotations

import json

import pytest

from advisor import compare
from baselines.prompting import Prompting


@pytest.mark.slow  # several trials x templates
def test_in_process_run_writes_the_run_dir(classification_task, tmp_path):
    out = compare(classification_task(), out=tmp_path / "run", isolate=False)
    assert {p.name for p in out.iterdir()} >= {"results.json", "report.html", "report.md", "plan.json", "env.json", "trials"}
    results = json.loads((out / "results.json").read_text())
    assert results["complete"] is True
    names = [t["name"] for t in results["trials"]]
    assert names == ["zero-shot", "1-shot"]
    for trial in results["trials"]:
        assert trial["status"] == "ok"
        lo, hi = trial["metrics"]["accuracy_ci95"]
        assert 0 <= lo <= trial["metrics"]["accuracy"] <= hi <= 1
        assert trial["resources"]["prompt_tokens"] > 0
        assert (out / "trials" / f"{trial['id']}.json").exists()
        assert len((out / "trials" / trial["id"] / "predictions.jsonl").read_text().splitlines()) == 9
        assert set(trial["details"]["template_scores"]) == {"instruct", "question", "terse"}


@pytest.mark.slow  # several trials x templates
def test_rerun_reuses_finished_trials_and_recomputes_changed_ones(classification_task, tmp_path, monkeypatch):
    task = classification_task()
    out = compare(task, out=tmp_path / "run", isolate=False)
    first = json.loads((out / "results.json").read_text())
    calls = []
    with monkeypatch.context() as patch:  # the fixtures' patches (fake embedder) stay
        patch.setattr(Prompting, "prepare", lambda self: calls.append(self.settings["shots"]))
        compare(task, out=out, isolate=False)
    assert calls == []  # nothing re-ran
    assert json.loads((out / "results.json").read_text())["trials"] == first["trials"]
    task.write_text(task.read_text().replace("shots: [0, 1]", "shots: [0, 2]"))
    second = json.loads((compare(task, out=out, isolate=False) / "results.json").read_text())
    assert [t["name"] for t in second["trials"]] == ["zero-shot", "2-shot"]
    assert second["trials"][0]["hash"] == first["trials"][0]["hash"]


@pytest.mark.slow  # several trials x templates
def test_a_failing_trial_is_recorded_and_the_others_go_on(classification_task, tmp_path, monkeypatch):
    def boom(self):
        if self.settings["shots"] == 0:
            raise RuntimeError("injected failure")
        return original(self)

    original = Prompting.prepare
    monkeypatch.setattr(Prompting, "prepare", boom)
    out = compare(classification_task(), out=tmp_path / "run", isolate=False)
    trials = {t["name"]: t for t in json.loads((out / "results.json").read_text())["trials"]}
    assert trials["zero-shot"]["status"] == "failed"
    assert "injected failure" in trials["zero-shot"]["error"]
    assert trials["1-shot"]["status"] == "ok"
    assert "injected failure" in (out / "report.html").read_text()


@pytest.mark.slow  # a spawned worker imports torch and transformers afresh
def test_worker_process_isolation(classification_task, tmp_path):
    """The default path: each trial in a spawned worker, its own memory figures."""
    task = classification_task("prompting: {shots: [0], templates: [terse]}")
    out = compare(task, out=tmp_path / "run")
    (trial,) = json.loads((out / "results.json").read_text())["trials"]
    assert trial["status"] == "ok", trial.get("error")
    assert trial["resources"]["memory_measured"].startswith("own worker process")
    assert trial["resources"]["peak_rss_mb"] > 50


def test_second_compare_on_same_dir_is_refused(tmp_path):
    from advisor.rundir import RunDir, RunLocked

    first = RunDir(tmp_path)
    first.lock()
    with pytest.raises(RunLocked, match="another advisor compare"):
        RunDir(tmp_path).lock()


def test_out_of_memory_in_a_trial_is_recorded_as_oom(classification_task, tmp_path, monkeypatch):
    import torch

    def oom(self):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Prompting, "prepare", oom)
    out = compare(classification_task("prompting: {shots: [0], templates: [terse]}"), out=tmp_path / "run", isolate=False)
    results = json.loads((out / "results.json").read_text())
    (trial,) = results["trials"]
    assert trial["status"] == "oom" and "out of memory" in trial["error"]
    assert results["recommendation"]["pick"] is None and "zero-shot" in results["recommendation"]["excluded"]


@pytest.mark.slow  # several trials x templates
def test_results_follow_the_published_schema(classification_task, tmp_path):
    """results.json and each trial file parse as the contracts that `advisor schema --results` publishes."""
    from click.testing import CliRunner

    from advisor.cli import cli
    from contracts.records import RunResults, TrialRecord

    out = compare(classification_task(), out=tmp_path / "run", isolate=False)
    results = RunResults.model_validate_json((out / "results.json").read_text())
    assert [t.status for t in results.trials] == ["ok", "ok"]
    assert all(t.resources.prompt_tokens > 0 and t.latency.p95_ms is not None for t in results.trials)
    stored = TrialRecord.model_validate_json((out / "trials" / f"{results.trials[0].id}.json").read_text())
    assert stored.cost is None and stored.comparisons == {}  # derived sections live in results.json only
    schema = json.loads(CliRunner().invoke(cli, ["schema", "--results"]).output)
    assert schema["title"] == "RunResults" and "trials" in schema["required"]
