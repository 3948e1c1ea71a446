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
