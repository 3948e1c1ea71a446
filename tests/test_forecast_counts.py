"""The forecast's counts (advisor.forecast_counts) against what the run really does: the trainer's padded batches
and validation loss on a learning-curve point's subset, the forgetting benchmarks per weight-changing trial, and
lm-eval's own requests."""

from __future__ import annotations

import pytest

from advisor.execute import execute_trial
from advisor.forecast import Throughput, forecast_lines
from advisor.forecast_counts import Tokens, Work, forgetting_positions, trial_work
from advisor.forecast_rates import LENGTH, Rates, method_rates
from advisor.prechecks import validation_pass
from advisor.rundir import RunDir
from baselines.device import planned, resolve_device
from baselines.engine import LanguageModel
from baselines.models import load_model
from tests.conftest import qa_task


def _plan(task, strategies: str, data: str = "", extra: str = ""):
    path = task(strategies, extra)
    path.write_text(path.read_text().replace("test: test.jsonl}", f"test: test.jsonl{data}}}"))
    return validation_pass(path, planned(resolve_device("cpu")))[:3]


def test_a_subset_trial_forecasts_the_padded_positions_the_trainer_runs(classification_task, tiny_model_dir, tmp_path, monkeypatch):
    import baselines.finetune.train as trainer

    spec, splits, trials = _plan(classification_task, "lora: {epochs: 2, batch_size: 2}", ", train_sizes: [6]")
    point = next(t for t in trials if t.name == "lora-r16@n=6")
    work = trial_work(LanguageModel(*load_model(str(tiny_model_dir), device="cpu")), point, splits, spec, planned("cpu"), 0)
    ran = {True: 0, False: 0}
    real = trainer._micro_loss

    def counted(model, batch, *args):
        ran[model.training] += batch["input_ids"].numel()  # padded positions through the model
        return real(model, batch, *args)

    monkeypatch.setattr(trainer, "_micro_loss", counted)
    record = execute_trial(point, spec, splits, RunDir(tmp_path / "run"), device="cpu")
    assert record.status == "ok" and record.details["n_train"] == 5 and record.details["n_validation"] == 1  # 6, less 1 carved out
    assert (work.train, work.validation) == (ran[True], ran[False]) and work.train > 0
    whole = trial_work(LanguageModel(*load_model(str(tiny_model_dir), device="cpu")), next(t for t in trials if t.name == "lora-r16"),
                       splits, spec, planned("cpu"), 0)
    assert whole.train > work.train  # the full trial trains on all 9 (8 after the carve-out)


def test_forgetting_is_counted_once_per_weight_changing_trial_and_once_for_the_base(classification_task, tiny_model_dir, benchmark_data):
    spec, splits, trials = _plan(classification_task, "prompting: {shots: [0], select_on: 2}\n  lora: {epochs: 1}", ", train_sizes: [6]",
                                 f"forgetting: {{benchmarks: [arc_easy, hellaswag], limit: 3, data_dir: {benchmark_data}}}\n")
    lm = LanguageModel(*load_model(str(tiny_model_dir), device="cpu"))
    positions, uncounted = forgetting_positions(Tokens.of(lm), spec)
    assert positions > 2 * 3 * 2 * 5 and uncounted == []  # 3 items of 2 benchmarks, at least 2 choices of 5+ tokens each
    works = {t.name: trial_work(lm, t, splits, spec, planned("cpu"), positions) for t in trials}
    assert works["lora-r16"].forgetting == positions
    assert works["zero-shot"].forgetting == works["lora-r16@n=6"].forgetting == 0  # no weights changed; a curve point measures quality only
    lines = forecast_lines(trials, splits, spec, Throughput(forward=1000.0, train=100.0, source="stated"))
    (lora,) = [line for line in lines if line.strip().startswith("lora-r16 ")]
    assert f"forgetting {positions:,} (~" in lora
    assert any(line.startswith(f"  base model, forgetting benchmarks (once): {positions:,} positions") for line in lines)


