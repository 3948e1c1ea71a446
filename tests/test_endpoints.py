"""Models x strategies without a model server: the plan per model, label mapping, backoff, pricing, and an
`advisor compare` whose endpoints fail (rate limits, a server that echoes the key): each failure is stored
for its trial only, and the key appears nowhere in the run folder or the output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli import cli
from advisor.plan import make_plan
from advisor.task import check_task
from baselines.endpoint import backoff_s, label_logprobs, map_to_label, retry_after
from contracts.records import Trial
from tests.conftest import qa_task
from tests.endpoint_server import FaultProxy

SENTINEL = "sk-SENTINEL-7f3a9c-do-not-leak"


def with_models(task: Path, models: str) -> Path:
    """The task file with its `model:` line replaced by a `models:` list."""
    lines = [f"models: {models}" if line.startswith("model:") else line for line in task.read_text().splitlines()]
    task.write_text("\n".join(lines) + "\n")
    return task


def plan(task: Path) -> list[Trial]:
    spec, splits, _ = check_task(task)
    return make_plan(spec, splits)


def test_one_local_model_plans_exactly_as_the_shorthand(tmp_path, tiny_model_dir):
    task = qa_task(tmp_path, tiny_model_dir, "prompting: {shots: [0, 1], templates: [concise]}")
    before = [(t.name, t.hash, t.settings) for t in plan(task)]
    after = [(t.name, t.hash, t.settings) for t in plan(with_models(task, f"[{tiny_model_dir}]"))]
    assert after == before and [name for name, _, _ in before] == ["zero-shot", "1-shot"]
    assert all("model" not in settings for _, _, settings in before)


def test_endpoints_get_prompting_and_rag_local_models_everything(tmp_path, tiny_model_dir, fake_embedder):
    task = with_models(qa_task(tmp_path, tiny_model_dir, "prompting: {shots: [0], templates: [concise]}\n"
                                                         "  rag: {chunking: [sentence], index: [flat]}\n  lora: {epochs: 1}"),
                       f"[{{name: mine, model: {tiny_model_dir}}}, {{name: hosted, base_url: 'http://127.0.0.1:9/v1', model: m}}]")
    trials = plan(task)
    by_model = {t.name: t.settings["model"]["name"] for t in trials}
    assert sorted(n for n, m in by_model.items() if m == "hosted") == ["hosted/rag/sentence/flat", "hosted/zero-shot"]
    assert sorted(n for n, m in by_model.items() if m == "mine") == ["mine/lora-r16", "mine/lora-r16+rag/sentence/flat",
                                                                     "mine/rag/sentence/flat", "mine/zero-shot"]
    assert len({t.hash for t in trials}) == len(trials)
    out = CliRunner().invoke(cli, ["validate", str(task)]).output
    assert "model hosted (endpoint m at http://127.0.0.1:9/v1): 2 trials" in out
    assert "not finetune_rag, lora (they change weights: local models only)" in out


def test_replies_map_onto_labels_exactly_then_normalised():
    labels = ["billing", "shipping", "Account access"]
    assert map_to_label(" billing\n", labels) == "billing"
    assert map_to_label("Billing.", labels) == "billing"
    assert map_to_label("'account  ACCESS'", labels) == "Account access"
    assert map_to_label("It is about billing", labels) is None  # no guessing inside sentences: counted unparseable
    scores = label_logprobs({" bill": -0.2, "ship": -1.5, "Acc": -3.0, "the": -0.1}, labels)
    assert scores == {"billing": -0.2, "shipping": -1.5, "Account access": -3.0}


def test_backoff_grows_with_jitter_and_honours_retry_after():
    class Limited(Exception):
        response = type("R", (), {"headers": {"retry-after": "7"}})()

    assert retry_after(Limited()) == 7.0 and retry_after(ValueError()) is None
    for attempt in range(4):
        step = 0.5 * 2 ** attempt
        assert step / 2 <= backoff_s(attempt, None) <= step
    assert backoff_s(0, 7.0) >= 7.0


def test_endpoint_prices_their_trials(tmp_path, tiny_model_dir):
    from advisor.matrix import pricing_for
    from evaluators.cost import trial_cost

    task = with_models(qa_task(tmp_path, tiny_model_dir, "prompting: {shots: [0], templates: [concise]}"),
                       "[{name: hosted, base_url: 'http://h/v1', model: m, input_usd_per_1k_tokens: 0.5, output_usd_per_1k_tokens: 2.0},"
                       " {name: rented, base_url: 'http://r/v1', model: m, gpu_hour_usd: 3.6}]")
    spec, splits, _ = check_task(task)
    hosted, rented = sorted(make_plan(spec, splits), key=lambda t: t.name)
    usage = {"endpoint": "x", "prompt_tokens_per_query": 100.0, "prompt_tokens": 400, "output_tokens": 40, "n_predictions": 4,
             "all_prompt_tokens": 1400, "all_output_tokens": 140, "examples_per_s": 2.0, "prepare_s": 10.0}
    cost = trial_cost(usage, pricing_for(spec, hosted.settings), None)
    assert cost.per_1k_queries_usd == pytest.approx(100 * 0.5 + 10 * 2.0)  # 100k prompt and 10k output tokens
    assert cost.one_time_usd == pytest.approx(1.0 * 0.5 + 0.1 * 2.0)  # the 1000 + 100 tokens spent beyond the answers
    cost = trial_cost(usage, pricing_for(spec, rented.settings), None)
    assert cost.per_1k_queries_usd == pytest.approx(1000 / 2.0 / 3600 * 3.6) and "endpoint x" in cost.basis


@pytest.mark.slow  # a subprocess loads torch and the tiny model (about 20 s)
def test_failing_endpoints_fail_their_trials_only_and_never_leak_the_key(tmp_path, tiny_model_dir):
    with FaultProxy(None, always="429") as limited, FaultProxy(None, always="401-echo") as echoing:
        task = with_models(qa_task(tmp_path, tiny_model_dir, "prompting: {shots: [0], templates: [concise], max_new_tokens: 4}"),
                           f"[{{name: mine, model: {tiny_model_dir}}},"
                           f" {{name: limited, base_url: '{limited.url}', model: m, api_key_env: ADVISOR_TEST_KEY, max_retries: 2, max_concurrency: 1}},"
                           f" {{name: echoing, base_url: '{echoing.url}', model: m, api_key_env: ADVISOR_TEST_KEY}}]")
        run = tmp_path / "run"
        done = subprocess.run([sys.executable, "-m", "advisor", "compare", str(task), "--out", str(run), "--in-process"],
                              capture_output=True, text=True, timeout=600, env={**os.environ, "ADVISOR_TEST_KEY": SENTINEL})
    assert sum(limited.faults.values()) == 3  # one request, two retries, then the trial gave up
    assert 1 <= echoing.faults["401-echo"] <= 4 and SENTINEL in echoing.echoed[0]  # at most the 4 in flight; the key came back
    records = {t["name"]: t for t in json.loads((run / "results.json").read_text())["trials"]}
    assert records["mine/zero-shot"]["status"] == "ok"
    assert records["limited/zero-shot"]["status"] == "failed"
    assert "endpoint 'limited'" in records["limited/zero-shot"]["error"] and "no answer after 3 attempts; last: HTTP 429" in records["limited/zero-shot"]["error"]
    assert records["echoing/zero-shot"]["status"] == "failed" and "HTTP 401" in records["echoing/zero-shot"]["error"]
    assert "[key]" in records["echoing/zero-shot"]["error"]  # the server repeated the key: scrubbed
    leaks = [str(p) for p in run.rglob("*") if p.is_file() and SENTINEL.encode() in p.read_bytes()]
    assert leaks == [] and SENTINEL not in done.stdout + done.stderr


def test_report_matrix_and_break_even_read_results_only():
    from reports.models import break_even, model_matrix

    def trial(name, model, kind, strategy, f1, per_1k, one_time):
        return {"name": f"{model}/{name}", "strategy": strategy, "status": "ok", "settings": {"model": {"name": model, "kind": kind}},
                "metrics": {"token_f1": f1, "token_f1_ci95": [f1 - 0.1, f1 + 0.1]}, "latency": {"p95_ms": 900.0},
                "cost": {"per_1k_queries_usd": per_1k, "one_time_usd": one_time}, "resources": {}}

    trials = [trial("zero-shot", "api", "endpoint", "prompting", 0.5, 0.30, 0.0),
              trial("zero-shot", "mine", "local", "prompting", 0.2, 0.05, 0.0),
              trial("lora-r16", "mine", "local", "lora", 0.6, 0.05, 50.0)]
    results = {"trials": trials, "task": {"metric": "token_f1", "spec": {"constraints": {"knowledge_changes": "monthly"}}},
               "families": {"prompting": {"changes_weights": False}, "lora": {"changes_weights": True}}}
    matrix = model_matrix(trials, "token_f1")
    assert matrix["models"] == ["api", "mine"] and matrix["strategies"] == ["zero-shot", "lora-r16"]
    assert "lora-r16" not in matrix["cells"]["api"] and matrix["cells"]["mine"]["lora-r16"]["usd_per_1k"] == 0.05
    # $50 of training each month, saving $0.25 per 1k queries: 200,000 queries a month
    assert "above 200,000 queries a month (retrained monthly" in break_even(results)
