"""advisor diff / export on constructed run folders: pairing, flipped items, the regression gate."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner

from advisor.cli import cli
from advisor.diff import diff_runs, regressions, to_markdown


def _run(root: Path, answers: dict[str, list[str]], targets: list[str], fingerprint: str = "abc", shots: int = 0) -> Path:
    """A run folder as advisor writes it: results.json plus each trial's predictions.jsonl."""
    trials = []
    for name, outputs in answers.items():
        tid = f"{name}-00000000"
        rows = [{"id": str(i), "output": o, "input": f"q{i}", "target": t} for i, (o, t) in enumerate(zip(outputs, targets))]
        (root / "trials" / tid).mkdir(parents=True)
        (root / "trials" / tid / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        acc = sum(o == t for o, t in zip(outputs, targets)) / len(targets)
        trials.append({"id": tid, "name": name, "strategy": "prompting", "status": "ok", "settings": {"shots": shots},
                       "metrics": {"accuracy": acc, "accuracy_ci95": [max(acc - 0.1, 0), min(acc + 0.1, 1)]}})
    results = {"task": {"metric": "accuracy", "seed": 0, "model": "m", "data_fingerprints": {"test": fingerprint}},
               "environment": {"packages": {"torch": "2.13.0"}, "git_commit": "x"}, "trials": trials}
    (root / "results.json").write_text(json.dumps(results))
    return root


TARGETS = ["a", "b"] * 30


def test_a_regression_is_paired_flipped_items_listed_and_gated(tmp_path):
    a = _run(tmp_path / "a", {"zero-shot": TARGETS, "3-shot": TARGETS}, TARGETS)
    worse = ["x" if i < 20 else t for i, t in enumerate(TARGETS)]  # 20 of 60 items flip right -> wrong
    b = _run(tmp_path / "b", {"zero-shot": TARGETS, "3-shot": worse}, TARGETS, shots=3)
    found = diff_runs(a, b)
    rows = {r["trial"]: r for r in found["trials"]}
    assert found["paired"] and rows["3-shot"]["test"] == "McNemar exact"
    assert rows["3-shot"]["verdict"] == "worse" and round(rows["3-shot"]["delta"], 4) == round(-20 / 60, 4)
    assert rows["3-shot"]["worse_items"] == [str(i) for i in sorted(range(20), key=str)] and rows["3-shot"]["better_items"] == []
    assert rows["zero-shot"]["verdict"] == "insufficient evidence" and rows["zero-shot"]["delta"] == 0
    assert rows["3-shot"]["settings_changed"] == {"shots": [0, 3]}
    assert [r["trial"] for r in regressions(found, 5)] == ["3-shot"] and regressions(found, 40) == []
    assert "| 3-shot | 100.0 | 66.7 | -33.3" in to_markdown(found)
    runner = CliRunner()
    assert runner.invoke(cli, ["diff", str(a), str(b), "--fail-on-regression", "5"]).exit_code == 1
    assert runner.invoke(cli, ["diff", str(a), str(b), "--fail-on-regression", "40"]).exit_code == 0
    assert runner.invoke(cli, ["diff", str(b), str(a), "--fail-on-regression"]).exit_code == 0  # B improved
    out = runner.invoke(cli, ["diff", str(a), str(b), "--format", "json"])
    assert json.loads(out.output)["trials"][1]["trial"] == "3-shot"


def test_different_test_sets_are_not_paired(tmp_path):
    a = _run(tmp_path / "a", {"zero-shot": TARGETS}, TARGETS, fingerprint="one")
    b = _run(tmp_path / "b", {"zero-shot": ["x"] * 60}, TARGETS, fingerprint="two")
    found = diff_runs(a, b)
    assert not found["paired"] and "cannot be paired" in found["why_not_paired"]
    assert found["trials"][0]["test"].startswith("unpaired") and "verdict" not in found["trials"][0]
    assert regressions(found, 0) == []  # no paired evidence, no gate
    assert found["data_fingerprints_changed"] == {"test": ["one", "two"]}


def test_export_writes_one_row_per_item_and_trial(tmp_path):
    run = _run(tmp_path / "a", {"zero-shot": TARGETS, "3-shot": ["a"] * 60}, TARGETS)
    out = CliRunner().invoke(cli, ["export", str(run), "--format", "csv"])
    table = list(csv.DictReader(io.StringIO(out.output)))
    assert len(table) == 120 and {r["trial"] for r in table} == {"zero-shot", "3-shot"}
    assert sum(float(r["score"]) for r in table if r["trial"] == "3-shot") == 30
    lines = CliRunner().invoke(cli, ["export", str(run), "--format", "jsonl"]).output.splitlines()
    assert len(lines) == 120 and json.loads(lines[0])["target"] == "a"
    assert CliRunner().invoke(cli, ["export", str(tmp_path)]).exit_code == 2  # not a run folder
