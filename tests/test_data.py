"""Data checks: every bad row reported with its file and line; warnings for leakage and unseen labels."""

from __future__ import annotations

import pytest

from advisor.task import check_task
from advisor.yaml_errors import SpecError

from conftest import write_jsonl

TASK = "name: t\ntask: {type: classification}\ndata: {train: TRAIN, test: TEST}\nstrategies: {prompting: {shots: [0]}}\n"


def setup(tmp_path, train: str, test: str, train_name="train.jsonl", test_name="test.jsonl"):
    (tmp_path / train_name).write_text(train)
    (tmp_path / test_name).write_text(test)
    (tmp_path / "task.yaml").write_text(TASK.replace("TRAIN", train_name).replace("TEST", test_name))
    return tmp_path / "task.yaml"


def errors(task) -> list[str]:
    with pytest.raises(SpecError) as err:
        check_task(task)
    return [str(p) for p in err.value.problems]


GOOD_TRAIN = '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n'


def test_bad_json_line_and_missing_field_are_located(tmp_path):
    task = setup(tmp_path, GOOD_TRAIN + '{"text": "c", "label": \n{"txt": "d", "label": "x"}\n', '{"text": "e", "label": "x"}\n')
    found = errors(task)
    assert any(p.startswith(f"{tmp_path / 'train.jsonl'}:3: invalid JSON") for p in found), found
    assert any(f"{tmp_path / 'train.jsonl'}:4: text: missing field 'text'" in p for p in found), found


def test_empty_split_and_empty_values(tmp_path):
    found = errors(setup(tmp_path, GOOD_TRAIN, "\n"))
    assert any("test.jsonl: split is empty" in p for p in found), found
    found = errors(setup(tmp_path, GOOD_TRAIN, '{"text": "  ", "label": "x"}\n'))
    assert any("test.jsonl:1: text: empty value" in p for p in found), found


def test_unseen_labels_and_leakage_are_warnings(tmp_path):
    task = setup(tmp_path, GOOD_TRAIN, '{"text": "A", "label": "x"}\n{"text": "q", "label": "z"}\n')
    spec, splits, warnings = check_task(task)
    text = "\n".join(map(str, warnings))
    assert "never seen in train: z" in text
    assert "1 test input(s) also appear in train (leakage), test lines 1" in text
    assert splits.labels == ["x", "y", "z"]


def test_csv_is_read_with_row_lines(tmp_path):
    task = setup(tmp_path, "text,label\na,x\nb,y\n", "text,label\nc,x\n,y\n", "train.csv", "test.csv")
    found = errors(task)
    assert any(f"{tmp_path / 'test.csv'}:3: text: empty value" in p for p in found), found


def test_duplicate_ids(tmp_path):
    task = setup(tmp_path, GOOD_TRAIN, '{"text": "e", "label": "x"}\n')
    task.write_text(task.read_text().replace("test: test.jsonl}", "test: test.jsonl, id: text}"))
    write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": "x"}, {"text": "a", "label": "y"}])
    found = errors(task)
    assert any("duplicate id 'a' (first on line 1)" in p for p in found), found


def test_non_utf8_file(tmp_path):
    (tmp_path / "train.jsonl").write_bytes(b'{"text": "\xff\xfe", "label": "x"}\n')
    (tmp_path / "test.jsonl").write_text('{"text": "e", "label": "x"}\n')
    (tmp_path / "task.yaml").write_text(TASK.replace("TRAIN", "train.jsonl").replace("TEST", "test.jsonl"))
    assert any("not UTF-8" in p for p in errors(tmp_path / "task.yaml"))
