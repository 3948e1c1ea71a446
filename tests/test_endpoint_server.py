"""The endpoint backend against a real OpenAI-compatible server: `transformers serve` on the embedded model
(offline, CPU, float32 like the local model). The same prompting trial answers the same through the
endpoint as locally; injected faults are retried; a killed run resumes without sending a request twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from advisor.run_loop import compare
from baselines.models import resolve
from contracts.spec import EMBEDDED_MODEL
from tests.conftest import qa_task
from tests.endpoint_server import FaultProxy, serve
from tests.test_endpoints import with_models

pytestmark = pytest.mark.slow
PROMPTING = "prompting: {shots: [0], templates: [concise], max_new_tokens: 8}"


@pytest.fixture(scope="module")
def served():
    model_dir = resolve(EMBEDDED_MODEL)
    with serve(model_dir) as url:
        yield url, model_dir


def endpoint(name: str, url: str, model_dir: str, extra: str = "") -> str:
    return f"{{name: {name}, base_url: '{url}', model: '{model_dir}', max_concurrency: 1, timeout_s: 300{extra}}}"


def outputs(run, trial: dict) -> list[str]:
    rows = (run / "trials" / trial["id"] / "predictions.jsonl").read_text().splitlines()
    return [json.loads(r)["output"] for r in rows]


def trials(run) -> dict[str, dict]:
    return {t["name"]: t for t in json.loads((run / "results.json").read_text())["trials"]}


def test_endpoint_answers_as_the_local_model_does(tmp_path, served):
    url, model_dir = served
    task = qa_task(tmp_path, EMBEDDED_MODEL, PROMPTING)
    task.write_text(task.read_text().replace("answer}", "answer, test_limit: 3}"))
    with_models(task, f"[{EMBEDDED_MODEL}, {endpoint('served', url, model_dir)}]")
    run = compare(task, out=tmp_path / "run", isolate=False)
    found = trials(run)
    local, remote = found[f"{EMBEDDED_MODEL}/zero-shot"], found["served/zero-shot"]
    assert local["status"] == remote["status"] == "ok"
    assert outputs(run, local) == outputs(run, remote)
    assert remote["resources"]["requests_sent"] == 3 and remote["resources"]["prompt_tokens"] == local["resources"]["prompt_tokens"]


def test_faults_are_retried_then_answered(tmp_path, served):
    url, model_dir = served
    task = qa_task(tmp_path, EMBEDDED_MODEL, PROMPTING)
    task.write_text(task.read_text().replace("answer}", "answer, test_limit: 2}"))
    with FaultProxy(url, script=["429", "500", "drop", "slow"], slow_s=75.0) as proxy:  # 60 s: above a real reply on a busy CPU
        with_models(task, f"[{endpoint('flaky', proxy.url, model_dir).replace('timeout_s: 300', 'timeout_s: 60')}]")
        run = compare(task, out=tmp_path / "run", isolate=False)
    record = trials(run)["zero-shot"]
    assert record["status"] == "ok", record.get("error")
    assert record["resources"]["retries"] == 4 and record["resources"]["requests_sent"] == 2
    assert proxy.faults == {"429": 1, "500": 1, "drop": 1, "slow": 1, "pass": 2}


def test_a_killed_run_resumes_without_sending_a_request_twice(tmp_path, served):
    url, model_dir = served
    task = qa_task(tmp_path, EMBEDDED_MODEL, PROMPTING)
    run, command = tmp_path / "run", [sys.executable, "-m", "advisor", "compare", str(task), "--out", str(tmp_path / "run"), "--in-process"]
    with FaultProxy(url, hold_after=2) as proxy:
        with_models(task, f"[{endpoint('served', proxy.url, model_dir)}]")
        first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        assert proxy.held.wait(timeout=600), "the run never reached its third request"
        time.sleep(1)  # the second reply is written to the cache before the third request goes out; be sure it landed
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        answered_before = dict(proxy.delivered)
        proxy.hold_after = None
        proxy.release.set()
        subprocess.run(command, check=True, capture_output=True, timeout=900)
    record = trials(run)["zero-shot"]
    assert record["status"] == "ok" and len(answered_before) == 2
    assert all(proxy.seen[body] == 1 for body in answered_before)  # answered before the kill: never sent again
    assert max(proxy.delivered.values()) == 1 and sum(proxy.delivered.values()) == 4
    assert record["resources"]["cache_hits"] == 2 and record["resources"]["requests_sent"] == 2


def test_classification_without_logprobs_maps_replies_and_counts_the_unparseable(tmp_path, served):
    from tests.conftest import LABELED, write_classification_task

    url, model_dir = served
    task = write_classification_task(tmp_path, EMBEDDED_MODEL, "prompting: {shots: [0], templates: [terse]}")
    task.write_text(task.read_text().replace("test: test.jsonl}", "test: test.jsonl, test_limit: 4}"))
    with_models(task, f"[{endpoint('served', url, model_dir)}]")
    run = compare(task, out=tmp_path / "run", isolate=False)
    record = trials(run)["zero-shot"]
    res, labels = record["resources"], sorted({label for _, label in LABELED})
    assert record["status"] == "ok" and res["classification_replies"] == 4
    assert res["classified_by_logprobs"] == 0  # transformers serve ignores logprobs: every reply is mapped from its text
    assert sum(out not in labels for out in outputs(run, record)) == res["unparseable_replies"]
    assert res["unparseable_rate"] == res["unparseable_replies"] / 4
