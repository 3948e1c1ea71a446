"""Forgetting through lm-eval: local benchmark configs, base vs adapted deltas, equality with the lm-eval CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from advisor import compare
from conftest import registered
from baselines.prompting import Prompting
from evaluators.general_benchmarks import benchmarks, task_dir
from evaluators.forgetting import lm_eval_scores
from evaluators.statistics import mcnemar_p, paired_bootstrap_ci


@pytest.mark.parametrize("name", sorted(benchmarks.names()))
def test_every_adapter_reads_the_shared_data(name, benchmark_data):
    rows = [json.loads(line) for line in (benchmark_data / name / "test.jsonl").read_text().splitlines()[:20]]
    for row in rows:
        doc = benchmarks.get(name)(row)
        assert doc["query"] and len(doc["choices"]) >= 2 and 0 <= doc["gold"] < len(doc["choices"])


def test_statistics_on_paired_items():
    assert mcnemar_p([1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0, 0]) == pytest.approx(2 / 256)
    assert mcnemar_p([1, 0], [1, 0]) == 1.0
    lo, hi = paired_bootstrap_ci([1, 1, 0, 1] * 10, [0, 1, 0, 0] * 10)
    assert 0 < lo < 0.5 < hi <= 1


@pytest.fixture(scope="module")
def arc_tasks(tmp_path_factory, benchmark_data):
    return task_dir(["arc_easy"], benchmark_data, tmp_path_factory.mktemp("cache"))


@pytest.mark.slow
def test_scores_equal_the_lm_eval_cli(tiny_model_dir, arc_tasks, tmp_path):
    from baselines.models import load_model

    model, tokenizer = load_model(str(tiny_model_dir), device="cpu")
    ours = lm_eval_scores(model, tokenizer, ["arc_easy"], 8, arc_tasks)["arc_easy"]
    cli = subprocess.run(
        [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={tiny_model_dir}",
         "--include_path", str(arc_tasks), "--tasks", "advisor_arc_easy", "--limit", "8", "--batch_size", "8",
         "--output_path", str(tmp_path / "out"), "--device", "cpu"],
        capture_output=True, text=True, timeout=600,
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    (result_file,) = (tmp_path / "out").rglob("results_*.json")
    theirs = json.loads(result_file.read_text())["results"]["advisor_arc_easy"]
    assert ours["acc"] == pytest.approx(theirs["acc,none"])
    assert ours["acc_norm"] == pytest.approx(theirs["acc_norm,none"])
    assert ours["n"] == 8


class Perturbed(Prompting):
    """Prompting on a model whose weights were changed: stands in for a fine-tuned model."""

    def adapted_model(self):
        import torch

        model, tokenizer = self.ctx.lm.model, self.ctx.lm.tokenizer
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.5)
        return model, tokenizer


@pytest.mark.slow
def test_runner_records_forgetting_only_for_changed_weights(classification_task, tmp_path, monkeypatch, benchmark_data):
    monkeypatch.setenv("ADVISOR_BENCHMARK_DATA", str(benchmark_data))
    task = classification_task("prompting: {shots: [0], templates: [terse]}", "forgetting: {benchmarks: [arc_easy], limit: 6}\n")
    out = compare(task, out=tmp_path / "run", isolate=False)
    (trial,) = json.loads((out / "results.json").read_text())["trials"]
    assert trial["forgetting"] == {"applies": False, "reason": "weights unchanged: forgetting is zero by construction"}


@pytest.mark.slow
def test_forgetting_deltas_for_an_adapted_model(classification_task, tmp_path, monkeypatch, benchmark_data):
    monkeypatch.setenv("ADVISOR_BENCHMARK_DATA", str(benchmark_data))
    with registered("perturbed", Perturbed):
        task = classification_task("perturbed: {shots: [0], templates: [terse]}", "forgetting: {benchmarks: [arc_easy], limit: 6}\n")
        out = compare(task, out=tmp_path / "run", isolate=False)
    (trial,) = json.loads((out / "results.json").read_text())["trials"]
    arc = trial["forgetting"]["benchmarks"]["arc_easy"]
    assert arc["n"] == 6
    assert arc["delta"] == pytest.approx(arc["adapted"] - arc["base"])
    assert arc["delta_ci95"][0] <= arc["delta"] <= arc["delta_ci95"][1]
    assert 0 <= arc["mcnemar_p"] <= 1
    assert list((out / "forgetting").glob("base-*.json"))


@pytest.mark.slow  # lm-eval
def test_adding_benchmarks_later_measures_stored_fine_tunes_without_retraining(classification_task, tmp_path, monkeypatch, benchmark_data):
    from baselines.finetune import train as train_mod

    monkeypatch.setenv("ADVISOR_BENCHMARK_DATA", str(benchmark_data))
    lora = "lora: {r: 4, epochs: 1, batch_size: 4, max_seq_len: 64}\n  prompting: {shots: [0], templates: [terse]}"
    compare(classification_task(lora), out=tmp_path / "run", isolate=False)
    monkeypatch.setattr(train_mod, "_micro_loss", lambda *a: pytest.fail("trained again"))
    task = classification_task(lora, "forgetting: {benchmarks: [arc_easy], limit: 4}\n")
    out = compare(task, out=tmp_path / "run", isolate=False)
    trials = {t["name"]: t for t in json.loads((out / "results.json").read_text())["trials"]}
    assert trials["lora-r4"]["forgetting"]["benchmarks"]["arc_easy"]["n"] == 4  # measured now, from the stored training
    assert trials["zero-shot"]["forgetting"]["applies"] is False  # reused as it was: prompting never changes weights
