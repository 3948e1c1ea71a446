"""End to end with the real embedded model (SmolLM2-135M-Instruct): the CLI, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evaluators import metrics

EXAMPLE = Path(__file__).parent.parent / "examples" / "support-tickets"

pytestmark = pytest.mark.slow


def test_compare_on_the_example_with_the_real_model(tmp_path):
    task = tmp_path / "task.yaml"
    task.write_text(
        "name: e2e\ntask: {type: classification}\n"
        f"data: {{train: {EXAMPLE / 'train.jsonl'}, test: {EXAMPLE / 'test.jsonl'}, id: id, test_limit: 12}}\n"
        "strategies:\n  prompting: {shots: [0, 2], templates: [instruct, terse], select_on: 6}\n"
    )
    out = tmp_path / "run"
    run = subprocess.run([sys.executable, "-m", "advisor", "compare", str(task), "--out", str(out)],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    labels = {json.loads(line)["label"] for line in (EXAMPLE / "train.jsonl").read_text().splitlines()}
    assert [t["name"] for t in results["trials"]] == ["zero-shot", "2-shot"]
    for trial in results["trials"]:
        assert trial["status"] == "ok", trial.get("error")
        preds = [json.loads(line) for line in (out / "trials" / trial["id"] / "predictions.jsonl").read_text().splitlines()]
        assert len(preds) == 12 and {p["output"] for p in preds} <= labels
        # the stored number is the one the stored predictions give
        acc = metrics.get("accuracy").fn([p["output"] for p in preds], [p["target"] for p in preds])
        assert trial["metrics"]["accuracy"] == pytest.approx(acc)
        lo, hi = trial["metrics"]["accuracy_ci95"]
        assert lo <= acc <= hi and hi - lo > 0
        assert trial["resources"]["prompt_tokens_per_query"] > 50
        assert trial["resources"]["peak_rss_mb"] > 300  # a real 135M-parameter model in fp32
    assert results["trials"][1]["resources"]["prompt_tokens_per_query"] > results["trials"][0]["resources"]["prompt_tokens_per_query"]
    html = (out / "report.html").read_text()
    assert "zero-shot" in html and "2-shot" in html and "<svg" in html
