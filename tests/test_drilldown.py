"""The report's per-example view, classification extras and the diff section, from real run folders."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from click.testing import CliRunner

from advisor import compare
from advisor.cli import cli
from evaluators import metrics
from reports import drilldown, render_report
from reports.classification import classification_extras

from conftest import qa_task, write_jsonl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from report_page import constructed_run  # noqa: E402

XSS = "</script><script>alert(1)</script><!--"


def _embedded(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="dd-data">(.*?)</script>', html, re.S)
    assert found, "no drill-down data in the page"
    return json.loads(found.group(1))


def _cells(data: dict, item: list) -> list:
    """drilldown.js's expansion of the compacted cells: [answer, score] or None."""
    return [None if c is None else [item[2], c] if not isinstance(c, list) else [data["answers"][c[0]] if isinstance(c[0], int) else c[0], c[1]]
            for c in item[4]]


def test_drilldown_of_a_run_with_retrieval_and_prompting(tmp_path, tiny_model_dir, fake_embedder):
    task = qa_task(tmp_path, tiny_model_dir, "prompting: {shots: [0, 1], templates: [terse], max_new_tokens: 4}\n"
                                             "  rag: {chunking: [sentence], index: [flat], k: 2, context_tokens: 40, max_new_tokens: 4}")
    out = compare(task, out=tmp_path / "run", isolate=False)
    results = json.loads((out / "results.json").read_text())
    data = _embedded((out / "report.html").read_text())
    trials = {t["name"]: t for t in results["trials"]}
    assert [t["name"] for t in data["trials"]] == [t["name"] for t in results["trials"]]
    assert len(data["items"]) == data["total"] == 4 and data["sampled"] is None
    assert data["rule"]["kind"] == "threshold" and "Token F1" in data["rule"]["text"]
    gold_docs = {json.loads(line)["question"]: json.loads(line)["doc"] for line in (tmp_path / "test.jsonl").read_text().splitlines()}
    rag = next(k for k, t in enumerate(data["trials"]) if t["retrieves"])
    f1 = metrics.get("token_f1").per_item
    hits = []
    for item in data["items"]:
        cells = _cells(data, item)
        for (answer, score), t in zip(cells, data["trials"]):
            assert abs(score - f1(answer, item[2])) < 1e-3, (t["name"], answer, item[2])  # the stored score is the metric's own
        assert item[3] == gold_docs[item[1]]
        found = item[5][rag]
        assert found and all(item[5][k] is None for k in range(len(data["trials"])) if k != rag)
        hits.append(any(data["chunks"][ref][0] == item[3] for ref, _ in found))
    assert sum(hits) / len(hits) == trials[data["trials"][rag]["name"]]["metrics"]["recall_at_k"]  # per item, what recall@k counts
    one_shot = next(t for t in data["trials"] if t["name"] == "1-shot")
    train = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert one_shot["prompt"]["template"] == "terse" and "{input}" in one_shot["prompt"]["text"]
    assert [s[0] for s in one_shot["prompt"]["shots"]][0] in [r["question"] for r in train]


def test_embedded_data_cannot_end_its_script_element(tmp_path):
    run = constructed_run(tmp_path / "run", 5, 2, retrieving=1)
    predictions = run / "trials" / json.loads((run / "results.json").read_text())["trials"][1]["id"] / "predictions.jsonl"
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    rows[0]["output"] = rows[0]["input"] = XSS
    write_jsonl(predictions, rows)
    html = render_report(run).read_text()
    assert XSS not in html and "alert(1)" in html
    data = _embedded(html)
    assert XSS in [c[0] for c in _cells(data, data["items"][0]) if c]


def test_large_runs_are_sampled_and_the_page_says_so(tmp_path, monkeypatch):
    run = constructed_run(tmp_path / "run", 60, 3)
    results = json.loads((run / "results.json").read_text())
    predictions = {t["id"]: drilldown.read_jsonl(run / "trials" / t["id"] / "predictions.jsonl") for t in results["trials"]}
    monkeypatch.setattr(drilldown, "MAX_ITEMS", 25)
    data, text = drilldown.build_drilldown(run, results, predictions)
    assert len(data["items"]) == 25 and data["total"] == 60 and data["sampled"].startswith("25 of 60 test items")
    budget = len(text) // 2
    monkeypatch.setattr(drilldown, "MAX_BYTES", budget)
    data, text = drilldown.build_drilldown(run, results, predictions)
    assert len(text) <= budget and data["sampled"].startswith(f"{len(data['items'])} of 60 test items")
    assert f"Sampled: {len(data['items'])} of 60 test items" in render_report(run).read_text()


def test_confusion_and_per_label_f1():
    rows = [{"target": t, "output": o} for t, o in [("a", "a"), ("a", "b"), ("b", "b"), ("b", "b"), ("c", "a")]]
    extras = classification_extras([("pick", "3-shot", rows), ("zero-shot", "zero-shot", [])])
    assert extras["labels"] == ["a", "b", "c"] and len(extras["matrices"]) == 1
    assert extras["matrices"][0]["cells"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    a, b, c = (row["scores"][0] for row in extras["per_label"])
    assert a == (0.5, 0.5, 0.5) and b[2] == 0.8 and c == (None, 0.0, 0.0)


def test_classification_report_shows_matrices_of_the_pick_and_zero_shot(classification_task, tmp_path):
    out = compare(classification_task("prompting: {shots: [0, 1], templates: [terse], select_on: 2}"), out=tmp_path / "run", isolate=False)
    html = (out / "report.html").read_text()
    results = json.loads((out / "results.json").read_text())
    assert "Per-label F1 and confusion" in html
    assert html.count('<table class="confusion">') == (1 if results["recommendation"]["pick"] == "zero-shot" else 2)
    zero = next(t for t in results["trials"] if t["name"] == "zero-shot")
    rows = [json.loads(line) for line in (out / "trials" / zero["id"] / "predictions.jsonl").read_text().splitlines()]
    assert all(r["score"] == float(r["output"] == r["target"]) for r in rows)


def test_compare_with_a_baseline_puts_the_diff_in_the_report(classification_task, tmp_path):
    task = classification_task("prompting: {shots: [0], templates: [terse]}")
    runner = CliRunner()
    assert runner.invoke(cli, ["compare", str(task), "--out", str(tmp_path / "a"), "--in-process"]).exit_code == 0
    refused = runner.invoke(cli, ["compare", str(task), "--out", str(tmp_path / "b"), "--in-process", "--baseline", str(tmp_path)])
    assert refused.exit_code == 2 and "has no results.json" in refused.output and not (tmp_path / "b").exists()
    done = runner.invoke(cli, ["compare", str(task), "--out", str(tmp_path / "b"), "--in-process", "--baseline", str(tmp_path / "a")])
    assert done.exit_code == 0, done.output
    diff = json.loads((tmp_path / "b" / "diff.json").read_text())
    assert diff["paired"] and [r["trial"] for r in diff["trials"]] == ["zero-shot"] and diff["trials"][0]["delta"] == 0
    html = (tmp_path / "b" / "report.html").read_text()
    assert "Against the baseline run" in html and f"<code>{tmp_path / 'a'}</code>" in html and "insufficient evidence" in html
    again = runner.invoke(cli, ["compare", str(task), "--out", str(tmp_path / "b"), "--in-process"])
    assert again.exit_code == 0 and not (tmp_path / "b" / "diff.json").exists()
    assert "Against the baseline run" not in (tmp_path / "b" / "report.html").read_text()
