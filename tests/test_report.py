"""Reports: self-contained, escaped, re-renderable from results.json alone."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from advisor.cli import cli
from advisor import compare

from conftest import write_jsonl

XSS = "<script>alert(1)</script>"


def test_dataset_strings_are_escaped_and_nothing_external(classification_task, tmp_path):
    task = classification_task("prompting: {shots: [0], templates: [terse]}")
    write_jsonl(tmp_path / "test.jsonl", [{"text": f"{XSS} refund", "label": "billing"}, {"text": "lost parcel | x", "label": "shipping"}])
    out = compare(task, out=tmp_path / "run", isolate=False)
    html = (out / "report.html").read_text()
    assert XSS not in html
    assert not re.search(r"""(src|href)=["']?https?://""", html)
    assert "<svg" in html
    md = (out / "report.md").read_text()
    assert XSS not in md


def test_every_stored_string_is_escaped(classification_task, tmp_path):
    """Trial names, errors, warnings, inputs and model outputs all pass through escaping."""
    from reports import render_report

    out = compare(classification_task("prompting: {shots: [0], templates: [terse]}"), out=tmp_path / "run", isolate=False)
    results = json.loads((out / "results.json").read_text())
    results["warnings"].append(XSS)
    results["trials"][0]["name"] = XSS
    pred_file = out / "trials" / results["trials"][0]["id"] / "predictions.jsonl"
    write_jsonl(pred_file, [{"id": "1", "input": XSS, "target": "a", "output": XSS}])
    (out / "results.json").write_text(json.dumps(results))
    render_report(out)
    html = (out / "report.html").read_text()
    assert XSS not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # name in table and chart, warning, input, output
    assert XSS not in (out / "report.md").read_text()


def test_report_command_rerenders_from_results(classification_task, tmp_path):
    out = compare(classification_task("prompting: {shots: [0], templates: [terse]}"), out=tmp_path / "run", isolate=False)
    (out / "report.html").unlink()
    result = CliRunner().invoke(cli, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert "zero-shot" in (out / "report.html").read_text()
    results = json.loads((out / "results.json").read_text())
    assert results["schema_version"] == 1 and results["recommendation"]["pick"] in ("zero-shot",)


def test_report_on_a_folder_without_results_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "results.json is missing" in result.output


def test_target_scale_section(classification_task, tmp_path):
    task = classification_task("prompting: {shots: [0], templates: [terse]}", "target: {model: 8B, gpu: a10g-24gb}\n")
    out = compare(task, out=tmp_path / "run", isolate=False)
    target = json.loads((out / "results.json").read_text())["target_scale"]
    assert target["methods"]["qlora"]["fits"] is True and target["methods"]["full"]["fits"] is False
    assert target["train_tokens_per_epoch"] > 0
    assert "At your target scale: 8B on a10g-24gb" in (out / "report.html").read_text()


def test_compare_ends_with_a_table_and_the_decision_in_the_terminal(classification_task, tmp_path):
    task = classification_task("prompting: {shots: [0, 1], templates: [terse], select_on: 2}")
    result = CliRunner().invoke(cli, ["compare", str(task), "--out", str(tmp_path / "run"), "--in-process"])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    lines = result.output.splitlines()
    table = lines.index(next(line for line in lines if "tiny: Accuracy (%) on 9 test examples" in line))
    for trial in results["trials"]:
        row = next(line for line in lines[table:] if line.strip().startswith(trial["name"] + " "))
        assert f"{100 * trial['metrics']['accuracy']:.1f}" in row
    assert f"Recommendation: {results['recommendation']['pick']}" in result.output


def _facts_results(**extra) -> dict:
    """A results.json with a prompting, a rag and a lora trial; the prompting one carries look-alike keys."""
    def trial(name, strategy, metrics, resources, details=None):
        return {"id": name.replace("/", "-"), "name": name, "strategy": strategy, "status": "ok", "hash": "h", "settings": {},
                "metrics": {"token_f1": metrics, "token_f1_ci95": [metrics - 0.1, metrics + 0.1], "recall_at_k": 0.5},
                "resources": resources, "details": details or {}}

    from advisor.env import environment

    return {"complete": True, "task": {"name": "t", "type": "qa", "model": "m", "metric": "token_f1", "spec": {}},
            "environment": environment(),
            "trials": [trial("zero-shot", "prompting", 0.2, {"trainable_params": 1}, {"summary": "template 'terse'"}),
                       trial("rag/sentence/hnsw", "rag", 0.5, {"index_recall_at_k": 0.9, "index_build_s": 0.01, "query_ms_p50": 0.2},
                             {"chunking": {"chunks": 40}}),
                       trial("lora-r16", "lora", 0.4, {"trainable_params": 1000, "trainable_pct": 0.1, "train_s": 3.0})],
            "families": {"prompting": {"simplicity_rank": 0, "retrieves": False, "changes_weights": False},
                         "rag": {"simplicity_rank": 1, "retrieves": True, "changes_weights": False},
                         "lora": {"simplicity_rank": 5, "retrieves": False, "changes_weights": True}},
            "metrics": {"token_f1": {"display_name": "Token F1", "higher_is_better": True, "unit": "%", "paired_test": "bootstrap"},
                        "exact_match": {"display_name": "Exact match", "higher_is_better": True, "unit": "%", "paired_test": "mcnemar"}},
            **extra}


def test_sections_follow_the_declared_facts_not_which_keys_exist(tmp_path):
    from reports import render_report
    from reports.context import build_context

    ctx = build_context(_facts_results())
    assert [(r["trial"], r["index_recall_at_k"], r["recall_at_k"]) for r in ctx.retrieval] == [("rag/sentence/hnsw", 0.9, 0.5)]
    assert [r["trial"] for r in ctx.training] == ["lora-r16"]
    assert ctx.metric_display == "Token F1" and [c["name"] for c in ctx.metric_columns] == ["token_f1"]  # exact_match: no trial has it
    assert [r.name for r in ctx.rows] == ["rag/sentence/hnsw", "lora-r16", "zero-shot"] and ctx.rows[2].note == "template 'terse'"
    (tmp_path / "results.json").write_text(json.dumps(_facts_results()))
    html = render_report(tmp_path).read_text()
    assert "Retrieval quality by chunker and index" in html and "Fine-tuning" in html and "Token F1 %" in html

    bare = build_context(_facts_results(families={}, metrics={}))  # an older results.json: no facts, no family sections
    assert bare.retrieval == [] and bare.training == [] and bare.metric_columns == [] and bare.metric_display == "token_f1"


def test_a_lower_is_better_headline_ranks_the_lowest_first():
    from reports.context import build_context

    results = _facts_results()
    results["metrics"]["token_f1"] |= {"higher_is_better": False, "unit": "ms"}
    ctx = build_context(results)
    assert [r.name for r in ctx.rows] == ["zero-shot", "lora-r16", "rag/sentence/hnsw"] and ctx.metric_unit == "ms"


def test_report_md_carries_the_decision(classification_task, tmp_path):
    """report.md has the recommendation, its rationale and what would change it, as report.html does."""
    out = compare(classification_task(), out=tmp_path / "run", isolate=False)
    results = json.loads((out / "results.json").read_text())
    md = (out / "report.md").read_text()
    rec = results["recommendation"]
    assert rec["pick"] and f"{rec['pick']} ({rec['confidence']} confidence)" in md
    assert all(s["text"].split(":")[0] in md for s in rec["rationale"])
    assert "What would change this decision" in md
