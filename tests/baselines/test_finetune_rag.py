"""Fine-tuning + retrieval: which combined trials the plan makes, and that they answer with the tuned weights."""

from __future__ import annotations

import json

import pytest

from advisor.execute import trial_finder
from advisor.plan import make_plan, make_trial
from advisor.rundir import RunDir
from baselines.device import probe
from advisor.task import check_task
from advisor.yaml_errors import SpecError
from baselines import Context, strategies
from conftest import qa_task

LORA = "lora: {r: 4, epochs: 1, batch_size: 2, max_seq_len: 64, max_new_tokens: 4}"
RAG = "rag: {chunking: [sentence], index: [flat, hnsw], k: 2, context_tokens: 40, max_new_tokens: 4}"


def names(task) -> list[str]:
    return [t.name for t in make_plan(*check_task(task)[:2])]


def test_plan_adds_one_combined_trial_per_fine_tuned_trial(tmp_path, tiny_model_dir, fake_embedder):
    both = f"{LORA}\n  {RAG}"
    assert names(qa_task(tmp_path, tiny_model_dir, both))[-1] == "lora-r4+rag/sentence/flat"  # the first RAG trial, run last
    picked = names(qa_task(tmp_path, tiny_model_dir, both + "\n  finetune_rag: {rag: [rag/sentence/hnsw, rag/sentence/flat]}"))
    assert [n for n in picked if "+" in n] == ["lora-r4+rag/sentence/flat", "lora-r4+rag/sentence/hnsw"]
    assert not [n for n in names(qa_task(tmp_path, tiny_model_dir, both + "\n  finetune_rag: null")) if "+" in n]
    assert not [n for n in names(qa_task(tmp_path, tiny_model_dir, RAG)) if "+" in n]  # nothing to combine: silent


@pytest.mark.parametrize("extra, message", [
    ("finetune_rag: {rag: [rag/sentense/flat]}", "Did you mean 'rag/sentence/flat'"),
    ("finetune_rag: {finetune: [lora-r8]}", "no fine-tuned trial named 'lora-r8'"),
])
def test_unknown_trial_names_are_plan_errors(tmp_path, tiny_model_dir, fake_embedder, extra, message):
    with pytest.raises(SpecError, match=message):
        names(qa_task(tmp_path, tiny_model_dir, f"{LORA}\n  {RAG}\n  {extra}"))


def test_asking_for_it_without_rag_is_a_plan_error(tmp_path, tiny_model_dir):
    with pytest.raises(SpecError, match="finetune_rag needs 'rag' and a fine-tuning family"):
        names(qa_task(tmp_path, tiny_model_dir, f"{LORA}\n  finetune_rag: {{}}"))


@pytest.mark.slow  # trains
def test_compare_reuses_the_training_and_answers_with_retrieval(tmp_path, tiny_model_dir, fake_embedder):
    from advisor import compare

    out = compare(qa_task(tmp_path, tiny_model_dir, f"{LORA}\n  {RAG}"), out=tmp_path / "run", isolate=False)
    results = json.loads((out / "results.json").read_text())
    trials = {t["name"]: t for t in results["trials"]}
    combined, lora = trials["lora-r4+rag/sentence/flat"], trials["lora-r4"]
    assert combined["status"] == "ok", combined.get("error")
    assert "training reused from lora-r4" in combined["details"]["summary"]
    assert combined["resources"]["reused_setup_s"] == lora["resources"]["train_s"] > 0
    assert combined["resources"]["train_s"] == lora["resources"]["train_s"]
    paid = (combined["resources"]["prepare_s"] + lora["resources"]["train_s"]) / 3600 * 0.1  # default CPU $/hour
    assert combined["cost"]["one_time_usd"] == pytest.approx(paid, abs=1e-6)  # the reused training is paid for
    assert combined["metrics"]["recall_at_k"] == trials["rag/sentence/flat"]["metrics"]["recall_at_k"]  # same retriever
    preds = [json.loads(line) for line in (out / "trials" / combined["id"] / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 4 and all(p["sources"] for p in preds)
    assert set(combined["comparisons"]) >= {"vs_finetune_alone", "vs_rag_alone"}
    assert combined["comparisons"]["vs_rag_alone"]["other"] == "rag/sentence/flat"
    assert "Combined arms against each part alone" in (out / "report.html").read_text()
    assert "| lora-r4+rag/sentence/flat | lora-r4 |" in (out / "report.md").read_text()


@pytest.mark.slow  # trains
def test_without_a_finished_training_it_trains_in_the_fine_tuned_trials_folder(tmp_path, tiny_model_dir, fake_embedder):
    spec, splits, _ = check_task(qa_task(tmp_path, tiny_model_dir, f"{LORA}\n  {RAG}"))
    trial = next(t for t in make_plan(spec, splits, probe("cpu")) if t.family == "finetune_rag")
    store = RunDir(tmp_path)
    combined = strategies.get("finetune_rag")(trial.settings, Context(spec, splits, store.trial_dir(trial),
                                                                      find_trial=trial_finder(store, spec, splits, probe("cpu"))))
    combined.prepare()
    combined.predict(splits.test)
    assert combined.rag.ctx.lm is combined.tuned.lm and hasattr(combined.tuned.lm.model, "peft_config")
    assert "trained here" in combined.details()["summary"] and combined.resources()["reused_setup_s"] == 0.0
    ft = trial.settings["finetune"]
    lora_dir = tmp_path / "trials" / make_trial(spec, splits, ft["family"], ft["name"], ft["settings"]).id
    assert (lora_dir / "checkpoints" / "finished.json").exists()  # the lora trial will reload, not retrain


@pytest.mark.slow  # lm-eval
def test_forgetting_is_the_fine_tuned_trials_own(tmp_path, tiny_model_dir, fake_embedder, monkeypatch, benchmark_data):
    from advisor import compare
    from evaluators import forgetting

    monkeypatch.setenv("ADVISOR_BENCHMARK_DATA", str(benchmark_data))
    calls = []
    real = forgetting.lm_eval_scores
    monkeypatch.setattr(forgetting, "lm_eval_scores", lambda *a, **k: calls.append(1) or real(*a, **k))
    task = qa_task(tmp_path, tiny_model_dir, f"{LORA}\n  {RAG.replace('index: [flat, hnsw]', 'index: [flat]')}")
    task.write_text(task.read_text() + "forgetting: {benchmarks: [arc_easy], limit: 4}\n")
    out = compare(task, out=tmp_path / "run", isolate=False)
    trials = {t["name"]: t for t in json.loads((out / "results.json").read_text())["trials"]}
    combined, lora = trials["lora-r4+rag/sentence/flat"]["forgetting"], trials["lora-r4"]["forgetting"]
    assert combined["same_weights_as"] == "lora-r4" and combined["benchmarks"] == lora["benchmarks"]
    assert len(calls) == 2  # the base model and lora-r4; the combined trial measured nothing again
