"""RayExecutor on a real local Ray (2 CPUs): the local executor's results, reuse across executors, a killed
worker retried or stored as a failure, and the order of trials that build on others."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from advisor.ray_executor import BASE, RayExecutor
from advisor.run_loop import compare


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _trials(out: Path) -> list[dict]:
    return json.loads((out / "results.json").read_text())["trials"]


def _outputs(out: Path, trial: dict) -> list[str]:
    lines = (out / "trials" / trial["id"] / "predictions.jsonl").read_text().splitlines()
    return [json.loads(line)["output"] for line in lines]


@pytest.mark.slow
def test_ray_gives_the_local_executors_results_and_each_reuses_the_other(classification_task, tmp_path, local_ray):
    task = classification_task("prompting: {shots: [0, 1], templates: [terse]}")
    local = compare(task, out=tmp_path / "local", isolate=False)
    executor = RayExecutor()
    on_ray = compare(task, out=tmp_path / "ray", executor=executor)
    assert [(t["name"], t["status"], t["metrics"]) for t in _trials(on_ray)] == [(t["name"], t["status"], t["metrics"]) for t in _trials(local)]
    for ray_trial, local_trial in zip(_trials(on_ray), _trials(local)):
        assert _outputs(on_ray, ray_trial) == _outputs(local, local_trial)
        assert ray_trial["resources"]["memory_measured"].startswith("own Ray worker process on ")
    assert set(executor.nodes) == {t["id"] for t in _trials(on_ray)}
    assert json.loads((on_ray / "results.json").read_text())["complete"] is True
    # a trial finished under Ray is reused locally, and back: nothing runs again, the records stay as they were
    assert _trials(compare(task, out=on_ray, isolate=False)) == _trials(on_ray)
    again = RayExecutor()
    assert _trials(compare(task, out=local, executor=again)) == _trials(local)
    assert again.timings == {}


def _kill_attempts(limits: dict[str, int], stop: threading.Event, killed: list[str]) -> None:
    """SIGKILL the Ray worker running trial NAME (its process title is 'ray::advisor trial NAME') once it has
    run for a second, at most limits[NAME] times."""
    seen: dict[int, float] = {}
    while not stop.is_set():
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                title = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace").strip()
            except OSError:
                continue
            name = title.removeprefix("ray::advisor trial ")
            if name == title or killed.count(name) >= limits.get(name, 0):
                continue
            pid = int(proc.name)
            if time.monotonic() - seen.setdefault(pid, time.monotonic()) > 1.0:
                os.kill(pid, signal.SIGKILL)
                killed.append(name)
        time.sleep(0.05)


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_after_the_last_try_the_trial_is_a_stored_failure(classification_task, tmp_path, local_ray):
    task = classification_task("prompting: {shots: [0, 1], templates: [terse]}")
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_attempts, args=({"zero-shot": 2, "1-shot": 1}, stop, killed), daemon=True)
    killer.start()
    try:
        out = compare(task, out=tmp_path / "run", executor=RayExecutor(max_retries=1))
    finally:
        stop.set()
        killer.join()
    assert sorted(killed) == ["1-shot", "zero-shot", "zero-shot"]
    trials = {t["name"]: t for t in _trials(out)}
    assert trials["zero-shot"]["status"] == "failed"
    assert trials["zero-shot"]["error"].startswith("Ray gave up after 2 attempt(s): ")
    assert trials["1-shot"]["status"] == "ok"  # killed once, run again by Ray
    assert json.loads((out / "results.json").read_text())["complete"] is True


def test_combined_trials_wait_for_their_fine_tuned_trial_and_weight_changes_for_the_base_scores(tmp_path, tiny_model_dir):
    from advisor.plan import make_plan
    from advisor.task import check_task
    from tests.conftest import qa_task

    task = qa_task(tmp_path, tiny_model_dir, "lora: {r: [4, 8], epochs: 1}\n  rag: {chunking: [fixed], index: [flat]}")
    task.write_text(task.read_text() + "forgetting: {benchmarks: [arc_easy], limit: 4}\n")
    spec, splits, _ = check_task(task)
    executor = RayExecutor(device="cpu")
    trials = make_plan(spec, splits)
    waits = executor._prerequisites(trials, spec, splits)
    by_name = {t.name: t.id for t in trials}
    assert waits[by_name["lora-r4+rag/fixed-256/flat"]] == {by_name["lora-r4"], BASE}
    assert waits[by_name["lora-r8"]] == {BASE}
    assert waits[by_name["rag/fixed-256/flat"]] == set()
    # a fine-tuned trial already stored (not in this batch) is no prerequisite any more
    combined = next(t for t in trials if t.name == "lora-r8+rag/fixed-256/flat")
    assert executor._prerequisites([combined], spec, splits)[combined.id] == {BASE}


def _running_trials() -> list[int]:
    """Pids of Ray workers running an advisor trial now."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "cmdline").read_bytes().startswith(b"ray::advisor trial "):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.mark.slow
