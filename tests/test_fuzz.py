"""Property-based: random and mutated task.yaml and data files never produce a traceback, always exit 0
or 2, name the file for every problem, and never write anything (validate and compare --dry-run)."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.cli import cli

pytestmark = pytest.mark.slow  # hundreds of generated cases

VALID = {
    "name": "fuzz",
    "task": {"type": "classification"},
    "data": {"train": "train.jsonl", "test": "test.jsonl", "input": "text", "target": "label"},
    "metric": "accuracy",
    "strategies": {"prompting": {"shots": [0, 1], "templates": ["terse"]}},
    "constraints": {"max_latency_ms": 500},
}
TRAIN = [{"text": "refund my order", "label": "billing"}, {"text": "parcel is late", "label": "shipping"}]
TEST = [{"text": "charged twice", "label": "billing"}]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=False), st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=6)


def paths(tree, prefix=()):
    yield prefix
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from paths(v, prefix + (k,))


@st.composite
def mutated_specs(draw):
    spec = json.loads(json.dumps(VALID))
    for _ in range(draw(st.integers(1, 4))):
        target = draw(st.sampled_from([p for p in paths(spec) if p]))
        parent = spec
        for key in target[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["delete", "retype", "typo", "extra"]))
        if action == "delete":
            parent.pop(target[-1], None)
        elif action == "retype":
            parent[target[-1]] = draw(values)
        elif action == "typo" and target[-1] in parent:
            parent[target[-1] + draw(st.sampled_from(["s", "_", "x"]))] = parent.pop(target[-1])
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(values)
    return yaml.safe_dump(spec, allow_unicode=True)


jsonl_lines = st.one_of(
    st.builds(lambda d: json.dumps(d), st.fixed_dictionaries({"text": st.text(max_size=20), "label": st.sampled_from(["billing", "shipping", "x"])})),
    st.builds(lambda d: json.dumps(d), st.dictionaries(st.text(max_size=6), scalars, max_size=3)),
    st.text(max_size=30),
    st.builds(lambda v: json.dumps(v), values),
)


def check(tmp_path, task_text: str, train_text: str, test_text: str) -> None:
    (tmp_path / "task.yaml").write_text(task_text, encoding="utf-8")
    (tmp_path / "train.jsonl").write_text(train_text, encoding="utf-8")
    (tmp_path / "test.jsonl").write_text(test_text, encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    runner = CliRunner()
    for args in (["validate", str(tmp_path / "task.yaml")], ["compare", str(tmp_path / "task.yaml"), "--dry-run", "--out", str(tmp_path / "out")]):
        result = runner.invoke(cli, args)
        assert result.exit_code in (0, 2), (args, result.output, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert "Traceback" not in result.output
        if result.exit_code == 2:
            problems = [line for line in result.output.splitlines() if line and "problem(s); nothing was run" not in line]
            assert problems and all(re.match(rf"{re.escape(str(tmp_path))}/(task\.yaml|train\.jsonl|test\.jsonl)(:\d+)?: ", p)
                                    for p in problems if "warning:" not in p), result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no partial report


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
GOOD_DATA = ("".join(json.dumps(r) + "\n" for r in TRAIN), "".join(json.dumps(r) + "\n" for r in TEST))


@SETTINGS
@given(task=mutated_specs())
def test_mutated_task_files(tmp_path, task):
    check(tmp_path, task, *GOOD_DATA)


@SETTINGS
@given(task=st.text(max_size=200))
def test_random_text_as_task_file(tmp_path, task):
    check(tmp_path, task, *GOOD_DATA)


@SETTINGS
@given(train=st.lists(jsonl_lines, max_size=6), test=st.lists(jsonl_lines, max_size=4))
def test_random_data_files(tmp_path, train, test):
    check(tmp_path, yaml.safe_dump(VALID), "\n".join(train), "\n".join(test))