@pytest.mark.slow  # runs lm-eval (a few seconds of imports and task building)
def test_forgetting_positions_are_the_positions_lm_eval_runs(classification_task, tiny_model_dir, benchmark_data, tmp_path, monkeypatch):
    from lm_eval.models.huggingface import HFLM

    from evaluators.forgetting import _prepare, lm_eval_scores

    spec, _, _ = _plan(classification_task, "lora: {epochs: 1}", "",
                       f"forgetting: {{benchmarks: [arc_easy, hellaswag], limit: 4, data_dir: {benchmark_data}}}\n")
    model, tokenizer = load_model(str(tiny_model_dir), device="cpu")
    ran = []
    real = HFLM._model_call

    def counted(self, inps, *args, **kwargs):
        ran.append(inps.numel())
        return real(self, inps, *args, **kwargs)

    monkeypatch.setattr(HFLM, "_model_call", counted)
    names, include = _prepare(spec, tmp_path / "cache")
    lm_eval_scores(model, tokenizer, names, spec.forgetting.limit, include)
    assert forgetting_positions(Tokens.of(LanguageModel(model, tokenizer)), spec) == (sum(ran), [])


def test_a_fine_tuning_trial_is_timed_at_its_own_models_rates():
    work = Work(answer=1000, passes=10, train=600, steps=3, validation=100, forgetting=400)
    lora = Rates(forward=100.0, scoring=50.0, pass_s=0.5, train=20.0, optimizer_s=2.0, load_s=7.0)
    stated = Throughput(forward=1000.0, train=100.0, source="stated", load_s=1.0, methods={"lora-r16": lora})
    own, forgetting = stated.seconds(work, "lora-r16")
    per_position = 1 / 100 - 0.5 / LENGTH  # a pass of LENGTH tokens holds one fixed pass cost
    assert own == pytest.approx(7.0 + 1000 * per_position + 10 * 0.5 + 600 / 20 + 3 * 2.0 + 100 / 50)
    assert forgetting == pytest.approx(400 / 50)
    assert stated.seconds(work, None)[0] == pytest.approx(1.0 + 1000 / 1000 + 600 / 100 + 100 / 1000)  # the task's model


@pytest.mark.slow  # measures the tiny model's rates (about 1 s each)
def test_each_fine_tuning_method_is_measured_on_its_own_trainable_model(classification_task, tiny_model_dir):
    spec, splits, trials = _plan(classification_task, "prompting: {shots: [0], templates: [terse]}\n  lora: {epochs: 1}\n  full: {epochs: 1}")
    lines = forecast_lines(trials, splits, spec, device="cpu")
    assert "on the model and the lora-r16 trainable model, the full trainable model:" in lines[0]
    lora, full = (method_rates(next(t for t in trials if t.family == f), spec, splits, "cpu", seconds=0.2) for f in ("lora", "full"))
    assert all(r.forward > 0 and r.train > 0 and r.pass_s > 0 and r.load_s > 0 for r in (lora, full))
    assert any(line.startswith("  rates of the lora-r16 trainable model: ") for line in lines)


def test_a_rag_prompt_carries_its_chunks_not_the_whole_context_budget(tmp_path, tiny_model_dir, fake_embedder):
    task = qa_task(tmp_path, tiny_model_dir, "rag: {chunking: [sentence], index: [flat], k: 2, context_tokens: 2000, max_new_tokens: 2}")
    spec, splits, (trial,) = validation_pass(task, planned(resolve_device("cpu")))[:3]
    work = trial_work(LanguageModel(*load_model(str(tiny_model_dir), device="cpu")), trial, splits, spec, planned("cpu"), 0)
    forecast = work.latency / (len(splits.test) + 1)  # the mean prompt a latency query runs
    record = execute_trial(trial, spec, splits, RunDir(tmp_path / "run"), device="cpu")
    actual = record.resources.prompt_tokens / record.n_test
    assert actual < 500 and forecast == pytest.approx(actual, rel=0.3)  # 2 sentence chunks, far below the 2,000 budget

