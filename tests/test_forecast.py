"""The forecast before a run: positions counted on the actual data, seconds from a stated throughput."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from transformers import AutoTokenizer

from advisor.cli import cli
from advisor.forecast import Throughput, endpoint_requests, forecast_lines
from advisor.forecast_counts import Tokens, trial_work
from advisor.prechecks import validation_pass
from baselines.device import planned, resolve_device
from baselines.engine import LanguageModel
from baselines.models import load_model
from baselines.templates import fill
from tests.conftest import qa_task
from tests.test_endpoints import with_models

STATED = Throughput(forward=1000.0, train=100.0, source="stated")


@pytest.fixture
def plan(classification_task):
    def make(strategies: str):
        return validation_pass(classification_task(strategies), planned(resolve_device("cpu")))[:3]
    return make


def test_prompting_positions_cover_every_template_and_item(plan, tiny_model_dir):
    spec, splits, trials = plan("prompting: {shots: [0, 1], select_on: 2}")
    lm = LanguageModel(*load_model(str(tiny_model_dir), device="cpu"))
    zero, one = (trial_work(lm, t, splits, spec, planned("cpu"), 0) for t in trials)
    templates = trials[0].settings["templates"]
    rendered = [lm.count_tokens(lm.render([{"role": "user", "content": fill(text, e.input, splits.labels)}]))
                for text in templates.values() for e in splits.test]
    assert zero.answer > sum(rendered) - len(templates) * min(rendered)  # each template's shared prefix runs once
    assert one.answer > zero.answer  # the shot is an extra turn
    assert zero.latency > (len(splits.test) + 1) * min(rendered)  # every test item (9 < 16) and a warm-up, one at a time
    assert zero.train == zero.forgetting == 0 and not zero.warnings
    assert STATED.seconds(zero) == (pytest.approx((zero.answer + zero.latency) / 1000), 0.0)


def test_training_counts_epochs_and_a_slow_run_warns(plan):
    spec, splits, trials = plan("lora: {epochs: 2}")
    lines = forecast_lines(trials, splits, spec, Throughput(forward=0.5, train=0.1, source="stated"))
    assert "training" in lines[1] and lines[-1].startswith("  warning: the whole run is expected to take over an hour")


def test_many_labels_warn(plan, tiny_model_dir):
    spec, splits, trials = plan("prompting: {shots: [0], select_on: 2}")
    splits.labels = [f"label {i}" for i in range(60)]
    lm = LanguageModel(*load_model(str(tiny_model_dir), device="cpu"))
    (warning,) = trial_work(lm, trials[0], splits, spec, planned("cpu"), 0).warnings
    assert warning.startswith("template(s) question list the 60 labels (") and "runs again for every item" in warning
    splits.labels = splits.labels[:3]  # a short list: no warning
    assert trial_work(lm, trials[0], splits, spec, planned("cpu"), 0).warnings == []


def _listening() -> socket.socket:
    """A port that records any connection in its backlog (never accepted), so a test can tell whether it was contacted."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    return listener


def _contacted(listener: socket.socket) -> bool:
    try:
        listener.accept()[0].close()
        return True
    except BlockingIOError:
        return False


def _two_models(tmp_path, tiny_model_dir, port: int) -> Path:
    task = qa_task(tmp_path, tiny_model_dir, "prompting: {shots: [0], templates: [concise], max_new_tokens: 6}\n"
                                             "  rag: {chunking: [sentence], index: [flat], context_tokens: 40}\n  lora: {epochs: 1}")
    return with_models(task, f"[{{name: mine, model: {tiny_model_dir}}}, {{name: hosted, base_url: 'http://127.0.0.1:{port}/v1', "
                             "model: m, api_key_env: ADVISOR_TEST_KEY, input_usd_per_1k_tokens: 0.5, output_usd_per_1k_tokens: 2.0}]")


def test_several_models_forecast_per_model_requests_tokens_and_cost(tmp_path, tiny_model_dir, fake_embedder):
    with contextlib.closing(_listening()) as listener:
        spec, splits, trials, _ = validation_pass(_two_models(tmp_path, tiny_model_dir, listener.getsockname()[1]), planned(resolve_device("cpu")))
        lines = forecast_lines(trials, splits, spec, STATED)
        assert not _contacted(listener)
    mine, hosted = (lines.index(next(x for x in lines if x.startswith(f"model {m}:"))) for m in ("mine", "hosted"))
    assert lines[mine].startswith("model mine: 4 trial(s) (prompting, rag, lora, finetune_rag), local ")
    assert lines[hosted].startswith("model hosted: 2 trial(s) (prompting, rag), endpoint m at http://127.0.0.1:")
    assert "mine/lora-r16" in "\n".join(lines[mine:hosted]) and ", training " in "\n".join(lines[mine:hosted])
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    count = lambda text: len(tokenizer(text, add_special_tokens=False).input_ids)  # noqa: E731
    tokens = Tokens(lambda text: tokenizer(text, add_special_tokens=False).input_ids, lambda turns: "\n".join(m["content"] for m in turns))
    zero = next(t for t in trials if t.name == "hosted/zero-shot")
    requests, prompt, output, cap = endpoint_requests(zero, splits, spec, tokens)
    template = zero.settings["templates"]["concise"]
    assert requests == len(splits.test) == 4 and cap == 4 * 6
    assert prompt == sum(count(fill(template, e.input, [])) for e in splits.test)
    assert output == round(4 * sum(min(count(e.target), 6) for e in splits.train) / len(splits.train))
    assert f"hosted/zero-shot                      4 requests  ~{prompt:,} prompt + ~{output:,} output tokens (at most 24)" in "\n".join(lines)
    rag = endpoint_requests(next(t for t in trials if t.name == "hosted/rag/sentence/flat"), splits, spec, tokens)
    assert rag[0] == 4 and rag[1] > prompt + 4 * 39  # the retrieved context's budget counted in every prompt
    total = (prompt + rag[1]) * 0.5 / 1000 + (output + rag[2]) * 2.0 / 1000
    assert lines[-1].startswith(f"    expected total 8 requests, ~{prompt + rag[1]:,} prompt")
    assert f"expected cost ~${total:g} at $0.5 / $2 per 1k prompt / output tokens" in lines[-1]


@pytest.mark.slow  # measures the tiny model's throughput for 2 s
def test_dry_run_of_several_models_names_the_key_variable_never_the_key(tmp_path, tiny_model_dir, fake_embedder, monkeypatch):
    monkeypatch.setenv("ADVISOR_TEST_KEY", "sk-SENTINEL-dry-run")
    monkeypatch.chdir(tmp_path)
    with contextlib.closing(_listening()) as listener:
        task = _two_models(tmp_path, tiny_model_dir, listener.getsockname()[1])
        before = set(tmp_path.rglob("*"))
        out = CliRunner().invoke(cli, ["compare", str(task), "--dry-run", "--device", "cpu"])
        assert not _contacted(listener)
    assert out.exit_code == 0, out.output
    assert "key from $ADVISOR_TEST_KEY (set here)" in out.output and "sk-SENTINEL" not in out.output
    assert "6 trial(s); nothing was run (--dry-run)" in out.output and set(tmp_path.rglob("*")) == before
