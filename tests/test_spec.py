"""task.yaml validation: every problem at once, with file, line, field and a did-you-mean."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from advisor.cli import cli
from advisor.task import load_task
from advisor.yaml_errors import SpecError

from conftest import write_jsonl


@pytest.fixture
def data_dir(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"text": "a b", "label": "x"}, {"text": "c d", "label": "y"}])
    write_jsonl(tmp_path / "test.jsonl", [{"text": "e f", "label": "x"}])
    return tmp_path


def problems_of(tmp_path, text: str) -> list[str]:
    path = tmp_path / "task.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        load_task(path)
    return [str(p) for p in err.value.problems]


GOOD = "name: t\ntask: {type: classification}\ndata: {train: train.jsonl, test: test.jsonl}\nstrategies:\n  prompting: {shots: [0]}\n"


def test_good_task_loads_and_resolves_paths(data_dir):
    (data_dir / "task.yaml").write_text(GOOD)
    spec = load_task(data_dir / "task.yaml")
    assert spec.resolve(spec.data.train) == data_dir / "train.jsonl"
    assert spec.strategies.prompting.shots == [0]
    assert spec.headline_metric == "accuracy"


def test_misspelled_key_wrong_type_and_missing_file_all_reported_with_lines(data_dir):
    text = (
        "name: t\n"
        "task: {type: classification}\n"
        "data:\n"
        "  train: train.jsonl\n"
        "  test: missing.jsonl\n"
        "seed: lots\n"
        "strategies:\n"
        "  prompting:\n"
        "    shotz: [0, 5]\n"
    )
    found = problems_of(data_dir, text)
    assert any(p.endswith(":5: data.test: file not found: " + str(data_dir / "missing.jsonl")) for p in found), found
    assert any(":6: seed:" in p and "integer" in p for p in found), found
    assert any(":9: strategies.prompting.shotz: unknown key. Did you mean 'shots'?" in p for p in found), found
    assert len(found) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: t\ntask: {type: clasification}\n", "task.type:"),
        ("name: t\ntask: {type: qa}\ndata: {train: train.jsonl, test: test.jsonl}\nstrategies: {promting: {}}\n",
         "strategies.promting: unknown key. Did you mean 'prompting'?"),
        (GOOD + "metric: acuracy\n", "unknown metric 'acuracy'. Did you mean 'accuracy'?"),
        (GOOD + "metric: exact_match\n", "does not apply to classification tasks"),
        (GOOD.replace("train.jsonl,", "train.txt,"), "must be a .jsonl or .csv file"),
        ("name: t\n  bad: indent\n", "invalid YAML"),
        ("- just\n- a list\n", "expected a mapping"),
        (GOOD.replace("name: t", "name: ../../etc"), "name:"),
        (GOOD.replace("shots: [0]", "shots: [-1]"), "shots must be a non-empty list"),
        (GOOD + "strategies_extra: 1\n", "unknown key"),
    ],
)
def test_bad_specs_give_located_messages(data_dir, text, expected):
    found = problems_of(data_dir, text)
    assert any(expected in p for p in found), found
    assert all(p.startswith(str(data_dir / "task.yaml")) for p in found)


def test_yaml_is_data_not_code(data_dir):
    found = problems_of(data_dir, GOOD + "x: !!python/object/apply:os.system ['touch pwned']\n")
    assert any("invalid YAML" in p for p in found)
    assert not (data_dir / "pwned").exists()


def test_cli_validate_exit_codes_and_no_traceback(data_dir):
    runner = CliRunner()
    (data_dir / "task.yaml").write_text(GOOD)
    ok = runner.invoke(cli, ["validate", str(data_dir / "task.yaml")])
    assert ok.exit_code == 0, ok.output
    assert "ok (train 2, test 1; 2 labels; 1 trials: zero-shot)" in ok.output
    (data_dir / "task.yaml").write_text(GOOD.replace("shots", "shotz"))
    bad = runner.invoke(cli, ["validate", str(data_dir / "task.yaml")])
    assert bad.exit_code == 2
    assert "Traceback" not in bad.output
    missing = runner.invoke(cli, ["validate", str(data_dir / "nope.yaml")])
    assert missing.exit_code == 2 and "file not found" in missing.output


def test_schema_command_prints_json_schema():
    out = CliRunner().invoke(cli, ["schema"])
    schema = json.loads(out.output)
    assert "strategies" in schema["properties"]
    assert schema["additionalProperties"] is False