def test_ctrl_c_cancels_the_running_tasks_and_the_same_command_resumes(classification_task, tmp_path, local_ray):
    task = classification_task("prompting: {shots: [0, 1, 2], templates: [terse]}")

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + 300
        while not _running_trials() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        compare(task, out=tmp_path / "run", executor=RayExecutor())
    deadline = time.monotonic() + 30
    while _running_trials() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _running_trials() == []  # cancelled, not left running
    assert json.loads((tmp_path / "run" / "results.json").read_text())["complete"] is False
    resumed = compare(task, out=tmp_path / "run", executor=RayExecutor())
    assert [t["status"] for t in _trials(resumed)] == ["ok", "ok", "ok"]


@pytest.mark.slow
def test_storage_holds_the_trials_files_and_the_results_equal_the_default(tmp_path, tiny_model_dir, local_ray):
    from tests.conftest import qa_task

    task = qa_task(tmp_path, tiny_model_dir, "lora: {r: 4, epochs: 1}\n  rag: {chunking: [fixed], chunk_size: [64], index: [flat]}")
    default = compare(task, out=tmp_path / "default", isolate=False)
    storage = tmp_path / "shared"
    storage.mkdir()
    run = compare(task, out=tmp_path / "run", executor=RayExecutor(device="cpu", storage=storage))
    assert [(t["name"], t["status"], t["metrics"]) for t in _trials(run)] == [(t["name"], t["status"], t["metrics"]) for t in _trials(default)]
    by_name = {t["name"]: t for t in _trials(run)}
    assert set(by_name) == {"rag/fixed-64/flat", "lora-r4", "lora-r4+rag/fixed-64/flat"}
    kept = storage / "run" / "trials"
    assert (kept / by_name["lora-r4"]["id"] / "checkpoints").is_dir() and (kept / by_name["rag/fixed-64/flat"]["id"] / "index.faiss").is_file()
    assert "training reused from lora-r4" in by_name["lora-r4+rag/fixed-64/flat"]["details"]["summary"]  # its checkpoint, found in storage
    for trial, local_trial in zip(_trials(run), _trials(default)):
        assert _outputs(run, trial) == _outputs(default, local_trial)  # the answers, copied back for the reports
        assert sorted(p.name for p in (run / "trials" / trial["id"]).iterdir()) == sorted(p.name for p in (kept / trial["id"]).glob("*.jsonl"))
        assert json.loads((kept / f"{trial['id']}.json").read_text()) == json.loads((run / "trials" / f"{trial['id']}.json").read_text())


def test_storage_is_checked_before_anything_runs(classification_task, tmp_path):
    from click.testing import CliRunner

    from advisor.cli import cli

    task = str(classification_task("prompting: {shots: [0]}"))
    local = CliRunner().invoke(cli, ["compare", task, "--out", str(tmp_path / "a"), "--storage", str(tmp_path)])
    assert local.exit_code == 2 and "--storage needs --executor ray" in local.output
    missing = CliRunner().invoke(cli, ["compare", task, "--out", str(tmp_path / "b"), "--executor", "ray", "--storage", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "nope: no such folder; give one that every Ray node reads and writes" in missing.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
